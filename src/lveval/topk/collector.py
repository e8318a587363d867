"""In-memory top-K per class: :class:`TopKPerClass` collects detections during inference."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from .pool import _Pool


def _to_numpy(x, dtype=None) -> np.ndarray:
    """numpy view of a numpy array, list or torch tensor (torch is never imported here)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    return a.astype(dtype, copy=False) if dtype is not None else a


def _xywh(boxes: np.ndarray, box_format: str) -> np.ndarray:
    if box_format == "xywh":
        return boxes
    if box_format == "xyxy":
        out = boxes.copy()
        out[:, 2:] = boxes[:, 2:] - boxes[:, :2]
        return out
    raise ValueError(f"box_format must be 'xyxy' or 'xywh', not {box_format!r}")


class TopKPerClass:
    """Keep the top ``k`` detections of each class (and optionally the top ``per_image`` of each image).

    Use during inference, one image at a time::

        collector = TopKPerClass(k=10_000, per_image=300, box_format="xyxy")
        for image_id, out in loop:
            collector.add(image_id, out["boxes"], out["scores"], out["labels"])
        lveval.evaluate(gt, collector.to_columns())

    Memory is bounded by ``k x classes + per_image x images`` rows, whatever
    the number of detections added. Rows keep arrival order; among equal
    scores the earlier row wins, as in :func:`lveval.select.top_k_per_class`.
    Keeping the per-image top N (``per_image`` >= AP-Old's cap) makes AP-Old
    exact too: the top N of an image are all kept, so the cap sees the same
    rows. ``per_image_scope="image_category"`` keeps the top N of each
    (image, class) instead (pycocotools' cap under COCO rules).

    Inputs may be numpy arrays, lists or torch tensors (moved to the CPU).
    ``masks`` (optional) are COCO RLE dicts, one per detection.
    """

    def __init__(self, k: int = 10_000, per_image: int | None = None, *, box_format: str = "xywh",
                 per_image_scope: str = "image"):
        if k is None or int(k) < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        if per_image is not None and int(per_image) < 1:
            raise ValueError(f"per_image must be a positive integer or None, got {per_image!r}")
        if per_image_scope not in ("image", "image_category"):
            raise ValueError("per_image_scope must be 'image' or 'image_category'")
        _xywh(np.zeros((0, 4)), box_format)
        self.k = int(k)
        self.per_image = None if per_image is None else int(per_image)
        self.box_format = box_format
        self.per_image_scope = per_image_scope
        self._has_masks: bool | None = None
        self._new_pool()

    def _new_pool(self) -> None:
        crit = [("category_id", self.k)]
        if self.per_image is not None:
            crit.append(("image_id", self.per_image))
        self._pool = _Pool(crit)

    # -- adding -------------------------------------------------------------------------------
    def add(self, image_id, boxes, scores, classes, masks: Sequence | None = None, *,
            box_format: str | None = None) -> None:
        """Add one image's detections: ``boxes`` (n, 4), ``scores`` (n,), ``classes`` (n,) category ids."""
        score = _to_numpy(scores, np.float64).reshape(-1)
        n = len(score)
        img = np.full(n, int(image_id), np.int64)
        self.add_columns(img, classes, score, boxes, masks, box_format=box_format)

    def add_columns(self, image_id, category_id, score, bbox, masks: Sequence | None = None, *,
                    box_format: str | None = None) -> None:
        """Add detections of any images as columns (arrays of equal length)."""
        score = _to_numpy(score, np.float64).reshape(-1)
        n = len(score)
        img = _to_numpy(image_id, np.int64).reshape(-1)
        cat = _to_numpy(category_id, np.int64).reshape(-1)
        box = _to_numpy(bbox).reshape(-1, 4) if bbox is not None else None
        if box is None or len(img) != n or len(cat) != n or len(box) != n:
            raise ValueError("image_id, category_id, score and bbox must have the same length "
                             f"(got {len(img)}, {len(cat)}, {n}, {None if box is None else len(box)})")
        if n and not (np.isfinite(score).all() and (score >= 0).all()):
            raise ValueError("scores must be finite and >= 0")
        if not np.issubdtype(box.dtype, np.floating):
            box = box.astype(np.float64)
        box = _xywh(box, box_format or self.box_format)
        has_masks = masks is not None
        if self._has_masks is None and n:
            self._has_masks = has_masks
        elif n and has_masks != self._has_masks:
            raise ValueError("pass masks for every call or for none")
        cols = {"image_id": img, "category_id": cat, "score": score, "bbox": box}
        if has_masks:
            if len(masks) != n:
                raise ValueError(f"got {len(masks)} masks for {n} detections")
            arr = np.empty(n, object)
            arr[:] = list(masks)
            cols["segmentation"] = arr
        self._push(cols)

    def _push(self, cols: dict) -> None:
        keys = [cols["category_id"]]
        if self.per_image is not None:
            keys.append(cols["image_id"] if self.per_image_scope == "image"
                        else np.stack([cols["image_id"], cols["category_id"]], axis=1))
        self._pool.push(cols, keys)

    # -- merging and state --------------------------------------------------------------------
    def state(self) -> dict:
        """Kept rows as plain arrays (picklable; what distributed workers exchange)."""
        cols = self._pool.result()
        out = {"k": self.k, "per_image": self.per_image, "per_image_scope": self.per_image_scope,
               "num_seen": self._pool.n_seen}
        names = ("image_id", "category_id", "score", "bbox", "segmentation")
        if cols is None:
            out.update(image_id=np.zeros(0, np.int64), category_id=np.zeros(0, np.int64),
                       score=np.zeros(0), bbox=np.zeros((0, 4)))
        else:
            out.update({k: cols[k] for k in names if k in cols})
        return out

    def load_state(self, state: dict) -> TopKPerClass:
        """Append the rows of another collector's :meth:`state` (they come after this one's)."""
        segm = state.get("segmentation")
        self.add_columns(state["image_id"], state["category_id"], state["score"], state["bbox"],
                         None if segm is None else list(segm), box_format="xywh")
        self._pool.n_seen += int(state.get("num_seen", 0)) - len(state["score"])
        return self

    def merge(self, other: TopKPerClass) -> TopKPerClass:
        """Add another collector's rows after this one's (e.g. from another worker); returns self."""
        return self.load_state(other.state())

    @classmethod
    def from_states(cls, states: Iterable[dict]) -> TopKPerClass:
        """One collector from several workers' states, in the given order."""
        states = list(states)
        if not states:
            raise ValueError("no states to merge")
        s0 = states[0]
        c = cls(s0["k"], s0.get("per_image"), per_image_scope=s0.get("per_image_scope", "image"))
        for s in states:
            c.load_state(s)
        return c

    def reset(self) -> None:
        """Forget every row."""
        self._has_masks = None
        self._new_pool()

    # -- output -------------------------------------------------------------------------------
    @property
    def num_seen(self) -> int:
        """Detections added so far (including those already discarded)."""
        return self._pool.n_seen

    def __len__(self) -> int:
        """Rows currently held (an upper bound of the final count until :meth:`to_columns`)."""
        return len(self._pool)

    def to_columns(self) -> dict:
        """Kept detections as columns for :func:`lveval.evaluate` (image_id, category_id, score, bbox xywh)."""
        s = self.state()
        cols = {k: s[k] for k in ("image_id", "category_id", "score") if k in s}
        cols["bbox"] = np.asarray(s["bbox"], np.float64)
        if "segmentation" in s:
            cols["segmentation"] = list(s["segmentation"])
        return cols

    def to_detections(self):
        """Kept detections as :class:`lveval.io.Detections`."""
        from ..io.results import load_results

        return load_results(self.to_columns(), path="<collector>")

    def write(self, path: str) -> None:
        """Write the kept detections (.json, .jsonl or .parquet), atomically."""
        from ..io.results import write_results

        write_results(self.to_detections(), path)
