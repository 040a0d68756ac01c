"""Exact cosine-similarity search over L2-normalised embeddings.

Rows are unit vectors, so cosine similarity is a dot product. The search walks
the upper triangle of the similarity matrix in blocks of ``block`` rows: each
block is one matrix product (BLAS), thresholded at once, so memory stays at
``block x N`` floats whatever N is, and no pair is approximated.
"""

from __future__ import annotations

import numpy as np


def _check(embeddings: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(embeddings)
    if array.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D (N, D) array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(f"`{name}` must be a float array, got {array.dtype}")
    return np.ascontiguousarray(array, dtype=np.float32)


def _check_threshold(min_similarity: float) -> float:
    if isinstance(min_similarity, bool) or not isinstance(min_similarity, (int, float)) or not -1.0 <= min_similarity <= 1.0:
        raise ValueError(f"`min_similarity` must be a number in -1..1, got {min_similarity!r}")
    return float(min_similarity)


#: Bytes of similarity scores held at once; sets the block height from N.
BLOCK_BYTES = 256 * 2**20


def _block_rows(n_columns: int, block: int | None) -> int:
    if block is not None:
        return max(1, int(block))
    return int(max(64, min(4096, BLOCK_BYTES // (4 * max(n_columns, 1)))))


def cosine_pairs(embeddings: np.ndarray, min_similarity: float, block: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair ``i < j`` with ``embeddings[i] @ embeddings[j] >= min_similarity``.

    Parameters
    ----------
    embeddings : (N, D) float ndarray
        L2-normalised rows (float16 is widened to float32 block by block).
    min_similarity : float
        Inclusive threshold in -1..1.

    Returns
    -------
    i, j : (P,) int64 ndarray
    similarity : (P,) float32 ndarray
        Sorted by (i, j).
    """
    threshold = _check_threshold(min_similarity)
    x = _check(embeddings, "embeddings")
    n = len(x)
    block = _block_rows(n, block)
    out_i, out_j, out_s = [], [], []
    for start in range(0, n, block):
        stop = min(start + block, n)
        # Only columns from `start` on: the lower triangle was covered by earlier blocks.
        sims = x[start:stop] @ x[start:].T
        rows, cols = np.nonzero(sims >= threshold)
        keep = cols > rows  # drop the diagonal and the block's own lower triangle
        rows, cols = rows[keep], cols[keep]
        out_i.append(rows + start)
        out_j.append(cols + start)
        out_s.append(sims[rows, cols])
    return _finish(out_i, out_j, out_s)


def cosine_query(index_embeddings: np.ndarray, query_embeddings: np.ndarray, min_similarity: float, block: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ``(query, index, similarity)`` with similarity >= ``min_similarity``, sorted by (query, index).

    The index is not searched against itself: this is the new-vs-old half of an
    incremental run.
    """
    threshold = _check_threshold(min_similarity)
    index = _check(index_embeddings, "index_embeddings")
    query = _check(query_embeddings, "query_embeddings")
    if index.shape[1:] != query.shape[1:] and len(index) and len(query):
        raise ValueError(f"embedding widths differ: index {index.shape[1]}, query {query.shape[1]}")
    block = _block_rows(len(index), block)
    out_q, out_k, out_s = [], [], []
    for start in range(0, len(query), block):
        sims = query[start:start + block] @ index.T
        rows, cols = np.nonzero(sims >= threshold)
        out_q.append(rows + start)
        out_k.append(cols)
        out_s.append(sims[rows, cols])
    return _finish(out_q, out_k, out_s)


def _finish(a_parts, b_parts, s_parts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not a_parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    a = np.concatenate(a_parts).astype(np.int64)
    b = np.concatenate(b_parts).astype(np.int64)
    s = np.concatenate(s_parts).astype(np.float32)
    order = np.lexsort((b, a))
    return a[order], b[order], s[order]
