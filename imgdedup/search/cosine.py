"""Exact cosine-similarity search over L2-normalised embeddings.

Rows are unit vectors, so cosine similarity is a dot product. The search walks
the upper triangle of the similarity matrix in blocks of rows, so memory stays
at ``block x N`` scores whatever N is, and no pair is approximated.

Each block is one matrix product in two steps:

1. **Filter.** The product runs in bfloat16 (oneDNN, twice the float32 rate on
   CPUs with AVX-512 BF16 or AMX; float32 elsewhere). Rounding a unit vector's
   components to bfloat16 (unit roundoff ``u = 2**-8``) moves a dot product by at
   most ``(2u + u**2) |a| |b|``; accumulating in float32 and rounding the result
   to bfloat16 add at most ``D * 2**-24 |a| |b|`` and ``u |a| |b|``. Every pair
   whose bfloat16 score reaches ``min_similarity - FILTER_MARGIN * max|x|**2``
   is a candidate: no pair at or above the threshold can be missed.
2. **Verify.** Candidates are scored again in float32, one dot product per
   pair, and kept when that score reaches the threshold. The scores returned
   are these float32 dot products, whichever filter ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported on first search: hash-only runs never load it
    import torch

#: Margin of the bfloat16 filter for unit rows: 2**-6 = 0.0156 covers the
#: worst-case error 3 * 2**-8 + 2**-16 + D * 2**-24 (0.0118 for D = 1280, 0.0123 for
#: D = 4096) with room to spare; the float32 filter's worst case is D * 2**-24.
FILTER_MARGIN = {"bfloat16": 2.0**-6, "float32": 2.0**-10}
#: Bytes of filter scores held at once; sets the block height from N.
BLOCK_BYTES = 256 * 2**20
#: Candidate pairs verified at once (two gathered rows each).
VERIFY_BATCH = 65536


def _check(embeddings: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(embeddings)
    if array.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D (N, D) array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"`{name}` must be a float array, got {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_threshold(min_similarity: float) -> float:
    if (
        isinstance(min_similarity, bool)
        or not isinstance(min_similarity, (int, float))
        or not -1.0 <= min_similarity <= 1.0
    ):
        raise ValueError(f"`min_similarity` must be a number in -1..1, got {min_similarity!r}")
    return float(min_similarity)


def filter_dtype() -> "torch.dtype":
    """bfloat16 where oneDNN runs it natively (AVX-512 BF16, AMX), else float32."""
    import torch

    try:
        native = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        native = False
    return torch.bfloat16 if native else torch.float32


def _block_rows(n_columns: int, block: int | None, itemsize: int) -> int:
    if block is not None:
        return max(1, int(block))
    return int(max(64, min(2048, BLOCK_BYTES // (itemsize * max(n_columns, 1)))))


class _Filter:
    """The low-precision copy of a set of rows and the margin its scores need."""

    def __init__(self, x: np.ndarray, dtype: "torch.dtype"):
        import torch

        self.name = str(dtype).removeprefix("torch.")
        if self.name not in FILTER_MARGIN:
            raise ValueError(f"`dtype` must be torch.bfloat16 or torch.float32, got {dtype!r}")
        self.dtype = dtype
        self.array = x
        self.rows = torch.from_numpy(x).to(self.dtype)
        # float32 sums are within D * 2**-24 of the true squared norms; 1 % more covers that.
        self.max_norm_sq = 1.01 * float(np.einsum("ij,ij->i", x, x).max()) if len(x) else 0.0

    def products(self, rows: slice, other: "_Filter", other_rows: slice) -> "torch.Tensor":
        """Scores of ``self[rows]`` against ``other[other_rows]``, a (len, other_len) tensor."""
        import torch

        if self.name == "float32":  # numpy's BLAS runs float32 faster than torch's CPU matmul here
            return torch.from_numpy(self.array[rows] @ other.array[other_rows].T)
        return self.rows[rows] @ other.rows[other_rows].T

    def margin(self, other: "_Filter") -> float:
        return FILTER_MARGIN[self.name] * max(self.max_norm_sq, other.max_norm_sq, 1.0)


def _representable_floor(value: float, dtype: "torch.dtype") -> float:
    """The largest number of ``dtype`` not above ``value``: a Python float compared
    with a bfloat16 tensor is rounded to bfloat16 first, possibly upwards."""
    import torch

    down = torch.tensor(value, dtype=torch.float64).to(dtype)
    if float(down) > value:
        down = torch.nextafter(down, torch.tensor(float("-inf"), dtype=dtype))
    return float(down)


def _candidates(scores: "torch.Tensor", floor: float) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every score >= ``floor``; rows with no such score are skipped cheaply."""
    import torch

    hit_rows = torch.nonzero(scores.amax(dim=1) >= floor).flatten()
    if len(hit_rows) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    r, c = torch.nonzero(scores[hit_rows] >= floor, as_tuple=True)
    return hit_rows[r].numpy().astype(np.int64), c.numpy().astype(np.int64)


def pair_dots(a, ia: np.ndarray, b, ib: np.ndarray) -> np.ndarray:
    """``a[ia[k]] . b[ib[k]]`` for every pair ``k``, one float32 dot product each (``a``, ``b``: arrays of
    rows, or anything indexed like them, e.g. :class:`~imgdedup.storage.store.PositionRows`).

    The rows are gathered :data:`VERIFY_BATCH` pairs at a time: gathering them all at once held
    two float32 copies of every pair's rows, 2.4 GB for 931k pairs of 320-d embeddings.
    """
    out = np.empty(len(ia), np.float32)
    for start in range(0, len(ia), VERIFY_BATCH):
        pa, pb = ia[start : start + VERIFY_BATCH], ib[start : start + VERIFY_BATCH]
        out[start : start + len(pa)] = np.einsum("ij,ij->i", a[pa], b[pb])
    return out


def _verify(
    a: np.ndarray, b: np.ndarray, ia: np.ndarray, ib: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = pair_dots(a, ia, b, ib)
    ok = s >= threshold
    return ia[ok], ib[ok], s[ok]


def cosine_pairs(
    embeddings: np.ndarray,
    min_similarity: float,
    block: int | None = None,
    dtype: "torch.dtype | None" = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair ``i < j`` with ``embeddings[i] @ embeddings[j] >= min_similarity``.

    Parameters
    ----------
    embeddings : (N, D) float ndarray
        L2-normalised rows (float16 is widened to float32).
    min_similarity : float
        Inclusive threshold in -1..1.
    block : int, optional
        Rows per block (default: from N, about 256 MB of scores).
    dtype : torch.dtype, optional
        Filter precision, ``torch.bfloat16`` or ``torch.float32`` (default:
        :func:`filter_dtype`). The result does not depend on it.

    Returns
    -------
    i, j : (P,) int64 ndarray
    similarity : (P,) float32 ndarray
        Float32 dot products, sorted by (i, j).
    """
    import torch

    threshold = _check_threshold(min_similarity)
    x = _check(embeddings, "embeddings")
    n = len(x)
    rows = _Filter(x, dtype or filter_dtype())
    floor = _representable_floor(threshold - rows.margin(rows), rows.dtype)
    block = _block_rows(n, block, rows.rows.element_size())
    out_i, out_j, out_s = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        # Only columns from `start` on: the lower triangle was covered by earlier blocks.
        scores = rows.products(slice(start, stop), rows, slice(start, None))
        # The block's diagonal and its own lower triangle are not pairs i < j.
        square = scores[:, : stop - start]
        square.masked_fill_(torch.ones_like(square, dtype=torch.bool).tril_(), float("-inf"))
        r, c = _candidates(scores, floor)
        a, b, s = _verify(x, x, r + start, c + start, threshold)
        out_i.append(a)
        out_j.append(b)
        out_s.append(s)
    return _finish(out_i, out_j, out_s)


def cosine_query(
    index_embeddings: np.ndarray,
    query_embeddings: np.ndarray,
    min_similarity: float,
    block: int | None = None,
    dtype: "torch.dtype | None" = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ``(query, index, similarity)`` with similarity >= ``min_similarity``, sorted by (query, index).

    The index is not searched against itself: this is the new-vs-old half of an
    incremental run.
    """
    threshold = _check_threshold(min_similarity)
    index = _check(index_embeddings, "index_embeddings")
    query = _check(query_embeddings, "query_embeddings")
    if index.shape[1:] != query.shape[1:] and len(index) and len(query):
        raise ValueError(f"embedding widths differ: index {index.shape[1]}, query {query.shape[1]}")
    if len(index) == 0 or len(query) == 0:
        return _finish([], [], [])
    dtype = dtype or filter_dtype()
    index_rows, query_rows = _Filter(index, dtype), _Filter(query, dtype)
    floor = _representable_floor(threshold - index_rows.margin(query_rows), dtype)
    block = _block_rows(len(index), block, index_rows.rows.element_size())
    out_q, out_k, out_s = [], [], []
    for start in range(0, len(query), block):
        scores = query_rows.products(slice(start, start + block), index_rows, slice(None))
        r, c = _candidates(scores, floor)
        q, k, s = _verify(query, index, r + start, c, threshold)
        out_q.append(q)
        out_k.append(k)
        out_s.append(s)
    return _finish(out_q, out_k, out_s)


def _finish(a_parts, b_parts, s_parts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not a_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    a = np.concatenate(a_parts).astype(np.int64)
    b = np.concatenate(b_parts).astype(np.int64)
    s = np.concatenate(s_parts).astype(np.float32)
    order = np.lexsort((b, a))
    return a[order], b[order], s[order]
