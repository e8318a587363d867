"""Mask boundaries (Boundary IoU, Cheng et al. 2021) computed on run lengths, for many masks at once.

Definition (as the LVIS 2021 challenge and boundary-iou-api implement it):
for a mask of an h x w image, ``d = max(1, int(round(ratio * sqrt(h*h + w*w))))``;
the mask, padded with one pixel of zeros, is eroded ``d`` times by a 3x3
square; the boundary is the mask minus that erosion. Eroding d times by a 3x3
square is one erosion by a (2d+1) x (2d+1) square, which is separable: a
vertical window of 2d+1 rows, then a horizontal one of 2d+1 columns, pixels
outside the image counting as zero.

Nothing here touches a pixel. A mask is a sorted list of intervals, one per
foreground run of each column (from its COCO RLE, column-major), in a key
space ``offset(mask) + column * (h + 1) + row`` where every mask and every
column has its own range. The vertical erosion trims each interval by d at
both ends. The horizontal erosion is the intersection of 2d+1 neighbouring
columns, done by doubling (columns c..c+1, then c..c+3, ...; log2(2d+1)
intersections of a sorted interval list with a shifted copy of itself). The
boundary is the mask's intervals minus the eroded ones. Interval operations
are binary searches of one sorted list in another (numpy ``searchsorted``)
and gathers: about linear in the number of runs, all masks at once, no
Python loop per mask. Boundary IoU of (mask, mask) pairs is the same
intersection over the two boundaries' intervals.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_CHUNK_RUNS = 2_000_000   # runs (plus columns) of the masks processed together: bounds temporaries


def dilation(h, w, ratio: float) -> np.ndarray:
    """Erosion radius of each mask: ``max(1, int(round(ratio * sqrt(h*h + w*w))))`` (Python's round)."""
    h = np.asarray(h, np.int64).reshape(-1)
    w = np.asarray(w, np.int64).reshape(-1)
    out = np.empty(len(h), np.int64)
    if not len(h):
        return out
    sizes, inv = np.unique(np.stack([h, w], 1), axis=0, return_inverse=True)
    d = [max(1, int(round(ratio * math.sqrt(int(a) ** 2 + int(b) ** 2)))) for a, b in sizes]  # few sizes
    out[:] = np.asarray(d, np.int64)[inv.reshape(-1)]
    return out


def _counts(strings: list) -> tuple[np.ndarray, np.ndarray]:
    """Run lengths of COCO compressed RLE strings (pycocotools' rleFrString), all masks at once.

    Returns (counts, owner): every run's length and the mask it belongs to. The
    strings must be valid (results and ground truth are validated when bound)."""
    n = len(strings)
    lens = np.fromiter(map(len, strings), np.int64, n)
    v = np.frombuffer(b"".join(strings), np.uint8).astype(np.int64) - 48
    if not len(v):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    byte_owner = np.repeat(np.arange(n), lens)
    ends = np.flatnonzero((v & 0x20) == 0)
    starts = np.r_[0, ends[:-1] + 1]
    shift = (np.arange(len(v)) - np.repeat(starts, ends - starts + 1)) * 5
    vals = np.add.reduceat((v & 0x1F) << shift, starts)
    neg = (v[ends] & 0x10) != 0
    vals = np.where(neg, vals - (np.int64(1) << (shift[ends] + 5)), vals)
    owner = byte_owner[ends]
    first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
    k = np.arange(len(vals)) - np.repeat(first, np.diff(np.r_[first, len(vals)]))
    # from the fourth run on, a run is a delta on the one two before: two running sums per mask
    counts = np.empty_like(vals)
    for p in (0, 1):
        x = vals[p::2]
        if not len(x):
            continue
        cs = np.cumsum(x)
        seg = np.flatnonzero(k[p::2] <= 2)
        base = np.r_[0, cs[seg[1:] - 1]]
        counts[p::2] = cs - np.repeat(base, np.diff(np.r_[seg, len(x)]))
    return counts, owner


@dataclass
class Runs:
    """Sorted, disjoint half-open intervals ``[start, end)`` of masks in key space, with the mask
    (``owner``) and image column (``col``) of each.

    Key of pixel (row, col) of mask m: ``offset[m] + col * (h[m] + 1) + row``;
    intervals never cross a column and never touch each other."""

    start: np.ndarray    # (n,) int64
    end: np.ndarray      # (n,) int64
    owner: np.ndarray    # (n,) int64 mask of each interval
    col: np.ndarray      # (n,) int64 column of each interval
    offset: np.ndarray   # (M,) int64, first key of each mask
    h: np.ndarray        # (M,) int64 image height of each mask
    w: np.ndarray        # (M,) int64 image width of each mask


def mask_runs(strings: list, h: np.ndarray, w: np.ndarray) -> Runs:
    """Column intervals of the foreground of compressed RLE masks (counts strings, image sizes)."""
    h = np.asarray(h, np.int64).reshape(-1)
    w = np.asarray(w, np.int64).reshape(-1)
    offset = np.r_[0, np.cumsum(w * (h + 1))[:-1]].astype(np.int64)
    counts, owner = _counts(strings)
    pos = np.cumsum(counts) - counts
    first = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]]) if len(owner) else np.zeros(0, np.int64)
    pos -= np.repeat(pos[first], np.diff(np.r_[first, len(pos)]))      # flat start inside its mask
    k = np.arange(len(counts)) - np.repeat(first, np.diff(np.r_[first, len(counts)]))
    fg = ((k & 1) == 1) & (counts > 0)
    s, ln, m = pos[fg], counts[fg], owner[fg]
    hm = h[m]
    c0 = s // hm
    c1 = (s + ln - 1) // hm
    npc = c1 - c0 + 1                                    # a run wraps over npc columns
    if len(npc) and npc.max() == 1:                      # no run wraps: one interval per run
        col, r0, r1 = c0, s - c0 * hm, s + ln - c0 * hm
        return Runs(offset[m] + col * (hm + 1) + r0, offset[m] + col * (hm + 1) + r1, m, col, offset, h, w)
    idx = np.repeat(np.arange(len(s)), npc)
    j = np.arange(len(idx)) - np.repeat(np.cumsum(npc) - npc, npc)
    col = c0[idx] + j
    hh = hm[idx]
    mi = m[idx]
    r0 = np.maximum(s[idx] - col * hh, 0)
    r1 = np.minimum(s[idx] + ln[idx] - col * hh, hh)
    base = offset[mi] + col * (hh + 1)
    return Runs(base + r0, base + r1, mi, col, offset, h, w)


def intersect(xs, xe, ys, ye):
    """Intersection of two sorted lists of disjoint intervals: (starts, ends, X interval of each)."""
    j0 = np.searchsorted(ye, xs, "right")                # first Y ending after X starts
    j1 = np.searchsorted(ys, xe, "left")                 # Y starting before X ends
    cnt = j1 - j0
    if not len(cnt):
        ix = jy = np.zeros(0, np.int64)
    elif cnt.max() <= 1:                                 # at most one overlap each (the usual case)
        ix = np.flatnonzero(cnt)
        jy = j0[ix]
    else:
        ix = np.repeat(np.arange(len(xs)), cnt)
        jy = np.repeat(j0 - (np.cumsum(cnt) - cnt), cnt) + np.arange(len(ix))
    return np.maximum(xs[ix], ys[jy]), np.minimum(xe[ix], ye[jy]), ix


def subtract_inside(xs, xe, ys, ye):
    """``X minus Y`` for sorted disjoint interval lists with every Y interval inside an X interval:
    (starts, ends, X interval of each piece)."""
    nx, ny = len(xs), len(ys)
    k0 = np.searchsorted(ys, xs, "left")                 # Y before X interval i
    k1 = np.searchsorted(ys, xe, "left")
    i = np.arange(nx)
    yi = np.repeat(i, k1 - k0)                           # the X interval holding each Y interval
    k = np.arange(ny)
    starts = np.empty(nx + ny, np.int64)
    ends = np.empty(nx + ny, np.int64)
    starts[i + k0] = xs                                  # X interval i: pieces i + k0 .. i + k1
    ends[i + k1] = xe
    starts[k + yi + 1] = ye
    ends[k + yi] = ys
    piece = np.repeat(i, k1 - k0 + 1)
    keep = ends > starts
    return starts[keep], ends[keep], piece[keep]


def _and_shifted(s, e, own, col, cols, stride):
    """Intervals AND themselves moved ``cols`` columns left (per interval; 0 = unchanged)."""
    ok = col >= cols
    sh = cols[ok] * stride[own[ok]]
    s2, e2, ix = intersect(s, e, s[ok] - sh, e[ok] - sh)
    return s2, e2, own[ix], col[ix]


def erode(r: Runs, d: np.ndarray):
    """Erosion of each mask by a (2 d + 1)-square (``d`` per mask), outside the image being zero:
    (starts, ends, owner, col) of the eroded intervals."""
    stride = r.h + 1
    dm = d[r.owner]
    s, e = r.start + dm, r.end - dm                      # vertical: trim both ends of each column run
    keep = e > s
    s, e, own, col = s[keep], e[keep], r.owner[keep], r.col[keep]
    width = 2 * d + 1                                    # horizontal: AND of columns c .. c + width - 1
    p = np.ones_like(d)
    while True:
        grow = 2 * p <= width
        if not grow.any():
            break
        s, e, own, col = _and_shifted(s, e, own, col, np.where(grow, p, 0)[own], stride)
        p = np.where(grow, 2 * p, p)
    s, e, own, col = _and_shifted(s, e, own, col, (width - p)[own], stride)  # two windows of p cover width
    sh = d[own]                                          # window c-d .. c+d belongs to column c
    return s + sh * stride[own], e + sh * stride[own], own, col + sh


@dataclass
class Boundaries:
    """Boundaries of masks as intervals of image keys ``col * (h + 1) + row``, grouped by mask."""

    start: np.ndarray    # (n,) int64, sorted within each mask
    end: np.ndarray      # (n,) int64
    first: np.ndarray    # (M + 1,) intervals of mask m are first[m]:first[m + 1]
    area: np.ndarray     # (M,) int64 boundary pixels
    h: np.ndarray        # (M,) int64
    w: np.ndarray        # (M,) int64

    def __len__(self) -> int:
        return len(self.area)


def _counts_bytes(rle) -> bytes:
    c = rle["counts"]
    return c.encode() if isinstance(c, str) else c


def boundaries(rles: list, ratio: float = 0.02) -> Boundaries:
    """Boundaries of compressed RLE masks (pycocotools dicts ``{"size": [h, w], "counts": ...}``)."""
    n = len(rles)
    h = np.fromiter((r["size"][0] for r in rles), np.int64, n)
    w = np.fromiter((r["size"][1] for r in rles), np.int64, n)
    strings = [_counts_bytes(r) for r in rles]
    d = dilation(h, w, ratio)
    cost = np.fromiter(map(len, strings), np.int64, n) + w
    starts, ends, owners = [], [], []
    lo = 0
    cum = np.cumsum(cost)
    while lo < n:
        hi = max(lo + 1, int(np.searchsorted(cum, (cum[lo - 1] if lo else 0) + _CHUNK_RUNS, "right")))
        r = mask_runs(strings[lo:hi], h[lo:hi], w[lo:hi])
        es, ee, _, _ = erode(r, d[lo:hi])
        bs, be, piece = subtract_inside(r.start, r.end, es, ee)
        own = r.owner[piece]
        local = r.offset[own]
        starts.append(bs - local)
        ends.append(be - local)
        owners.append(own + lo)
        lo = hi
    bs = np.concatenate(starts) if starts else np.zeros(0, np.int64)
    be = np.concatenate(ends) if ends else np.zeros(0, np.int64)
    own = np.concatenate(owners) if owners else np.zeros(0, np.int64)
    first = np.searchsorted(own, np.arange(n + 1), "left")
    area = np.bincount(own, weights=(be - bs), minlength=n).astype(np.int64) if n else np.zeros(0, np.int64)
    return Boundaries(bs, be, first, area, h, w)


def _gather(b: Boundaries, masks: np.ndarray, base: np.ndarray):
    """Intervals of ``masks`` (one copy per entry) with keys offset by ``base`` (per entry), and
    the entry of each."""
    lo, hi = b.first[masks], b.first[masks + 1]
    cnt = hi - lo
    pos = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt) + np.arange(int(cnt.sum()))
    entry = np.repeat(np.arange(len(masks)), cnt)
    add = base[entry]
    return b.start[pos] + add, b.end[pos] + add, entry


def pair_iou(bd: Boundaries, di: np.ndarray, bg: Boundaries, gi: np.ndarray, chunk: int = 2_000_000) -> np.ndarray:
    """Boundary IoU of pairs (``bd`` mask ``di[k]``, ``bg`` mask ``gi[k]``), masks of the same image.

    As pycocotools' ``iou`` of the two boundary RLEs (non-crowd): intersection
    over union of the pixel counts, 0 when they do not intersect."""
    di = np.asarray(di, np.int64)
    gi = np.asarray(gi, np.int64)
    k = len(di)
    inter = np.zeros(k, np.int64)
    if k == 0:
        return np.zeros(0)
    cost = (bd.first[di + 1] - bd.first[di]) + (bg.first[gi + 1] - bg.first[gi]) + 1
    cum = np.cumsum(cost)
    lo = 0
    while lo < k:
        hi = max(lo + 1, int(np.searchsorted(cum, (cum[lo - 1] if lo else 0) + chunk, "right")))
        a, g = di[lo:hi], gi[lo:hi]
        span = bd.w[a] * (bd.h[a] + 1)
        base = np.r_[0, np.cumsum(span)[:-1]].astype(np.int64)   # each pair its own key range
        xs, xe, pair = _gather(bd, a, base)
        ys, ye, _ = _gather(bg, g, base)
        s, e, ix = intersect(xs, xe, ys, ye)
        pair = pair[ix]
        inter[lo:hi] = np.bincount(pair, weights=e - s, minlength=hi - lo).astype(np.int64)
        lo = hi
    union = bd.area[di] + bg.area[gi] - inter
    out = np.zeros(k)
    np.divide(inter, union, out=out, where=inter > 0)
    return out


def to_rles(b: Boundaries) -> list:
    """The boundaries as pycocotools compressed RLE dicts (for inspection and interchange)."""
    from pycocotools import mask as mask_utils

    out = []
    for m in range(len(b)):
        h, w = int(b.h[m]), int(b.w[m])
        s, e = b.start[b.first[m]:b.first[m + 1]], b.end[b.first[m]:b.first[m + 1]]
        col = s // (h + 1)
        fs, fe = s - col, e - col                    # flat column-major positions
        if len(fs) > 1:                              # runs meeting across a column join
            join = np.flatnonzero(fs[1:] == fe[:-1])
            if len(join):
                keep_s = np.ones(len(fs), bool)
                keep_s[join + 1] = False
                keep_e = np.ones(len(fe), bool)
                keep_e[join] = False
                fs, fe = fs[keep_s], fe[keep_e]
        edges = np.r_[0, np.column_stack([fs, fe]).ravel(), h * w]
        counts = np.diff(edges).tolist()
        out.append(mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w))
    return out


def refine_pairs(gt, dets, rows, gorder, pd, pg, iou, ratio: float, thr_min: float,
                 chunk_pairs: int = 100_000):
    """Boundary IoU's pair IoU from segm's candidate pairs: ``min(mask IoU, boundary IoU)`` for
    non-crowd ground truth, the mask IoU for crowd regions; pairs below ``thr_min`` dropped.

    ``pd``/``pg``/``iou``: positions in ``rows`` (detection rows) and ``gorder`` (annotation
    indices) and the mask IoU of pairs with mask IoU >= ``thr_min``: a pair below it stays below,
    so only these pairs' masks need boundaries, each computed once. Pairs are taken a block of
    whole images at a time (about ``chunk_pairs`` pairs), so the boundaries held at once are
    those of one block's masks."""
    if len(pd) == 0:
        return pd, pg, iou
    regular = np.flatnonzero(~gt.ann_crowd[gorder[pg]])
    iou = iou.copy()
    if len(regular):
        segm, rles = dets.segm, gt.rles()
        img = dets.img_idx[rows[pd[regular]]]
        order = np.argsort(img, kind="stable")          # already sorted by image (group order)
        regular, img = regular[order], img[order]
        cuts = np.flatnonzero(np.r_[True, img[1:] != img[:-1]])   # first pair of each image
        lo = 0
        while lo < len(regular):
            j = int(np.searchsorted(cuts, lo + chunk_pairs, "left"))   # whole images, ~chunk_pairs
            hi = int(cuts[j]) if j < len(cuts) else len(regular)
            sel = regular[lo:hi]
            ud, dinv = np.unique(pd[sel], return_inverse=True)
            ug, ginv = np.unique(pg[sel], return_inverse=True)
            bd = boundaries([segm[r] for r in rows[ud]], ratio)
            bg = boundaries([rles[a] for a in gorder[ug]], ratio)
            iou[sel] = np.minimum(iou[sel], pair_iou(bd, dinv.reshape(-1), bg, ginv.reshape(-1)))
            lo = hi
    keep = iou >= thr_min
    return pd[keep], pg[keep], iou[keep]
