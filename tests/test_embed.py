"""CNN embeddings: real weights, real photos (scikit-learn's two samples), no mocks, no network."""

from __future__ import annotations

import io
import logging
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from imgdedup.embedding import models
from imgdedup.embedding.embedder import (
    Embedder,
    default_cache_dir,
    load_embedder,
    preprocess_for_model,
    weights_digest,
)
from imgdedup.errors import ConfigError

# ImageNet indices, checked against torchvision's category names in test_imagenet_indices_are_what_we_assert.
DAISY = 985
ARCHITECTURE = {
    442: "bell cote",
    483: "castle",
    497: "church",
    538: "dome",
    663: "monastery",
    698: "palace",
    832: "stupa",
    449: "boathouse",
}


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    from sklearn.datasets import load_sample_images

    data = load_sample_images()
    names = [p.rsplit("/", 1)[-1].rsplit("\\", 1)[-1] for p in data.filenames]
    return {name: Image.fromarray(arr) for name, arr in zip(names, data.images)}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="module")
def onnx_embedder(cache_dir) -> Embedder:
    return Embedder(runtime="onnx", threads=2, cache_dir=cache_dir)


@pytest.fixture(scope="module")
def torch_embedder() -> Embedder:
    return Embedder(runtime="torch", threads=2)


def jpeg_copy(image: Image.Image, quality: int = 60) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


# ----------------------------------------------------------------------------- the weights are right


def test_logits_identical_to_reference_implementation(photos):
    """Our EfficientNet-Lite0 gives the same logits as the authors' efficientnet_lite_pytorch on the same weights."""
    from efficientnet_lite_pytorch import EfficientNet

    path = models.lite0_weights_path()
    ref = EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    ref.eval()
    ours = models.efficientnet_lite0()
    fused = models.fuse_batchnorm(models.efficientnet_lite0())
    rng = np.random.default_rng(0)
    x = np.concatenate(
        [
            rng.uniform(-1, 1, (2, 3, 224, 224)).astype(np.float32),
            np.stack([preprocess_for_model(im) for im in photos.values()]),
        ]
    )
    with torch.inference_mode():
        want = ref(torch.from_numpy(x)).numpy()
        got = ours(torch.from_numpy(x)).numpy()
        got_fused = fused(torch.from_numpy(x)).numpy()
    assert want.shape == (4, 1000)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    np.testing.assert_allclose(got_fused, want, rtol=0, atol=1e-4)  # batch norm folded into the convolutions
    assert (got.argmax(1) == want.argmax(1)).all()


def test_imagenet_indices_are_what_we_assert():
    from torchvision.models import EfficientNet_B0_Weights

    categories = EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"]
    assert categories[DAISY] == "daisy"
    for idx, name in ARCHITECTURE.items():
        assert categories[idx] == name


def _probabilities(net, image, mean, std):
    x = preprocess_for_model(image, 224, mean, std)[None]
    with torch.inference_mode():
        return net(torch.from_numpy(x)).softmax(1)[0].numpy()


def test_top5_classes_on_real_photos_and_preprocessing(photos):
    """china.jpg is a temple: top-5 are buildings; flower.jpg: top-1 is daisy, but only with [-1, 1] inputs."""
    net = models.efficientnet_lite0()
    p_china = _probabilities(net, photos["china.jpg"], models.LITE0_MEAN, models.LITE0_STD)
    top5 = list(np.argsort(-p_china)[:5])
    assert top5[0] in ARCHITECTURE, top5
    assert len(set(top5) & set(ARCHITECTURE)) >= 3, top5
    p_flower = _probabilities(net, photos["flower.jpg"], models.LITE0_MEAN, models.LITE0_STD)
    assert int(np.argmax(p_flower)) == DAISY
    # The TF-converted weights expect (x - 127.5) / 127.5; ImageNet mean/std makes the flower unrecognisable.
    p_flower_imagenet = _probabilities(net, photos["flower.jpg"], models.IMAGENET_MEAN, models.IMAGENET_STD)
    assert int(np.argmax(p_flower_imagenet)) != DAISY
    assert p_flower[DAISY] > 3 * p_flower_imagenet[DAISY]


# ----------------------------------------------------------------------------- embeddings


def test_embedding_shape_dtype_norm_and_identity(onnx_embedder, photos):
    emb = onnx_embedder
    assert emb.dim == 1280 and emb.runtime == "onnx" and emb.device == "cpu"
    vecs = emb.embed_images(list(photos.values()))
    assert vecs.shape == (2, 1280) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert emb.embed_images([]).shape == (0, 1280)
    ident = emb.identity
    assert ident["model"] == "efficientnet_lite0"
    assert ident["weights_sha256"] == weights_digest(models.lite0_weights_path())
    assert len(ident["weights_sha256"]) == 64
    assert (ident["input_size"], ident["pooling"], ident["mirror"], ident["dim"]) == (224, "avg", False, 1280)
    assert "224x224" in ident["preprocessing"] and "0.5" in ident["preprocessing"]


def test_copies_are_close_and_different_photos_are_not(onnx_embedder, photos):
    china, flower = photos["china.jpg"], photos["flower.jpg"]
    a = china.crop((0, 0, 400, 400))
    b = flower.crop((100, 0, 500, 400))
    c = china.crop((240, 27, 640, 427))  # another part of the same temple
    copies = [
        jpeg_copy(a.resize((200, 200), Image.Resampling.BICUBIC), quality=60),  # downscaled, re-encoded
        a.crop((20, 20, 380, 380)),  # 10% crop
        ImageOps.expand(a, 30, fill="white"),  # border
    ]
    v = onnx_embedder.embed_images([a, b, c] + copies)
    for i in range(3, 6):
        assert cos(v[0], v[i]) > 0.85, (i, cos(v[0], v[i]))
    assert cos(v[0], v[3]) > 0.9 and cos(v[0], v[4]) > 0.9
    assert cos(v[0], v[1]) < 0.5  # temple vs flower
    assert cos(v[0], v[1]) < cos(v[0], v[2]) < min(cos(v[0], v[i]) for i in range(3, 6))


def test_mirror_makes_flipped_copies_identical(cache_dir, onnx_embedder, photos):
    a = photos["china.jpg"].crop((0, 0, 400, 400))
    flipped = ImageOps.mirror(a)
    plain = onnx_embedder.embed_images([a, flipped])
    emb = Embedder(mirror=True, runtime="onnx", threads=2, cache_dir=cache_dir)
    both = emb.embed_images([a, flipped])
    assert cos(both[0], both[1]) > 0.9999
    assert cos(plain[0], plain[1]) < 0.99  # without mirroring the flip does change the vector
    np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1.0, atol=1e-5)
    assert emb.identity["mirror"] is True and emb.identity != onnx_embedder.identity


def test_gem_pooling(cache_dir, photos):
    china, flower = photos["china.jpg"], photos["flower.jpg"]
    emb = Embedder(pooling="gem", runtime="torch", threads=2)
    v = emb.embed_images([china, jpeg_copy(china.resize((320, 213))), flower])
    assert v.shape == (3, 1280)
    assert cos(v[0], v[1]) > 0.9 > cos(v[0], v[2])
    assert emb.identity["pooling"] == "gem(p=3)"


def bordered(image: Image.Image, fraction: float = 0.1, fill=(255, 255, 255)) -> Image.Image:
    return ImageOps.expand(image, border=(round(image.width * fraction), round(image.height * fraction)), fill=fill)


@pytest.fixture(scope="module")
def block_cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-cache-block")


def test_duplicate_tuned_embedding_matches_bordered_grey_and_mirrored_copies(block_cache_dir, photos):
    """The pipeline's embedding (last block, GeM, mirror, grey, trimmed) scores such copies as the original."""
    emb = Embedder(
        layer="block",
        pooling="gem",
        mirror=True,
        grayscale=True,
        trim=True,
        runtime="onnx",
        threads=2,
        cache_dir=block_cache_dir,
    )
    china, flower = photos["china.jpg"], photos["flower.jpg"]
    copies = [bordered(china), bordered(china, 0.15, (0, 0, 0)), china.convert("L"), ImageOps.mirror(china)]
    datas = []
    for image in [china, *copies, flower]:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=90)
        datas.append(buffer.getvalue())
    vectors, hashes = emb.embed_and_hash_bytes(datas)
    assert emb.dim == 320 and vectors.shape == (6, 320) and hashes.dtype == np.uint64
    for k in range(1, 5):
        assert cos(vectors[0], vectors[k]) >= 0.975, k
    assert cos(vectors[0], vectors[5]) < 0.875
    distance = lambda a, b: min(bin(int(a[0] ^ b[0])).count("1"), bin(int(a[1] ^ b[1])).count("1"))  # noqa: E731
    assert all(distance(hashes[0], hashes[k]) <= 4 for k in (1, 2, 3)), hashes  # margins trimmed, grey
    assert distance(hashes[0], hashes[5]) > 15
    plain = Embedder(runtime="torch", threads=2).embed_bytes(datas[:2])
    assert cos(plain[0], plain[1]) < 0.975  # without trimming the border does move the vector
    ident = emb.identity
    assert (ident["layer"], ident["pooling"], ident["mirror"], ident["dim"]) == ("block", "gem(p=3)", True, 320)
    assert "grey" in ident["preprocessing"] and "margins trimmed" in ident["preprocessing"]


def test_block_layer_onnx_matches_torch(block_cache_dir, photos):
    onnx = Embedder(layer="block", pooling="gem", runtime="onnx", threads=2, cache_dir=block_cache_dir)
    eager = Embedder(layer="block", pooling="gem", runtime="torch", threads=2)
    x = onnx.preprocess(list(photos.values()))
    np.testing.assert_allclose(onnx.embed_arrays(x), eager.embed_arrays(x), rtol=0, atol=1e-4)
    assert onnx.identity == eager.identity


def test_onnx_matches_torch(onnx_embedder, torch_embedder, photos):
    images = list(photos.values()) + [photos["china.jpg"].crop((50, 50, 300, 300))]
    x = onnx_embedder.preprocess(images)
    assert x.shape == (3, 3, 224, 224) and x.dtype == np.float32
    a = onnx_embedder.embed_arrays(x)
    b = torch_embedder.embed_arrays(x)
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-4)
    assert np.min(np.sum(a * b, axis=1)) > 0.99999
    # The batch dimension is dynamic: one image at a time gives the same vectors.
    one_by_one = np.concatenate([onnx_embedder.embed_arrays(x[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(one_by_one, a, rtol=0, atol=1e-5)
    assert onnx_embedder.identity == torch_embedder.identity


def test_onnx_export_is_cached(cache_dir, onnx_embedder):
    files = sorted(cache_dir.glob("*.onnx"))
    assert len(files) == 1 and files[0].name.startswith("efficientnet_lite0-")
    mtime = files[0].stat().st_mtime_ns
    again = Embedder(runtime="onnx", cache_dir=cache_dir)
    assert sorted(cache_dir.glob("*.onnx")) == files and files[0].stat().st_mtime_ns == mtime
    assert again.runtime == "onnx"
    assert not list(cache_dir.glob("*.tmp"))


def test_a_cached_export_starts_without_torch_and_gives_the_same_embedder(cache_dir, onnx_embedder, photos):
    """On a machine without a GPU the default model starts from its cached ONNX file alone (no torch import),
    with the identity and the vectors the torch-built embedder has."""
    import json

    from imgdedup.embedding.embedder import _gpu_possible

    code = (
        "import sys, json, numpy as np, imgdedup.embedding.embedder as e\n"
        f"emb = e.Embedder(runtime='onnx', threads=2, cache_dir={str(cache_dir)!r})\n"
        f"pixels = np.load({str(cache_dir / 'batch.npy')!r})\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'identity': emb.identity, 'runtime': emb.runtime,\n"
        "                  'vectors': emb.embed_arrays(pixels).tolist()}))\n"
    )
    batch = onnx_embedder.preprocess(list(photos.values()))
    np.save(cache_dir / "batch.npy", batch)
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["torch"] == _gpu_possible()  # a GPU here: torch decides the device, so it is imported
    assert found["identity"] == onnx_embedder.identity and found["runtime"] == "onnx"
    np.testing.assert_array_equal(np.asarray(found["vectors"], dtype=np.float32), onnx_embedder.embed_arrays(batch))


def test_default_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IMGDEDUP_CACHE_DIR", str(tmp_path))
    assert default_cache_dir() == tmp_path / "onnx"
    monkeypatch.delenv("IMGDEDUP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "imgdedup" / "onnx"


def test_bytes_draft_decoding_and_preprocess(onnx_embedder, photos):
    big = photos["china.jpg"].resize((1280, 854), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, "JPEG", quality=92)
    data = buf.getvalue()
    lazy = Image.open(io.BytesIO(data))
    x = preprocess_for_model(lazy)
    assert lazy.size == (640, 427)  # decoded at 1/2 scale by libjpeg, not at full size
    assert x.shape == (3, 224, 224) and x.dtype == np.float32
    assert -1.0 <= x.min() and x.max() <= 1.0
    full = preprocess_for_model(Image.open(io.BytesIO(data)).convert("RGB"))
    assert np.abs(x - full).mean() < 0.02
    from_bytes = onnx_embedder.embed_bytes([data])
    from_image = onnx_embedder.embed_images([Image.open(io.BytesIO(data))])
    assert cos(from_bytes[0], from_image[0]) > 0.999  # same pixels up to the loader's early reduction
    assert cos(from_bytes[0], onnx_embedder.embed_images([big])[0]) > 0.98


def test_batches_and_prefetch_do_not_change_results(cache_dir, onnx_embedder, photos):
    images = [photos["china.jpg"].crop((i * 20, 0, 300 + i * 20, 300)) for i in range(5)]
    whole = onnx_embedder.embed_images(images)
    small = Embedder(runtime="onnx", batch_size=2, cache_dir=cache_dir)
    np.testing.assert_allclose(small.embed_images(images), whole, atol=1e-5)


def test_embedder_pickles(cache_dir, onnx_embedder, photos):
    clone = pickle.loads(pickle.dumps(onnx_embedder))
    assert clone.identity == onnx_embedder.identity and clone.runtime == "onnx"
    image = photos["flower.jpg"]
    np.testing.assert_allclose(clone.embed_images([image]), onnx_embedder.embed_images([image]), atol=1e-6)


# ----------------------------------------------------------------------------- other models


def test_torchvision_model_from_local_state_dict(tmp_path, photos):
    import torchvision

    torch.manual_seed(0)
    reference = torchvision.models.mobilenet_v3_small(weights=None).eval()
    path = tmp_path / "mobilenet_v3_small.pth"
    torch.save(reference.state_dict(), path)
    emb = load_embedder("torchvision:mobilenet_v3_small", weights_path=path, runtime="torch", threads=2)
    assert emb.dim == 576 and emb.input_size == 224
    assert emb.identity["model"] == "torchvision:mobilenet_v3_small"
    assert emb.identity["weights_sha256"] == weights_digest(path)
    assert emb.mean == models.IMAGENET_MEAN
    x = emb.preprocess(list(photos.values()))
    with torch.inference_mode():
        want = reference.avgpool(reference.features(torch.from_numpy(x))).flatten(1).numpy()
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(emb.embed_arrays(x), want, atol=1e-5)
    gem = Embedder("torchvision:mobilenet_v3_small", weights_path=path, pooling="gem", runtime="torch")
    assert gem.dim == 576 and not np.allclose(gem.embed_arrays(x), want, atol=1e-3)


def test_timm_model_from_local_state_dict(tmp_path, photos):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    reference = timm.create_model("resnet10t", pretrained=False).eval()
    path = tmp_path / "resnet10t.pth"
    torch.save(reference.state_dict(), path)
    emb = load_embedder("timm:resnet10t", weights_path=path, runtime="torch")
    assert emb.dim == reference.num_features
    x = emb.preprocess([photos["china.jpg"]])
    with torch.inference_mode():
        want = reference.forward_head(reference.forward_features(torch.from_numpy(x)), pre_logits=True).numpy()
    np.testing.assert_allclose(emb.embed_arrays(x), want / np.linalg.norm(want), atol=1e-5)


class TinyNet(torch.nn.Module):
    """A custom model: two convolutions, returns a feature map."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, stride=2)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2)

    def forward(self, x):
        return torch.relu(self.conv2(torch.relu(self.conv1(x))))


class PooledNet(TinyNet):
    def forward(self, x):
        return super().forward(x).mean((2, 3))


def tiny_transform(image: Image.Image) -> np.ndarray:
    """Resize to 64x64, scale to [0, 1], channels first."""
    return np.asarray(image.convert("RGB").resize((64, 64)), dtype=np.float32).transpose(2, 0, 1) / 255.0


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_custom_module_and_transform(runtime, photos):
    torch.manual_seed(0)
    net = TinyNet().eval()
    emb = Embedder(model=net, transform=tiny_transform, runtime=runtime, threads=2)
    assert (emb.dim, emb.input_size, emb.runtime) == (16, 64, runtime)
    assert emb.identity["model"].endswith("TinyNet") and "tiny_transform" in emb.identity["preprocessing"]
    images = list(photos.values())
    x = np.stack([tiny_transform(im) for im in images])
    with torch.inference_mode():
        want = net(torch.from_numpy(x)).mean((2, 3)).numpy()
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(emb.embed_images(images), want, atol=1e-5)


def test_custom_module_that_pools_itself_rejects_gem():
    net = PooledNet().eval()
    assert Embedder(model=net, runtime="torch", input_size=64).dim == 16
    with pytest.raises(ConfigError, match="pooling='gem'"):
        Embedder(model=net, pooling="gem", runtime="torch", input_size=64)


# ----------------------------------------------------------------------------- device, errors, imports


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback on a machine without CUDA")
def test_cuda_request_without_cuda_falls_back_to_cpu(caplog):
    with caplog.at_level(logging.WARNING, logger="imgdedup.embedding.embedder"):
        emb = Embedder(model=TinyNet().eval(), device="cuda", runtime="auto", input_size=64)
    assert emb.device == "cpu"
    assert any("CUDA is not available" in r.getMessage() for r in caplog.records)
    assert emb.embed_arrays(np.zeros((1, 3, 64, 64), np.float32)).shape == (1, 16)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"pooling": "max"}, r"pooling must be one of 'avg', 'gem'; got 'max'"),
        ({"device": "tpu"}, r"device must be one of .*got 'tpu'"),
        ({"runtime": "tvm"}, r"runtime must be one of .*got 'tvm'"),
        ({"threads": 0}, r"threads must be an integer >= 1 or None; got 0"),
        ({"batch_size": 0}, r"batch_size must be an integer >= 1; got 0"),
        ({"batch_size": True}, r"batch_size must be .*got True"),
        ({"mirror": "yes"}, r"mirror must be True or False; got 'yes'"),
        ({"input_size": 8}, r"input_size must be an integer >= 32 or None; got 8"),
        ({"weights_path": "/no/such/file.pth"}, r"weights_path must be an existing file; got '/no/such/file.pth'"),
        ({"model": "resnet50"}, r"model must be 'efficientnet_lite0', 'torchvision:<name>'.*got 'resnet50'"),
        ({"model": "torchvision:"}, r"model must be .*got 'torchvision:'"),
        ({"model": 42}, r"model must be .*got 42"),
        ({"model": "torchvision:no_such_net"}, r"torchvision has no model 'no_such_net'"),
        ({"transform": 5}, r"transform must be a callable"),
        ({"cache_dir": 5}, r"cache_dir must be a path or None; got 5"),
        ({"layer": "side"}, r"layer must be one of 'head', 'block'; got 'side'"),
        ({"grayscale": 1}, r"grayscale must be True or False; got 1"),
        ({"trim": "no"}, r"trim must be True or False; got 'no'"),
        (
            {"model": "torchvision:resnet18", "layer": "block"},
            r"layer='block' is only defined for 'efficientnet_lite0'",
        ),
        ({"transform": lambda im: np.zeros((3, 8, 8)), "trim": True}, r"a custom transform must do them itself"),
    ],
)
def test_invalid_arguments_name_the_parameter(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Embedder(**kwargs)


def test_invalid_calls(torch_embedder):
    with pytest.raises(ConfigError, match=r"spec must be a string"):
        load_embedder(None)
    with pytest.raises(ConfigError, match=r"got 'foo:bar'"):
        load_embedder("foo:bar")
    with pytest.raises(ConfigError, match=r"batch must have shape \(N, 3, H, W\); got \(3, 224, 224\)"):
        torch_embedder.embed_arrays(np.zeros((3, 224, 224), np.float32))
    with pytest.raises(ConfigError, match=r"batch must be a float array; got dtype uint8"):
        torch_embedder.embed_arrays(np.zeros((1, 3, 224, 224), np.uint8))
    with pytest.raises(ConfigError, match=r"images must be PIL.Image.Image objects; got ndarray"):
        torch_embedder.embed_images([np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(ConfigError, match=r"weights path '/no/such' is not an existing file"):
        weights_digest("/no/such")


def test_import_does_not_load_torch_until_an_embedder_is_made():
    code = (
        "import sys, imgdedup.embedding.embedder, imgdedup.embedding.models\n"
        "assert 'torch' not in sys.modules, 'torch imported at import time'\n"
        "try:\n    imgdedup.embedding.embedder.Embedder(pooling='max')\nexcept ValueError:\n    pass\nelse:\n    raise SystemExit('no error')\n"
        "assert 'torch' not in sys.modules, 'torch imported to validate arguments'\n"
        "e = imgdedup.embedding.embedder.Embedder(runtime='torch', threads=1)\n"
        "assert 'torch' in sys.modules and e.dim == 1280\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
