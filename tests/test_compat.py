"""compat=True reproduces imagededup 0.3.3's hashes bit for bit (imagededup is a test extra)."""

import pytest

imagededup_methods = pytest.importorskip("imagededup.methods", reason="imagededup is installed by the test extra")

from imgdedup.compat import methods  # noqa: E402
from tests.images import write_varied_images  # noqa: E402

PAIRS = [
    (methods.PHash, imagededup_methods.PHash),
    (methods.DHash, imagededup_methods.DHash),
    (methods.AHash, imagededup_methods.AHash),
    (methods.WHash, imagededup_methods.WHash),
]


@pytest.fixture(scope="module")
def varied_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("varied")
    write_varied_images(folder, seed=0)
    write_varied_images(folder / "more", seed=1)
    return folder


@pytest.mark.parametrize("ours,theirs", PAIRS, ids=lambda c: getattr(c, "__name__", ""))
def test_compat_hashes_equal_imagededup_on_every_file(ours, theirs, varied_folder):
    """Every file imagededup can hash gets the identical hex hash from compat mode."""
    encoder = theirs(verbose=False)
    expected = {}
    for path in sorted(varied_folder.rglob("*")):
        if path.is_file():
            value = encoder.encode_image(image_file=str(path))
            if value is not None:
                expected[path.relative_to(varied_folder).as_posix()] = value
    got = ours(verbose=False, compat=True).encode_images(varied_folder, recursive=True)
    assert len(expected) >= 30
    assert got == expected


# imagededup itself warns on every find_duplicates(encoding_map=...) call.
@pytest.mark.filterwarnings("ignore:Parameter num_enc_workers has no effect:RuntimeWarning")
@pytest.mark.parametrize("ours,theirs", PAIRS, ids=lambda c: getattr(c, "__name__", ""))
def test_compat_find_duplicates_equals_imagededup(ours, theirs, sample_folder):
    """Same encodings in, the same duplicates map out (including order and scores)."""
    folder, _ = sample_folder
    encodings = ours(verbose=False, compat=True).encode_images(folder, recursive=True)
    for scores in (False, True):
        expected = theirs(verbose=False).find_duplicates(
            encoding_map=encodings, max_distance_threshold=12, scores=scores, search_method="brute_force"
        )
        got = ours(verbose=False).find_duplicates(encoding_map=encodings, max_distance_threshold=12, scores=scores)
        if scores:
            expected = {k: sorted((n, int(d)) for n, d in v) for k, v in expected.items()}
            got = {k: sorted(v) for k, v in got.items()}
        else:
            expected = {k: sorted(v) for k, v in expected.items()}
            got = {k: sorted(v) for k, v in got.items()}
        assert got == expected
    removed_theirs = theirs(verbose=False).find_duplicates_to_remove(encoding_map=encodings, max_distance_threshold=12)
    removed_ours = ours(verbose=False).find_duplicates_to_remove(encoding_map=encodings, max_distance_threshold=12)
    assert sorted(removed_ours) == sorted(removed_theirs)
    assert removed_ours, "the sample has duplicates, so something must be removable"


def test_every_imagededup_search_method_name_gives_the_same_result(sample_folder):
    """search_method is accepted as in imagededup; all three names use the exact index."""
    folder, _ = sample_folder
    encodings = methods.PHash(verbose=False).encode_images(folder, recursive=True)
    results = [
        methods.PHash(verbose=False).find_duplicates(
            encoding_map=encodings, max_distance_threshold=10, search_method=name, scores=True
        )
        for name in ("brute_force", "bktree", "brute_force_cython")
    ]
    assert results[0] == results[1] == results[2]
    with pytest.raises(ValueError, match="`search_method` must be one of"):
        methods.PHash(verbose=False).find_duplicates(encoding_map=encodings, search_method="annoy")
