"""Visual references: for each query segment, its nearest segment in another image.

The paper (Table 1, part 3): with ``S`` the segment embeddings and ``W = S Sᵀ``, the match of segment
``i`` is ``argmax_{j ≠ i} W_ij``. We take ``j`` from *other images* only (a reference from the same
image would leak the answer into interleave retrieval), optionally from the same category, and use
cosine similarity (rows L2-normalised).

``prob``: a softmax with temperature ``TAU`` over the ``K`` highest cosine similarities among the
allowed candidates, read at the chosen one::

    prob = exp(s_1 / TAU) / sum_{m=1..K'} exp(s_m / TAU),   K' = min(K, number of candidates)

So ``prob`` is near 1 when the match clearly beats the runners-up and near ``1/K'`` when several
candidates are equally close; it is not an absolute similarity. Defaults ``K = 10``, ``TAU = 0.05``.

Search backends (identical results up to float rounding and exact ties, IVF aside):

* ``exact``: chunked ``torch`` matrix products and top-k over the whole gallery, masking the
  query's image; ties go to the lower gallery index (among the top ``K``). O(n²·d) time, bounded
  memory (chunks of ``CHUNK_ELEMS`` scores).
* ``faiss``: ``IndexFlatIP`` (exact, BLAS-blocked) below ``IVF_MIN`` gallery segments, else
  ``IndexIVFFlat`` (approximate: ~sqrt(n) lists, ``nprobe`` of them searched per query). The index
  returns the top ``max segments per image + K`` neighbours so that, after dropping the query's own
  image, K remain; a query left with none (IVF can miss) falls back to exact search.
* ``auto``: ``exact`` up to ``AUTO_EXACT_MAX`` gallery segments, ``faiss`` above. On this project's
  2-core CPU (``benchmarks/data_engine.py``) faiss' flat index already beats chunked torch at 10k
  segments, and IVF beats the flat index from about 50k.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

K = 10
TAU = 0.05
CHUNK_ELEMS = 1 << 24  # scores per chunk: 64 MiB of float32
IVF_MIN = 50_000
AUTO_EXACT_MAX = 5_000


@dataclass(frozen=True)
class Match:
    query: int  # index into the gallery
    match: int  # index into the gallery, in another image
    similarity: float
    prob: float


def normalise(emb: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32 C-contiguous (what faiss needs)."""
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    if emb.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (n, dim), got shape {emb.shape}")
    if not np.isfinite(emb).all():
        raise ValueError("embeddings contain NaN or infinity")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return np.ascontiguousarray(emb / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def softmax_prob(top: np.ndarray) -> float:
    """``prob`` of the best of the similarities ``top`` (sorted descending), as in the module docstring."""
    z = (top - top[0]) / TAU
    return float(1.0 / np.exp(z).sum())


def _ranges(image_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per gallery row, the [lo, hi) row range of its image; images must be contiguous."""
    n = len(image_of)
    change = np.flatnonzero(np.diff(image_of)) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [n]])
    if len(np.unique(image_of[starts])) != len(starts):
        raise ValueError("gallery rows of one image must be contiguous")
    which = np.repeat(np.arange(len(starts)), ends - starts)
    return starts[which], ends[which]


Candidates = list[tuple[np.ndarray, np.ndarray]]  # per query: (gallery indices, similarities), best first


def _exact(gallery: np.ndarray, image_of: np.ndarray, queries: np.ndarray, k: int) -> Candidates:
    """Per query: (candidate indices, similarities), best first, at most ``k``; own image excluded."""
    import torch  # multi-threaded matmul and top-k; numpy's argpartition is single-threaded

    lo, hi = _ranges(image_of)
    n = len(gallery)
    g = torch.from_numpy(gallery)
    cols = torch.arange(n)
    kk = min(k, n)
    out: Candidates = []
    chunk = max(1, CHUNK_ELEMS // max(n, 1))
    for c0 in range(0, len(queries), chunk):
        q = queries[c0 : c0 + chunk]
        scores = g[torch.from_numpy(q)] @ g.T
        own = (cols >= torch.from_numpy(lo[q])[:, None]) & (cols < torch.from_numpy(hi[q])[:, None])
        scores.masked_fill_(own, -math.inf)
        vals, idx = torch.topk(scores, kk, dim=1)
        vals, idx = vals.numpy(), idx.numpy()
        order = np.lexsort((idx, -vals), axis=1)  # similarity descending, then lower index
        vals, idx = np.take_along_axis(vals, order, 1), np.take_along_axis(idx, order, 1)
        allowed = np.minimum(kk, n - (hi[q] - lo[q]))
        out.extend((idx[r, : allowed[r]].astype(np.int64), vals[r, : allowed[r]]) for r in range(len(q)))
    return out


def _faiss(gallery: np.ndarray, image_of: np.ndarray, queries: np.ndarray, k: int, nprobe: int) -> Candidates:
    import faiss

    n, d = gallery.shape
    lo, hi = _ranges(image_of)
    per_image = int((hi - lo).max())
    if n < IVF_MIN:
        index = faiss.IndexFlatIP(d)
    else:
        # ~sqrt(n) lists, trained on 40 points per list (faiss warns below 39): training stays a small
        # fraction of the search time, and a list holds ~sqrt(n) segments.
        nlist = int(max(1, min(65536, round(math.sqrt(n)), n // 40)))
        quantizer = faiss.IndexFlatIP(d)  # kept in a local: the IVF index borrows it for its lifetime
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        # A fixed subsample keeps training (and so the results) deterministic and fast.
        rng = np.random.default_rng(0)
        sample = gallery[np.sort(rng.choice(n, size=min(n, 40 * nlist), replace=False))]
        index.train(sample)
        index.nprobe = max(1, min(nprobe, nlist))
    index.add(gallery)
    kk = min(n, per_image + k)
    sims, idx = index.search(gallery[queries], kk)
    out: Candidates = []
    missing: list[int] = []
    for r, qi in enumerate(queries):
        ids, ss = idx[r], sims[r]
        keep = (ids >= 0) & ((ids < lo[qi]) | (ids >= hi[qi]))
        ids, ss = ids[keep], ss[keep]
        order = np.lexsort((ids, -ss))[:k]  # the same tie-break as exact search: lower index first
        ids, ss = ids[order], ss[order]
        if len(ids) == 0 and n - (hi[qi] - lo[qi]) > 0:
            missing.append(r)
        out.append((ids.astype(np.int64), ss))
    if missing:  # IVF probed only lists holding the query's own image: answer those exactly
        fixed = _exact(gallery, image_of, queries[missing], k)
        for r, res in zip(missing, fixed):
            out[r] = res
    return out


def nearest_in_other_images(
    embeddings: np.ndarray,
    image_of: np.ndarray,
    queries: np.ndarray,
    *,
    category_of: np.ndarray | None = None,
    index: str = "auto",
    k: int = K,
    nprobe: int = 16,
) -> list[Match | None]:
    """For each gallery row in ``queries``, its best match in another image (``None`` if there is none).

    ``embeddings``: (n, d) gallery, rows of one image contiguous; ``image_of``: (n,) image id per row;
    ``category_of``: (n,) category per row, to restrict matches to the query's category.
    """
    gallery = normalise(embeddings)
    image_of = np.asarray(image_of)
    queries = np.asarray(queries, dtype=np.int64)
    if len(image_of) != len(gallery):
        raise ValueError("image_of must have one entry per embedding row")
    if index not in ("exact", "faiss", "auto"):
        raise ValueError(f"unknown index {index!r} (expected exact, faiss or auto)")
    results: list[Match | None] = [None] * len(queries)
    if len(queries) == 0:
        return results
    groups = [(np.arange(len(gallery)), np.arange(len(queries)))]
    if category_of is not None:
        category_of = np.asarray(category_of)
        groups = []
        for c in np.unique(category_of[queries]):
            groups.append((np.flatnonzero(category_of == c), np.flatnonzero(category_of[queries] == c)))
    for rows, qpos in groups:
        sub = gallery[rows]
        local = np.searchsorted(rows, queries[qpos])  # rows is sorted, so the mapping is exact
        use_faiss = index == "faiss" or (index == "auto" and len(rows) > AUTO_EXACT_MAX)
        if use_faiss:
            found = _faiss(sub, image_of[rows], local, k, nprobe)
        else:
            found = _exact(sub, image_of[rows], local, k)
        for p, (cand, sims) in zip(qpos, found):
            if len(cand) == 0:
                continue
            results[p] = Match(
                query=int(queries[p]),
                match=int(rows[cand[0]]),
                similarity=float(sims[0]),
                prob=softmax_prob(np.asarray(sims, dtype=np.float64)),
            )
    return results
