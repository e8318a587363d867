"""Streaming top-K per class: results files larger than memory, and detections during inference.

AP-Fixed evaluates the top K detections of each class over the whole set
(Dave et al. 2021, Sec. 4), so a detector's output can be reduced to those
rows before evaluation without changing AP-Fixed or AP-Pool. This module
does that in bounded memory:

* :class:`TopKPerClass` collects detections as they are produced
  (``collector.add(image_id, boxes, scores, classes)``) and keeps at most K
  per class (optionally also the top N of each image, so AP-Old stays exact).
* :func:`topk_file` / ``lveval topk RESULTS --max-dets-per-class K --out OUT`` reduce a
  results file (.json array, .jsonl, .parquet) in two streaming passes: the
  first selects rows keeping only (score, group, byte range) per candidate,
  the second copies the selected records to the output unchanged.

Ties are broken exactly as :func:`lveval.select.top_k_per_class` does: among
equal scores the earlier record wins. Kept rows stay in arrival order, so
evaluating the reduced file gives the same AP-Fixed as evaluating the full one.

Memory is bounded by the kept rows: a pool holds at most K per class (plus N
per image) after each prune, and pending rows are pruned once they reach a
quarter of the kept ones; rows that cannot enter a full class (score not
above its K-th best) are dropped on arrival.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence

import msgspec
import numpy as np

from .exceptions import InputError
from .io import fastjson
from .io.jsonfile import open_stream, repeated_key_error, repeated_keys_suspect
from .io.results import _ARRAY as _FULL_DECODER  # the loader's own record decoder
from .io.results import _Int64 as _I64  # ids must fit int64 columns

__all__ = ["TopKPerClass", "topk_mask", "topk_file"]


# --------------------------------------------------------------------------------------------
# selection kernel
# --------------------------------------------------------------------------------------------

def topk_mask(group: np.ndarray, score: np.ndarray, k: int, num_groups: int | None = None):
    """Rows among the top ``k`` of their group by descending score, earlier rows winning ties.

    Same selection as :func:`lveval.select.top_k_per_class` (a stable sort on
    ``-score`` inside each group), written to keep temporaries small. Returns
    ``(mask, kth)`` where ``kth[g]`` is the k-th best score of group ``g``
    (``-inf`` when the group has fewer than ``k`` rows); ``group`` holds small
    non-negative integers.
    """
    n = len(score)
    ng = num_groups if num_groups is not None else (int(group.max()) + 1 if n else 0)
    kth = np.full(ng, -np.inf)
    if n == 0:
        return np.zeros(0, bool), kth
    order = np.argsort(-score, kind="stable")          # ties keep row order ...
    gs = group[order]
    o2 = np.argsort(gs, kind="stable")                 # ... inside each group (radix sort)
    order = order[o2]
    gs = gs[o2]
    del o2
    starts = np.flatnonzero(np.r_[True, gs[1:] != gs[:-1]])
    lens = np.diff(np.r_[starts, n])
    big = lens > k
    # sorted positions past the k-th of their group are dropped: mark the ranges, no per-row arange
    diff = np.zeros(n + 1, np.int8)
    np.subtract.at(diff, starts[big] + k, 1)
    np.add.at(diff, starts[big] + lens[big], 1)
    keep_sorted = np.cumsum(diff[:-1], dtype=np.int8) == 0
    del diff
    mask = np.zeros(n, bool)
    mask[order[keep_sorted]] = True
    full = lens >= k
    if k > 0 and full.any():
        kth[gs[starts[full]]] = score[order[starts[full] + k - 1]]
    return mask, kth


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
            m, kth = topk_mask(cols[f"_g{i}"], cols["score"], k, len(self._kth[i]))
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


# --------------------------------------------------------------------------------------------
# in-memory collector
# --------------------------------------------------------------------------------------------

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
        from .io.results import load_results

        return load_results(self.to_columns(), path="<collector>")

    def write(self, path: str) -> None:
        """Write the kept detections (.json, .jsonl or .parquet), atomically."""
        from .io.results import write_results

        write_results(self.to_detections(), path)


# --------------------------------------------------------------------------------------------
# files: record boundaries without parsing
# --------------------------------------------------------------------------------------------

class _Sel(msgspec.Struct, gc=False):
    image_id: _I64
    category_id: _I64
    score: float


_SEL_DECODER = msgspec.json.Decoder(list[_Sel])
_WS = np.zeros(256, bool)
_WS[[0x20, 0x09, 0x0A, 0x0D]] = True


def _scan(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (inclusive) of each complete top-level JSON object in ``arr``.

    ``arr`` must begin outside any string and object. Quotes preceded by an
    odd run of backslashes are escaped; braces inside strings are ignored.
    """
    q = np.flatnonzero(arr == 0x22)
    if len(q):
        prev = q[q > 0]
        cand = prev[arr[prev - 1] == 0x5C]
        if len(cand):
            escaped = np.zeros(len(q), bool)
            esc_pos = []
            for p in cand.tolist():
                j = p - 1
                while j >= 0 and arr[j] == 0x5C:
                    j -= 1
                if (p - 1 - j) % 2:
                    esc_pos.append(p)
            if esc_pos:
                escaped[np.searchsorted(q, esc_pos)] = True
                q = q[~escaped]
    ob = np.flatnonzero(arr == 0x7B)
    cb = np.flatnonzero(arr == 0x7D)
    if len(q):
        ob = ob[np.searchsorted(q, ob) % 2 == 0]
        cb = cb[np.searchsorted(q, cb) % 2 == 0]
    if not len(ob):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pos = np.concatenate([ob, cb])
    delta = np.concatenate([np.ones(len(ob), np.int8), -np.ones(len(cb), np.int8)])
    o = np.argsort(pos, kind="stable")
    pos, delta = pos[o], delta[o]
    depth = np.cumsum(delta, dtype=np.int64)
    if len(depth) and depth.min() < 0:
        bad = int(pos[np.argmax(depth < 0)])
        raise _ScanError("unbalanced '}'", bad)
    starts = pos[(delta == 1) & (depth == 1)]
    ends = pos[(delta == -1) & (depth == 0)]
    return starts[:len(ends)], ends


class _ScanError(Exception):
    def __init__(self, msg, offset):
        super().__init__(msg)
        self.offset = offset


class _Records:
    """Stream a JSON array or JSON Lines file as chunks of complete records.

    Yields ``(chunk, starts, ends, base)``: ``chunk`` is a JSON array of the
    chunk's records ready for msgspec, ``starts``/``ends`` are the records'
    absolute byte offsets (end exclusive) and ``base`` the first record's index.
    """

    def __init__(self, path: str, block_size: int = 32 << 20, progress=None):
        self.path = path
        self.lines = _fmt(path) == "jsonl"
        self.block_size = block_size
        self.progress = progress
        self._line_base = 0           # newlines before the current block
        self._cur = (0, b"")

    def line_at(self, offset: int) -> int:
        """1-based line of an absolute offset within the current block."""
        pos, buf = self._cur
        return self._line_base + buf.count(b"\n", 0, max(0, offset - pos)) + 1

    def _err(self, msg, offset=None, record=None, field=None):
        line = self.line_at(offset) if offset is not None else None
        return InputError(msg, path=self.path, record=record, line=line, field=field)

    def __iter__(self) -> Iterator[tuple[bytes, np.ndarray, np.ndarray, int]]:
        try:
            f = open_stream(self.path)
        except FileNotFoundError:
            raise InputError("file not found", path=self.path) from None
        except IsADirectoryError:
            raise InputError("is a directory, expected a file", path=self.path) from None
        with f:
            yield from self._iter(f)

    def _iter(self, f):
        pos = 0                 # absolute offset of buf[0]
        buf = b""
        first = True
        closed = False
        count = 0
        eof = False
        while not eof:
            block = f.read(self.block_size)
            eof = not block
            if self.progress is not None and block:
                self.progress.update(len(block))
            buf = buf + block if buf else block
            if first and pos == 0 and buf[:3] == b"\xef\xbb\xbf":   # a UTF-8 byte-order mark, as evaluate allows
                buf, pos = buf[3:], 3
            if first:
                skip = len(buf) - len(buf.lstrip())
                if not eof and skip == len(buf):
                    pos += skip
                    buf = b""
                    continue
                first = False
                head = buf[skip:skip + 1]
                if not self.lines:
                    if not head:
                        raise InputError("file is empty, expected a JSON array of detections", path=self.path)
                    if head != b"[":
                        kind = "an object" if head == b"{" else "not an array"
                        from .io.jsonfile import not_json_reason

                        why = not_json_reason(buf[skip:skip + 64])
                        looks_gt = any(k in buf[:1 << 16] for k in (b'"images"', b'"annotations"', b'"categories"'))
                        hint = (" (this looks like a ground-truth file)" if head == b"{" and looks_gt else
                                " (JSON Lines files need a .jsonl name)")
                        raise InputError(why or f"expected a JSON array of detections at the top level, got "
                                         f"{kind}{hint}", path=self.path)
                    skip += 1
                elif not head:
                    raise InputError("file has no detections (empty JSON Lines file)", path=self.path)
                pos += skip
                buf = buf[skip:]
            self._cur = (pos, buf)
            arr = np.frombuffer(buf, np.uint8)
            try:
                starts, ends = _scan(arr)
            except _ScanError as exc:
                raise self._err(f"not valid JSON ({exc})", pos + exc.offset) from None
            consumed = int(ends[-1]) + 1 if len(ends) else 0
            if len(ends):
                self._check_gaps(arr, starts, ends, pos, count == 0)
                if self.lines:
                    self._check_one_line(arr, starts, ends, pos)
                if self.lines:
                    chunk = b"[" + b",".join([buf[s:e + 1] for s, e in zip(starts.tolist(), ends.tolist())]) + b"]"
                else:
                    chunk = b"[" + buf[int(starts[0]):consumed] + b"]"
                yield chunk, starts + pos, ends + 1 + pos, count
                count += len(starts)
            if eof:     # after the records, so an earlier bad record is reported first
                closed = self._check_tail(buf[consumed:], pos + consumed)
            self._line_base += buf.count(b"\n", 0, consumed)
            pos += consumed
            buf = buf[consumed:]
            if len(buf) > max(4 * self.block_size, 1 << 28):
                raise self._err("a record longer than 256 MB (or not valid JSON)", pos)
        if not self.lines and not closed:
            raise InputError("truncated JSON array (no closing ']')", path=self.path)
        if self.lines and count == 0:
            raise InputError("file has no detections (empty JSON Lines file)", path=self.path)

    def _check_gaps(self, arr, starts, ends, pos, first_chunk):
        """Only separators between records: one comma (JSON array) or line breaks (JSON Lines)."""
        sep_byte = 0x0A if self.lines else 0x2C
        lo = int(starts[0])
        # bytes between consecutive records, gathered without a block-sized temporary
        gs = ends[:-1] + 1
        gl = starts[1:] - gs
        tot = int(gl.sum())
        if tot:
            first = np.repeat(np.cumsum(gl) - gl, gl)
            idx = np.repeat(gs, gl) + (np.arange(tot) - first)
        else:
            idx = np.zeros(0, np.int64)
        idx = np.concatenate([np.arange(lo), idx])      # and the bytes before the first record
        gap = arr[idx]
        bad = np.flatnonzero(~(_WS[gap] | (gap == sep_byte)))
        if len(bad):
            raise self._err("expected a JSON object (a detection record) here", pos + int(idx[bad[0]]))
        is_sep = gap[lo:] == sep_byte
        per_gap = np.add.reduceat(is_sep, np.r_[0, np.cumsum(gl)[:-1]]) if tot else np.zeros(len(gl), np.int64)
        per_gap = np.where(gl > 0, per_gap, 0)
        lead = int((gap[:lo] == sep_byte).sum())
        if self.lines:
            wrong = np.flatnonzero(per_gap < 1)
            if len(wrong) or (not first_chunk and lead < 1):
                at = int(ends[wrong[0]]) + 1 if len(wrong) else lo
                raise self._err("two records on one line", pos + at)
        else:
            wrong = np.flatnonzero(per_gap != 1)
            if len(wrong) or lead != (0 if first_chunk else 1):
                at = int(ends[wrong[0]]) + 1 if len(wrong) else 0
                raise self._err("expected exactly one ',' between records", pos + at)

    def _check_one_line(self, arr, starts, ends, pos) -> None:
        """JSON Lines: each record on one line (as ``lveval evaluate`` reads them), not pretty-printed."""
        nl = np.flatnonzero(arr[int(starts[0]):int(ends[-1]) + 1] == 0x0A) + int(starts[0])
        if not len(nl):
            return
        inside = np.searchsorted(nl, ends) - np.searchsorted(nl, starts)
        bad = np.flatnonzero(inside > 0)
        if len(bad):
            i = int(bad[0])
            raise self._err("a record spans several lines; JSON Lines holds one record per line (a "
                            "pretty-printed file is a .json array)", pos + int(starts[i]))

    def _check_tail(self, tail: bytes, off: int) -> bool:
        """Bytes after the last complete record: ``]`` closes an array; anything else is an error."""
        i = len(tail) - len(tail.lstrip())
        t = tail[i:].rstrip()
        if not t:
            return self.lines
        if not self.lines:
            if t == b"]":
                return True
            if t[:1] == b"]":
                raise self._err("data after the closing ']'", off + i + 1)
            if t[:1] == b",":
                rest = t[1:]
                j = i + 1 + len(rest) - len(rest.lstrip())
                rest = rest.lstrip()
                if rest == b"]":
                    raise self._err("trailing ',' before ']'", off + i)
                i, t = j, rest
        if t[:1] == b"{":
            raise self._err("truncated record at the end of the file", off + i)
        raise self._err("expected a JSON object (a detection record) here", off + i)


# --------------------------------------------------------------------------------------------
# files: two-pass top-K
# --------------------------------------------------------------------------------------------

def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, file=sys.stderr, leave=False)


def _fmt(path: str) -> str:
    from .io.results import format_of

    return format_of(path) or "json"   # a .gz or .zst ending aside


class _KnownIds:
    """The unknown-id policies of ``lveval evaluate`` applied before the selection (``topk --gt``):
    records of images or categories absent from the ground truth raise (``error``, the same message as
    the evaluation's) or are dropped and counted (``skip``), so they cannot take a place in the top K."""

    def __init__(self, gt, on_unknown_image: str = "error", on_unknown_category: str = "error"):
        from .io.gt import load_gt
        from .io.results import check_policy

        check_policy(on_unknown_image)
        check_policy(on_unknown_category)
        self.gt = load_gt(gt)
        self.policies = (on_unknown_image, on_unknown_category)
        self.skipped = {"image_id": 0, "category_id": 0}

    def keep(self, img, cat, base: int, path: str, line_of) -> np.ndarray | None:
        """Bool mask of the rows to keep (None: all), after raising for an unknown id under ``error``."""
        ok_i = self.gt.image_index(img)[1]
        ok_c = self.gt.category_index(cat)[1]
        keep = None
        for ok, ids, what, policy in ((ok_i, img, "image", self.policies[0]),
                                      (ok_c, cat, "category", self.policies[1])):
            if ok.all():
                continue
            if policy == "error":
                i = int(np.flatnonzero(~ok)[0])
                raise InputError(f"unknown {what}_id {int(ids[i])} (not in the ground truth; use "
                                 f"--on-unknown-{what} skip to drop such records)", path=path,
                                 record=base + i, line=line_of(i), field=f"{what}_id")
            self.skipped[f"{what}_id"] += int((~ok & (True if keep is None else keep)).sum())
            keep = ok if keep is None else keep & ok
        return keep


def _select_json(path: str, k: int, per_image: int | None, block_size: int, progress: bool,
                 known: _KnownIds | None = None):
    """Pass 1 over a JSON file: (starts, ends) of the selected records, sorted."""
    crit = [("category_id", k)] + ([("image_id", per_image)] if per_image else [])
    pool = _Pool(crit)
    bar = _progress(os.path.getsize(path), "topk: selecting", progress)
    recs = _Records(path, block_size, bar)
    try:
        for chunk, starts, ends, base in recs:
            img, cat, score = _selection_columns(chunk, starts, ends, base, recs, path,
                                                 per_image or known is not None)
            _check_scores(score, base, path, lambda i, starts=starts: recs.line_at(int(starts[i])))
            if known is not None:
                keep = known.keep(img, cat, base, path, lambda i, starts=starts: recs.line_at(int(starts[i])))
                if keep is not None:
                    img, cat, score, starts, ends = img[keep], cat[keep], score[keep], starts[keep], ends[keep]
            cols = {"score": score, "start": starts, "len": (ends - starts).astype(np.int32)}
            pool.push(cols, [cat] + ([img] if per_image else []))
    finally:
        if bar is not None:
            bar.close()
    kept = pool.result()
    if kept is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), pool.n_seen
    return kept["start"], kept["start"] + kept["len"], pool.n_seen


def _selection_columns(chunk: bytes, starts, ends, base: int, recs, path: str, per_image):
    """(image_id or None, category_id, score) of a block's records: the compiled reader for plain
    box records, else msgspec (which also locates errors)."""
    fast = fastjson.box_columns(chunk, 1, len(chunk) - 1)
    if fast is not None and len(fast[0]) == len(starts):
        return (fast[0] if per_image else None), fast[1], fast[2]
    try:
        dets = _SEL_DECODER.decode(chunk)
    except msgspec.ValidationError as exc:
        from .io.jsonfile import decode_error

        e = decode_error(exc, b"", path, record_base=base)
        line = recs.line_at(int(starts[e.record - base])) if e.record is not None else None
        raise InputError(e.reason, path=path, record=e.record, line=line, field=e.field) from None
    except msgspec.DecodeError as exc:
        raise _locate_decode_error(exc, chunk, starts, ends, base, recs, path) from None
    except RecursionError:
        from .io.jsonfile import too_deep_error

        e = too_deep_error(chunk, path)
        i = min(max(0, (e.record or 0)), len(starts) - 1)
        raise InputError(e.reason, path=path, record=base + i, line=recs.line_at(int(starts[i]))) from None
    n = len(dets)
    if repeated_keys_suspect(chunk, n):
        err = repeated_key_error(chunk, path, record_base=base, line_of=lambda i: recs.line_at(int(starts[i])))
        if err is not None:
            raise err
    score = np.fromiter((d.score for d in dets), np.float64, n)
    cat = np.fromiter((d.category_id for d in dets), np.int64, n)
    img = np.fromiter((d.image_id for d in dets), np.int64, n) if per_image else None
    return img, cat, score


def _check_scores(score, base, path, line_of):
    bad = np.flatnonzero(~np.isfinite(score) | (score < 0))
    if len(bad):
        i = int(bad[0])
        raise InputError(f"score must be a finite number >= 0, got {score[i]!r}", path=path,
                         record=base + i, line=line_of(i), field="score")


def _locate_decode_error(exc, chunk, starts, ends, base, recs, path):
    """Map a syntax error inside a chunk to its record and line."""
    import re

    m = re.search(r"byte (\d+)", str(exc))
    reason = "not valid JSON (" + str(exc).split(" (")[0].strip().rstrip(".") + ")"
    if not m:
        return InputError(reason, path=path)
    b = int(m.group(1))
    if recs.lines:     # chunk = "[" + records joined by ","
        lens = (ends - starts).astype(np.int64)
        first = 1 + np.r_[0, np.cumsum(lens + 1)[:-1]]
        i = int(np.searchsorted(first, b, "right")) - 1
    else:              # chunk = "[" + the file's bytes from the first record + "]"
        i = int(np.searchsorted(starts, int(starts[0]) + b - 1, "right")) - 1
    i = min(max(i, 0), len(starts) - 1)
    return InputError(reason, path=path, record=base + i, line=recs.line_at(int(starts[i])))


def _select_parquet(path: str, k: int, per_image: int | None, batch_rows: int, progress: bool,
                    known: _KnownIds | None = None):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except FileNotFoundError:
        raise InputError("file not found", path=path) from None
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({str(exc).splitlines()[0]})", path=path) from None
    names = set(pf.schema_arrow.names)
    for c in ("image_id", "category_id", "score"):
        if c not in names:
            raise InputError("missing required column", path=path, field=c)
    crit = [("category_id", k)] + ([("image_id", per_image)] if per_image else [])
    pool = _Pool(crit)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=pf.metadata.num_rows, desc="topk: selecting", unit="rows", file=sys.stderr, leave=False)
    base = 0
    cols_needed = ["category_id", "score"] + (["image_id"] if per_image or known is not None else [])
    try:
        for batch in pf.iter_batches(batch_size=batch_rows, columns=cols_needed):
            n = batch.num_rows
            arrays = {}
            for c in cols_needed:
                col = batch.column(c)
                if col.null_count:
                    i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
                    raise InputError("null value", path=path, record=base + i, field=c)
                arrays[c] = col.to_numpy(zero_copy_only=False)
            score = arrays["score"].astype(np.float64, copy=False)
            _check_scores(score, base, path, lambda i: None)
            rows = np.arange(base, base + n, dtype=np.int64)
            keys = [arrays["category_id"].astype(np.int64, copy=False)]
            if per_image:
                keys.append(arrays["image_id"].astype(np.int64, copy=False))
            if known is not None:
                keep = known.keep(arrays["image_id"].astype(np.int64, copy=False), keys[0], base, path,
                                  lambda i: None)
                if keep is not None:
                    score, rows, keys = score[keep], rows[keep], [x[keep] for x in keys]
            pool.push({"score": score, "start": rows}, keys)
            base += n
            if bar is not None:
                bar.update(n)
    finally:
        if bar is not None:
            bar.close()
    kept = pool.result()
    if kept is None:
        return np.zeros(0, np.int64), pool.n_seen
    return kept["start"], pool.n_seen




class _Writer:
    """Streaming writer of selected records: raw JSON bytes, or columns for Parquet."""

    def __init__(self, f, fmt: str):
        self.f, self.fmt = f, fmt
        self.n = 0
        self._pq = None
        if fmt == "json":
            f.write(b"[")

    def raw(self, records: list) -> None:
        """Records as JSON bytes (one object each)."""
        if not records:
            return
        if self.fmt == "json":
            if self.n:
                self.f.write(b",")
            self.f.write(b",".join(records))
        elif self.fmt == "jsonl":
            import orjson

            out = []
            for r in records:
                if b"\n" in r or b"\r" in r:
                    r = orjson.dumps(orjson.loads(r))
                out.append(r)
            self.f.write(b"\n".join(out) + b"\n")
        else:
            dets = _FULL_DECODER.decode(b"[" + b",".join(records) + b"]")
            self.table(_table_from_structs(dets))
        self.n += len(records)

    def table(self, table) -> None:
        """An Arrow table of selected rows (Parquet output) or its records (JSON output)."""
        if self.fmt == "parquet":
            import pyarrow.parquet as pq

            if self._pq is None:
                self._pq = pq.ParquetWriter(self.f, table.schema)
            self._pq.write_table(table)
        else:
            import orjson

            from .io.results import from_table

            recs = [orjson.dumps(r) for r in from_table(table, "<parquet>").to_records()]
            self.raw(recs)
            return
        self.n += table.num_rows

    def abort(self) -> None:
        """Close a Parquet writer after a failure (the temporary output is then removed)."""
        if self._pq is not None:
            try:
                self._pq.close()
            except Exception:   # noqa: BLE001 - the failure being unwound is what is reported
                pass
            self._pq = None

    def close(self, empty_schema=None) -> None:
        if self.fmt == "json":
            self.f.write(b"]\n")
        elif self.fmt == "parquet":
            if self._pq is None:
                import pyarrow.parquet as pq

                self._pq = pq.ParquetWriter(self.f, empty_schema if empty_schema is not None else _schema(False))
            self._pq.close()


def _schema(with_segm: bool):
    import pyarrow as pa

    fields = [("image_id", pa.int64()), ("category_id", pa.int64()), ("score", pa.float64()),
              ("bbox", pa.list_(pa.float64(), 4))]
    if with_segm:
        fields += [("segm_counts", pa.string()), ("segm_h", pa.int32()), ("segm_w", pa.int32())]
    return pa.schema(fields)


def _table_from_structs(dets: list):
    """Arrow table in the layout of :func:`lveval.io.write_results` (bbox as fixed-size lists)."""
    import pyarrow as pa

    n = len(dets)
    cols = {"image_id": pa.array([d.image_id for d in dets], pa.int64()),
            "category_id": pa.array([d.category_id for d in dets], pa.int64()),
            "score": pa.array([d.score for d in dets], pa.float64())}
    boxes = []
    for d in dets:
        b = d.bbox
        if b is None:
            if d.segmentation is None:
                raise InputError("record has neither bbox nor segmentation", field="bbox")
            from pycocotools import mask as mask_utils

            seg = d.segmentation
            if isinstance(seg, dict) and isinstance(seg.get("counts"), str):
                seg = dict(seg, counts=seg["counts"].encode())
            b = mask_utils.toBbox(seg).tolist()
        boxes.extend(b)
    cols["bbox"] = pa.FixedSizeListArray.from_arrays(pa.array(np.asarray(boxes, np.float64).reshape(-1)), 4)
    if n and any(d.segmentation is not None for d in dets):
        segs = [d.segmentation for d in dets]
        if not all(isinstance(s, dict) and "counts" in s and "size" in s for s in segs):
            raise InputError("Parquet output needs RLE segmentations ({size, counts}) on every record",
                             field="segmentation")
        cols["segm_counts"] = pa.array([s["counts"] if isinstance(s["counts"], str) else
                                        (s["counts"].decode() if isinstance(s["counts"], bytes) else
                                         _rle_string(s)) for s in segs], pa.string())
        cols["segm_h"] = pa.array([int(s["size"][0]) for s in segs], pa.int32())
        cols["segm_w"] = pa.array([int(s["size"][1]) for s in segs], pa.int32())
    return pa.table(cols)


def _rle_string(s: dict) -> str:
    from pycocotools import mask as mask_utils

    h, w = int(s["size"][0]), int(s["size"][1])
    return mask_utils.frPyObjects(s, h, w)["counts"].decode()


def _copy_json(src: str, starts: np.ndarray, ends: np.ndarray, writer: _Writer, block_size: int,
               progress: bool) -> None:
    """Pass 2: copy the byte ranges [starts, ends) of ``src`` (sorted) to ``writer``."""
    bar = _progress(int(ends[-1]) if len(ends) else 0, "topk: writing", progress)
    try:
        with open_stream(src) as f:
            i, n = 0, len(starts)
            while i < n:
                lo = int(starts[i])
                # read a window starting at the next record, at least one record long
                hi_want = lo + block_size
                j = int(np.searchsorted(ends, hi_want, "right"))
                j = max(j, i + 1)
                hi = int(ends[j - 1])
                f.seek(lo)
                buf = f.read(hi - lo)
                s = (starts[i:j] - lo).tolist()
                e = (ends[i:j] - lo).tolist()
                writer.raw([buf[a:b] for a, b in zip(s, e)])
                if bar is not None:
                    bar.update(hi - lo)
                i = j
    finally:
        if bar is not None:
            bar.close()


def _copy_parquet(src: str, rows: np.ndarray, writer: _Writer, batch_rows: int) -> None:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(src)
    base = 0
    for batch in pf.iter_batches(batch_size=batch_rows):
        n = batch.num_rows
        lo, hi = np.searchsorted(rows, [base, base + n])
        if hi > lo:
            import pyarrow as pa

            t = pa.Table.from_batches([batch]).take(pa.array(rows[lo:hi] - base))
            writer.table(t)
        base += n
    return pf.schema_arrow


def topk_file(src: str, out: str, k: int = 10_000, *, per_image: int | None = None,
              block_size: int = 32 << 20, progress: bool = False, gt=None,
              on_unknown_image: str = "error", on_unknown_category: str = "error") -> dict:
    """Write the top ``k`` records of each class of ``src`` to ``out`` (formats from the names).

    With ``per_image`` the top N records of each image are kept too (AP-Old
    then stays exact on the output). Records keep file order and, between
    JSON inputs and outputs, their exact bytes. With ``gt`` (a path, dict or
    GroundTruth) the evaluation's unknown-id policies apply first, so that
    evaluating the output with the same policies gives the figures of
    evaluating ``src``. Returns counts ``{"read": ..., "written": ...,
    "skipped": {"image_id": n, "category_id": m}}``. The output is written atomically.
    """
    from .atomic import atomic_write, check_output

    if k is None or int(k) < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if per_image is not None and int(per_image) < 1:
        raise ValueError(f"per_image must be a positive integer, got {per_image!r}")
    src, out = str(src), str(out)
    if os.path.abspath(src) == os.path.abspath(out):
        raise InputError("output would overwrite the input; choose another --out", path=out)
    in_fmt, out_fmt = _fmt(src), _fmt(out)
    check_output(out)   # before the passes: a directory or an unwritable file is refused at once
    known = None if gt is None else _KnownIds(gt, on_unknown_image, on_unknown_category)
    batch_rows = 1 << 20
    if in_fmt == "parquet":
        rows, seen = _select_parquet(src, int(k), per_image, batch_rows, progress, known)
        rows = np.sort(rows)
        with atomic_write(out, "wb") as f:
            w = _Writer(f, out_fmt)
            try:
                schema = _copy_parquet(src, rows, w, batch_rows)
            except BaseException:
                w.abort()
                raise
            w.close(schema)
        return _counts(seen, len(rows), known)
    if not os.path.isfile(src):
        raise InputError("file not found" if not os.path.exists(src) else "is a directory, expected a file"
                         if os.path.isdir(src) else "topk reads its input twice and this is a pipe or device: "
                         "save it to a file first (it may stay gzip- or zstd-compressed)", path=src)
    starts, ends, seen = _select_json(src, int(k), per_image, block_size, progress, known)
    o = np.argsort(starts)
    starts, ends = starts[o], ends[o]
    with atomic_write(out, "wb") as f:
        w = _Writer(f, out_fmt)
        try:
            _copy_json(src, starts, ends, w, block_size, progress)
        except BaseException:
            w.abort()
            raise
        w.close()
    return _counts(seen, len(starts), known)


def _counts(seen: int, written: int, known) -> dict:
    out = {"read": int(seen), "written": int(written)}
    if known is not None:
        out["skipped"] = dict(known.skipped)
    return out
