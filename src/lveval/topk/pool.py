"""The pool of kept rows: pruned to the top k of each group under one or more criteria.

Shared by the in-memory collector and the file passes of ``lveval topk``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..select import top_k_per_group


class _Pool:
    """Rows kept so far, in arrival order, pruned to the top k of each criterion's groups.

    ``criteria``: ``[(key, k), ...]``; a row is kept while it is among the top
    ``k`` of its group under at least one criterion. Group keys are mapped to
    dense indices (``_g0``, ``_g1``, ...) for the per-group thresholds.
    """

    MIN_BATCH = 1 << 18

    def __init__(self, criteria: Sequence[tuple[str, int]]):
        self.criteria = [(c, int(k)) for c, k in criteria]
        self._maps: list[dict] = [{} for _ in self.criteria]
        self._kth = [np.full(0, -np.inf) for _ in self.criteria]
        self.kept: dict | None = None
        self.n_kept = 0
        self.pending: list[dict] = []
        self.n_pending = 0
        self.n_seen = 0

    def _dense(self, i: int, keys: np.ndarray) -> np.ndarray:
        m = self._maps[i]
        if keys.ndim == 2:       # pair keys (image, category)
            u, inv = np.unique(keys, axis=0, return_inverse=True)
            ids = np.fromiter((m.setdefault(tuple(x), len(m)) for x in u.tolist()), np.int64, len(u))
        else:
            u, inv = np.unique(keys, return_inverse=True)
            ids = np.fromiter((m.setdefault(x, len(m)) for x in u.tolist()), np.int64, len(u))
        if len(m) > len(self._kth[i]):
            grown = np.full(max(len(m), 2 * len(self._kth[i])), -np.inf)
            grown[:len(self._kth[i])] = self._kth[i]
            self._kth[i] = grown
        return ids[inv.reshape(-1)].astype(np.int32)

    def push(self, cols: dict, keys: Sequence[np.ndarray]) -> None:
        """Append rows (``cols``: equal-length arrays incl. ``score``; ``keys``: one per criterion)."""
        score = cols["score"]
        n = len(score)
        if n == 0:
            return
        self.n_seen += n
        dense = [self._dense(i, np.asarray(kk)) for i, kk in enumerate(keys)]
        drop = np.ones(n, bool)
        for i, d in enumerate(dense):
            drop &= score <= self._kth[i][d]      # cannot beat the k-th kept row of a full group
        if drop.any():
            keep = ~drop
            cols = _take(cols, keep)
            dense = [d[keep] for d in dense]
        for i, d in enumerate(dense):
            cols[f"_g{i}"] = d
        n = len(cols["score"])
        if n:
            self.pending.append(cols)
            self.n_pending += n
        if self.n_pending >= max(self.n_kept // 4, self.MIN_BATCH):
            self.prune()

    def prune(self) -> None:
        if not self.pending:   # the kept rows are already exactly the criteria's top sets
            return
        parts = ([self.kept] if self.kept is not None else []) + self.pending
        self.pending, self.n_pending, self.kept, self.n_kept = [], 0, None, 0
        if not parts:
            return
        cols = _concat(parts)
        del parts
        n = len(cols["score"])
        mask = np.zeros(n, bool)
        for i, (_, k) in enumerate(self.criteria):
            m, kth = top_k_per_group(cols[f"_g{i}"], cols["score"], k, len(self._kth[i]))
            mask |= m
            self._kth[i] = np.maximum(self._kth[i], kth)
        self.kept = cols if mask.all() else _take(cols, mask)
        self.n_kept = len(self.kept["score"])

    def result(self) -> dict | None:
        """All kept rows after a final prune (exactly the union of the criteria's top sets)."""
        self.prune()
        return self.kept

    def __len__(self) -> int:
        return self.n_kept + self.n_pending


def _take(cols: dict, idx) -> dict:
    return {k: v[idx] for k, v in cols.items()}


def _concat(parts: list) -> dict:
    if len(parts) == 1:
        return dict(parts[0])
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
