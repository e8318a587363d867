"""Detection results as columns: JSON array, JSON Lines, Parquet, or Python objects.

Rows keep file order: lvis-api and pycocotools break score ties by it, and so
do we. ``bind`` checks results against a ground truth and maps ids to indices.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any, Optional

import msgspec
import numpy as np

from ..errors import InputError, Notices
from .jsonfile import decode_error, line_of, no_gc, read_bytes


class _Det(msgspec.Struct, gc=False):
    image_id: int
    category_id: int
    score: float
    bbox: Optional[tuple[float, float, float, float]] = None
    segmentation: Any = None


_ARRAY = msgspec.json.Decoder(list[_Det])
_ONE = msgspec.json.Decoder(_Det)


@dataclass
class Detections:
    """Columnar detections. ``img_idx``/``cat_idx``/``area`` are set by :func:`bind`."""

    img_id: np.ndarray                 # (N,) int64
    cat_id: np.ndarray                 # (N,) int64
    score: np.ndarray                  # (N,) float64
    bbox: Optional[np.ndarray] = None  # (N, 4) float64 xywh
    segm: Optional[list] = None        # N compressed RLE dicts
    path: str = "<results>"
    img_idx: Optional[np.ndarray] = None
    cat_idx: Optional[np.ndarray] = None
    area: Optional[np.ndarray] = None
    record: Optional[np.ndarray] = None  # original record index of each row (after skips)
    notices: Notices = field(default_factory=Notices)

    def __len__(self) -> int:
        return len(self.score)

    def take(self, idx: np.ndarray) -> "Detections":
        """Rows ``idx`` (bool mask or indices), keeping their relative order."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        g = lambda a: None if a is None else a[idx]
        return replace(self, img_id=self.img_id[idx], cat_id=self.cat_id[idx], score=self.score[idx],
                       bbox=g(self.bbox), segm=None if self.segm is None else [self.segm[i] for i in idx],
                       img_idx=g(self.img_idx), cat_idx=g(self.cat_idx), area=g(self.area),
                       record=g(self.record), notices=self.notices)

    def to_records(self) -> list:
        """List of result dicts in the usual COCO results format."""
        out = []
        for i in range(len(self)):
            r = {"image_id": int(self.img_id[i]), "category_id": int(self.cat_id[i]),
                 "score": float(self.score[i])}
            if self.bbox is not None:
                r["bbox"] = [float(v) for v in self.bbox[i]]
            if self.segm is not None and self.segm[i] is not None:
                s = self.segm[i]
                c = s["counts"]
                r["segmentation"] = {"size": list(s["size"]),
                                     "counts": c.decode() if isinstance(c, bytes) else c}
            out.append(r)
        return out


def _columns(dets: list, path: str, record_base: int = 0) -> Detections:
    n = len(dets)
    img = np.fromiter((d.image_id for d in dets), np.int64, n)
    cat = np.fromiter((d.category_id for d in dets), np.int64, n)
    score = np.fromiter((d.score for d in dets), np.float64, n)
    has_box = [d.bbox is not None for d in dets]
    bbox = None
    if n and all(has_box):
        bbox = np.array([d.bbox for d in dets], dtype=np.float64).reshape(n, 4)
    elif any(has_box):
        i = has_box.index(False)
        raise InputError("some records have a bbox and this one does not", path=path,
                         record=i + record_base, field="bbox")
    segm = None
    has_seg = [d.segmentation is not None for d in dets]
    if n and any(has_seg):
        if not all(has_seg):
            i = has_seg.index(False)
            raise InputError("some records have a segmentation and this one does not", path=path,
                             record=i + record_base, field="segmentation")
        segm = [d.segmentation for d in dets]
    return Detections(img_id=img, cat_id=cat, score=score, bbox=bbox, segm=segm, path=path,
                      record=np.arange(n, dtype=np.int64) + record_base)


def _from_json_array(buf: bytes, path: str) -> Detections:
    stripped = buf.lstrip()
    if not stripped:
        raise InputError("file is empty, expected a JSON array of detections", path=path)
    if stripped[:1] != b"[":
        kind = {b"{": "an object"}.get(stripped[:1], "not an array")
        raise InputError(f"expected a JSON array of detections at the top level, got {kind}", path=path)
    try:
        with no_gc():
            dets = _ARRAY.decode(buf)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise decode_error(exc, buf, path) from None
    return _columns(dets, path)


def _from_json_lines(buf: bytes, path: str) -> Detections:
    lines = buf.split(b"\n")
    dets, line_nos = [], []
    with no_gc():
        for ln, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                dets.append(_ONE.decode(raw))
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                raise decode_error(exc, raw, path, record_base=len(dets), line=ln) from None
            line_nos.append(ln)
    if not dets:
        raise InputError("file has no detections (empty JSON Lines file)", path=path)
    return _columns(dets, path)


def _from_parquet(path: str) -> Detections:
    import pyarrow.parquet as pq
    import pyarrow as pa

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({str(exc).splitlines()[0]})", path=path) from None
    return from_table(table, path)


def from_table(table, path: str) -> Detections:
    """Detections from an Arrow table with image_id, category_id, score and bbox (list<4>) or x,y,w,h."""
    names = set(table.column_names)
    for k in ("image_id", "category_id", "score"):
        if k not in names:
            raise InputError("missing required column", path=path, field=k)
    def col(name, dtype):
        c = table.column(name)
        if c.null_count:
            i = int(np.flatnonzero(c.is_null().to_numpy(zero_copy_only=False))[0])
            raise InputError("null value", path=path, record=i, field=name)
        try:
            return c.to_numpy().astype(dtype, copy=False)
        except (TypeError, ValueError):
            raise InputError(f"expected {np.dtype(dtype).name} values, got {c.type}", path=path,
                             field=name) from None
    img = col("image_id", np.int64)
    cat = col("category_id", np.int64)
    score = col("score", np.float64)
    bbox = None
    if "bbox" in names:
        import pyarrow as pa
        c = table.column("bbox").combine_chunks()
        if c.null_count:
            i = int(np.flatnonzero(c.is_null().to_numpy(zero_copy_only=False))[0])
            raise InputError("null value", path=path, record=i, field="bbox")
        if pa.types.is_fixed_size_list(c.type):
            if c.type.list_size != 4:
                raise InputError(f"expected 4 numbers per bbox, got {c.type.list_size}", path=path, field="bbox")
            bbox = c.flatten().to_numpy().astype(np.float64).reshape(-1, 4)
        elif pa.types.is_list(c.type) or pa.types.is_large_list(c.type):
            lens = c.value_lengths().to_numpy()
            bad = np.flatnonzero(lens != 4)
            if len(bad):
                raise InputError(f"expected 4 numbers [x, y, w, h], got {int(lens[bad[0]])}", path=path,
                                 record=int(bad[0]), field="bbox")
            bbox = c.flatten().to_numpy().astype(np.float64).reshape(-1, 4)
        else:
            raise InputError(f"expected a list of 4 numbers, got {c.type}", path=path, field="bbox")
    elif {"x", "y", "w", "h"} <= names:
        bbox = np.stack([col(k, np.float64) for k in ("x", "y", "w", "h")], axis=1)
    segm = None
    if "segmentation" in names or "segm_counts" in names:
        counts = table.column("segm_counts" if "segm_counts" in names else "segmentation").to_pylist()
        hs = table.column("segm_h").to_pylist()
        ws = table.column("segm_w").to_pylist()
        segm = [{"size": [h, w], "counts": c} for c, h, w in zip(counts, hs, ws)]
    return Detections(img_id=img, cat_id=cat, score=score, bbox=bbox, segm=segm, path=path,
                      record=np.arange(len(score), dtype=np.int64))


def _from_python(obj, path: str) -> Detections:
    if isinstance(obj, dict):   # columns
        for k in ("image_id", "category_id", "score"):
            if k not in obj:
                raise InputError("missing required column", path=path, field=k)
        n = len(obj["score"])
        bbox = obj.get("bbox")
        segm = obj.get("segmentation")
        return Detections(img_id=np.asarray(obj["image_id"], np.int64).reshape(n),
                          cat_id=np.asarray(obj["category_id"], np.int64).reshape(n),
                          score=np.asarray(obj["score"], np.float64).reshape(n),
                          bbox=None if bbox is None else np.asarray(bbox, np.float64).reshape(n, 4),
                          segm=None if segm is None else list(segm), path=path,
                          record=np.arange(n, dtype=np.int64))
    if isinstance(obj, (list, tuple)):
        try:
            dets = msgspec.convert(list(obj), list[_Det])
        except msgspec.ValidationError as exc:
            raise decode_error(exc, b"", path) from None
        return _columns(dets, path)
    raise TypeError(f"results must be a path, a list of dicts, a dict of columns or Detections, "
                    f"not {type(obj).__name__}")


def load_results(source: Any, *, path: str | None = None) -> Detections:
    """Read detections from a file (.json, .jsonl/.ndjson, .parquet) or Python objects."""
    if isinstance(source, Detections):
        return source
    if isinstance(source, (str, os.PathLike)):
        p = str(source)
        low = p.lower()
        if low.endswith((".parquet", ".pq")):
            if not os.path.exists(p):
                raise InputError("file not found", path=p)
            return _from_parquet(p)
        buf = read_bytes(p)
        if low.endswith((".jsonl", ".ndjson")):
            return _from_json_lines(buf, p)
        return _from_json_array(buf, p)
    return _from_python(source, path or "<results>")


def bind(dets: Detections, gt, *, iou_type: str = "bbox", on_unknown_image: str = "error",
         on_unknown_category: str = "error") -> Detections:
    """Validate detections against ``gt`` and attach image/category indices and areas.

    Unknown ids raise (``error``) or are dropped and counted (``skip``). Scores
    must be finite and >= 0; scores above 1 are allowed with one warning.
    """
    path = dets.path
    notices = Notices()
    notices.merge(dets.notices)
    rec = dets.record if dets.record is not None else np.arange(len(dets))
    bad = np.flatnonzero(~np.isfinite(dets.score) | (dets.score < 0))
    if len(bad):
        i = int(bad[0])
        raise InputError(f"score must be a finite number >= 0, got {dets.score[i]!r}", path=path,
                         record=int(rec[i]), field="score")
    if len(dets) and dets.score.max() > 1:
        notices.warn(f"{path}: {int((dets.score > 1).sum())} scores are above 1 (allowed; "
                     "calibration and pooled AP assume comparable scores)")
    if iou_type == "segm" and dets.segm is None:
        raise InputError("segm evaluation requested but the results carry no 'segmentation' masks",
                         path=path, field="segmentation")
    if iou_type == "bbox" and dets.bbox is None:
        if dets.segm is None:
            if len(dets):
                raise InputError("bbox evaluation requested but the results carry no 'bbox'", path=path,
                                 field="bbox")
            dets = replace(dets, bbox=np.zeros((0, 4)))
    if dets.bbox is not None and len(dets):
        b = dets.bbox
        badb = np.flatnonzero(~np.isfinite(b).all(axis=1) | (b[:, 2] <= 0) | (b[:, 3] <= 0))
        if len(badb):
            i = int(badb[0])
            raise InputError(f"bbox width and height must be finite and > 0, got {b[i].tolist()}",
                             path=path, record=int(rec[i]), field="bbox")

    img_idx, ok_img = gt.image_index(dets.img_id)
    cat_idx, ok_cat = gt.category_index(dets.cat_id)
    keep = np.ones(len(dets), bool)
    for ok, what, policy, field_ in ((ok_img, "image_id", on_unknown_image, "image_id"),
                                     (ok_cat, "category_id", on_unknown_category, "category_id")):
        if policy not in ("error", "skip"):
            raise ValueError(f"policy must be 'error' or 'skip', not {policy!r}")
        if not ok.all():
            if policy == "error":
                i = int(np.flatnonzero(~ok)[0])
                raise InputError(f"unknown {what} {int(getattr(dets, 'img_id' if what == 'image_id' else 'cat_id')[i])}"
                                 f" (not in the ground truth; use --on-unknown-"
                                 f"{'image' if what == 'image_id' else 'category'} skip to drop such records)",
                                 path=path, record=int(rec[i]), field=field_)
            notices.skip(f"unknown {what}", int((~ok & keep).sum()))
            keep &= ok
    if not keep.all():
        dets = dets.take(keep)
        img_idx, cat_idx = img_idx[keep], cat_idx[keep]
        rec = rec[keep]

    segm = dets.segm
    area = None
    if segm is not None and iou_type == "segm":
        segm, area = _check_masks(segm, gt, img_idx, path, rec)
    bbox = dets.bbox
    if bbox is None and segm is not None:
        from pycocotools import mask as mask_utils
        segm = segm if iou_type == "segm" else _check_masks(segm, gt, img_idx, path, rec)[0]
        bbox = mask_utils.toBbox(segm).reshape(-1, 4).astype(np.float64) if len(segm) else np.zeros((0, 4))
    if area is None:
        area = bbox[:, 2] * bbox[:, 3]
    if len(dets) and bbox is not None:
        h = gt.img_h[img_idx]
        w = gt.img_w[img_idx]
        outside = (bbox[:, 0] < 0) | (bbox[:, 1] < 0) | (bbox[:, 0] + bbox[:, 2] > w) | (bbox[:, 1] + bbox[:, 3] > h)
        n_out = int(outside.sum())
        if n_out:
            notices.warn(f"{path}: {n_out} boxes extend outside their image (evaluated as given)")
            notices.flag("boxes outside the image (evaluated as given)", n_out)
    return replace(dets, bbox=bbox, segm=segm, img_idx=img_idx.astype(np.int64),
                   cat_idx=cat_idx.astype(np.int64), area=np.asarray(area, np.float64), record=rec,
                   notices=notices)


def _check_masks(segm: list, gt, img_idx: np.ndarray, path: str, rec: np.ndarray):
    """Normalise result masks to compressed RLE and compute their areas."""
    from pycocotools import mask as mask_utils

    out = []
    for i, s in enumerate(segm):
        ii = img_idx[i]
        h, w = int(gt.img_h[ii]), int(gt.img_w[ii])
        if isinstance(s, dict) and "counts" in s and "size" in s:
            size = s["size"]
            if not (isinstance(size, (list, tuple)) and len(size) == 2 and [int(size[0]), int(size[1])] == [h, w]):
                raise InputError(f"RLE size {size!r} does not match the image ({h}x{w})", path=path,
                                 record=int(rec[i]), field="segmentation.size")
            c = s["counts"]
            if isinstance(c, list):
                if not all(isinstance(x, int) and x >= 0 for x in c) or sum(c) != h * w:
                    raise InputError("uncompressed RLE counts must be non-negative integers summing to "
                                     "height*width", path=path, record=int(rec[i]), field="segmentation.counts")
                s = mask_utils.frPyObjects(s, h, w)
            elif isinstance(c, (str, bytes)):
                cb = c.encode() if isinstance(c, str) else c
                if not _valid_counts(cb, h * w):
                    raise InputError("malformed compressed RLE counts", path=path, record=int(rec[i]),
                                     field="segmentation.counts")
                s = {"size": [h, w], "counts": cb}
            else:
                raise InputError("RLE counts must be a string or a list of integers", path=path,
                                 record=int(rec[i]), field="segmentation.counts")
        elif isinstance(s, list):
            if not s or any(not isinstance(p, list) or len(p) < 6 or len(p) % 2 for p in s):
                raise InputError("polygon needs at least 3 points (6 numbers, an even count)", path=path,
                                 record=int(rec[i]), field="segmentation")
            s = mask_utils.merge(mask_utils.frPyObjects(s, h, w))
        else:
            raise InputError("expected an RLE {size, counts} or polygons", path=path, record=int(rec[i]),
                             field="segmentation")
        out.append(s)
    return out, mask_area(out)


def mask_area(rles: list) -> np.ndarray:
    """Areas of compressed RLEs. pycocotools 2.0.11's ``area`` overflows past 255 masks
    in one call ("out of bounds for uint8"), so it is called in chunks."""
    from pycocotools import mask as mask_utils

    parts = [np.asarray(mask_utils.area(rles[i:i + 255]), np.float64).reshape(-1)
             for i in range(0, len(rles), 255)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _valid_counts(cb: bytes, total: int) -> bool:
    """Decode COCO's compressed RLE string and check its runs sum to height*width."""
    arr = np.frombuffer(cb, dtype=np.uint8)
    if len(arr) == 0:
        return total == 0
    if arr.min() < 48 or arr.max() > 111:
        return False
    v = arr.astype(np.int64) - 48
    more = (v & 0x20) != 0
    if more[-1]:
        return False
    ends = np.flatnonzero(~more)
    starts = np.r_[0, ends[:-1] + 1]
    # value = sum of 5-bit groups, little end first; sign from bit 4 of the last group
    pos = np.arange(len(v)) - np.repeat(starts, ends - starts + 1)
    if pos.max() > 12:
        return False
    vals = np.add.reduceat((v & 0x1F) << (5 * pos), starts)
    neg = (v[ends] & 0x10) != 0
    vals = np.where(neg, vals - (1 << (5 * (pos[ends] + 1))), vals)
    # deltas: counts[i] += counts[i-2] for i > 2
    counts = vals.copy()
    if len(counts) > 3:
        # counts[k] for k>2 accumulates in two interleaved chains starting at 1 and 2
        for start in (1, 2):
            idx = np.arange(start, len(counts), 2)
            chain = counts[idx]
            if len(chain) > 1:
                counts[idx] = np.cumsum(chain)
    if (counts < 0).any():
        return False
    return int(counts.sum()) == total


def write_results(dets: Detections, path: str) -> None:
    """Write detections as .json, .jsonl or .parquet, atomically."""
    from ..atomic import atomic_write

    low = path.lower()
    if low.endswith((".parquet", ".pq")):
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = {"image_id": pa.array(dets.img_id, pa.int64()), "category_id": pa.array(dets.cat_id, pa.int64()),
                "score": pa.array(dets.score, pa.float64())}
        if dets.bbox is not None:
            cols["bbox"] = pa.FixedSizeListArray.from_arrays(pa.array(dets.bbox.reshape(-1), pa.float64()), 4)
        if dets.segm is not None:
            cols["segm_counts"] = pa.array([s["counts"].decode() if isinstance(s["counts"], bytes) else s["counts"]
                                            for s in dets.segm], pa.string())
            cols["segm_h"] = pa.array([int(s["size"][0]) for s in dets.segm], pa.int32())
            cols["segm_w"] = pa.array([int(s["size"][1]) for s in dets.segm], pa.int32())
        table = pa.table(cols)
        with atomic_write(path, "wb") as f:
            pq.write_table(table, f)
        return
    import orjson

    recs = dets.to_records()
    with atomic_write(path, "wb") as f:
        if low.endswith((".jsonl", ".ndjson")):
            for r in recs:
                f.write(orjson.dumps(r) + b"\n")
        else:
            f.write(orjson.dumps(recs))
