"""Model labels to dataset category ids: integer labels, class names, LVIS synonyms.

Open-vocabulary detectors (Grounding DINO, OWL-ViT, YOLO-World) name what they
detect with the text they were prompted with, not an id. :class:`CategoryResolver`
maps such names to the ground truth's category ids by name or by any LVIS
synonym, ignoring case and treating spaces and underscores alike
(``"Aerosol can"``, ``"aerosol_can"`` and ``"spray can"`` are category 1 of
LVIS v1); parentheses count as spaces. Names it cannot resolve are counted, so a run can say what it
dropped instead of failing on the first one.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping

import numpy as np

_SPACES = re.compile(r"[\s_()]+")


def normalize_name(name) -> str:
    """``name`` lower-cased, with runs of spaces, underscores and parentheses as one space, stripped
    (``"bow_(weapon)"`` and ultralytics' ``"bow weapon"`` are one name)."""
    return _SPACES.sub(" ", str(name)).strip().lower()


class CategoryResolver:
    """Category names (and synonyms) -> category ids, counting names that match nothing.

    ``categories``: the ground truth's ``categories`` records (``id``, ``name``,
    optional ``synonyms``), a GroundTruth, or a ``{name: id}`` mapping. A
    name matches a category's own name first; a synonym shared by several
    categories resolves to the one with the smallest id.
    """

    def __init__(self, categories):
        self._table: dict[str, int] = {}
        self.unknown: Counter = Counter()
        names, synonyms = [], []
        for cid, name, syns in _category_records(categories):
            names.append((normalize_name(name), cid))
            synonyms.extend((normalize_name(s), cid) for s in syns)
        for key, cid in sorted(synonyms, key=lambda t: t[1], reverse=True):
            self._table[key] = cid
        for key, cid in sorted(names, key=lambda t: t[1], reverse=True):
            self._table[key] = cid

    def lookup(self, name) -> int | None:
        """The category id of ``name``, None when no category has that name or synonym."""
        return self._table.get(normalize_name(name))

    def __call__(self, labels: Iterable) -> np.ndarray:
        """Category id of each name (-1 where unknown; unknown names are counted in ``unknown``)."""
        labels = list(labels)
        cache: dict = {}
        out = np.empty(len(labels), np.int64)
        for i, lab in enumerate(labels):
            cid = cache.get(lab)
            if cid is None:
                cid = self.lookup(lab)
                cid = -1 if cid is None else cid
                cache[lab] = cid
            out[i] = cid
            if cid < 0:
                self.unknown[str(lab)] += 1
        return out

    def report(self, limit: int = 10) -> str | None:
        """One line naming the unknown labels and their detection counts (None when there were none)."""
        if not self.unknown:
            return None
        top = ", ".join(f"{n!r} ({c})" for n, c in self.unknown.most_common(limit))
        more = len(self.unknown) - limit
        return (f"{sum(self.unknown.values())} detections with {len(self.unknown)} label names matching no "
                f"category name or synonym were dropped: {top}{f', and {more} more' if more > 0 else ''}")

    def merge_unknown(self, counts: Mapping) -> None:
        """Add another worker's unknown-name counts."""
        self.unknown.update({str(k): int(v) for k, v in counts.items()})


def _category_records(categories):
    if hasattr(categories, "dataset") and hasattr(categories, "cat_ids"):     # a GroundTruth
        recs = categories.dataset.get("categories") if categories.dataset else None
        if not recs:
            return [(int(c), n, ()) for c, n in zip(categories.cat_ids, categories.cat_names)]
        categories = recs
    if isinstance(categories, Mapping):
        return [(int(cid), name, ()) for name, cid in categories.items()]
    return [(int(c["id"]), c.get("name", c["id"]), c.get("synonyms") or ()) for c in categories]


def is_text(labels) -> bool:
    """True when ``labels`` are names (strings) rather than integers."""
    if isinstance(labels, np.ndarray):
        return labels.dtype.kind in "USO" and (labels.dtype.kind != "O" or
                                                any(isinstance(x, str) for x in labels.reshape(-1)[:1]))
    if hasattr(labels, "detach"):
        return False
    if isinstance(labels, (list, tuple)):
        return bool(labels) and isinstance(labels[0], str)
    return False


__all__ = ["CategoryResolver", "normalize_name", "is_text"]
