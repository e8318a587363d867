"""RLE columns (io/masks.py): validity, area, box and pair IoU equal pycocotools' own functions
(``area``, ``toBbox``, ``iou``) and the per-mask validator, compiled and pure, on thousands of
random masks with edge cases (empty, full, 1-pixel, 1-row and 1-column images, odd sizes, zero runs)."""
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from lveval.io import masks as M
from lveval.io.results import counts_problem


def _random_masks(rng, n):
    out = []
    for k in range(n):
        h, w = [(1, 1), (1, 7), (9, 1), (2, 3), (17, 13), (31, 64), (480, 640)][k % 7] if k < 70 else \
            (int(rng.integers(1, 60)), int(rng.integers(1, 60)))
        kind = k % 9
        if kind == 0:
            m = np.zeros((h, w), np.uint8)
        elif kind == 1:
            m = np.ones((h, w), np.uint8)
        elif kind == 2:
            m = np.zeros((h, w), np.uint8)
            m[rng.integers(h), rng.integers(w)] = 1
        elif kind == 3:   # a box with a hole
            m = np.zeros((h, w), np.uint8)
            y0, x0 = rng.integers(0, h), rng.integers(0, w)
            m[y0:y0 + rng.integers(1, h + 1), x0:x0 + rng.integers(1, w + 1)] = 1
            m[(y0 + h) // 2, (x0 + w) // 2] = 0
        else:
            m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        out.append(mask_utils.encode(np.asfortranarray(m)))
    # uncompressed counts with zero-length runs, compressed by pycocotools
    for counts, (h, w) in (([0, 0, 3, 0, 3], (2, 3)), ([2, 0, 0, 4], (3, 2)), ([0, 6], (2, 3)),
                           ([6], (3, 2)), ([1, 1, 0, 1, 1, 2], (2, 3))):
        out.append(mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w))
    return out


def _column(rles):
    return M.RLEColumn.from_strings([r["counts"] for r in rles], [r["size"][0] for r in rles],
                                    [r["size"][1] for r in rles])


@pytest.fixture(params=["compiled", "pure"])
def mode(request, monkeypatch):
    if request.param == "compiled" and not M.compiled():
        pytest.skip("compiled RLE helper not built")
    if request.param == "pure":
        monkeypatch.setenv("LVEVAL_PURE_RLE", "1")
    return request.param


def test_area_and_box_equal_pycocotools(mode):
    rng = np.random.default_rng(0)
    rles = _random_masks(rng, 3000)
    ok, area, box = M.stats(_column(rles))
    assert ok.all()
    want_area = np.concatenate([np.asarray(mask_utils.area(rles[i:i + 200]), np.float64)
                                for i in range(0, len(rles), 200)])
    np.testing.assert_array_equal(area, want_area)
    np.testing.assert_array_equal(box, np.asarray(mask_utils.toBbox(rles), np.float64).reshape(-1, 4))


def test_validity_equals_per_mask_decoder(mode):
    rng = np.random.default_rng(1)
    rles = _random_masks(rng, 1500)
    strings, h, w = [], [], []
    for r in rles:
        s = bytearray(r["counts"])
        hh, ww = r["size"]
        u = rng.random()
        if s and u < 0.3:
            s[rng.integers(len(s))] = int(rng.integers(0, 256))
        elif s and u < 0.35:
            s = s[:-1]
        elif u < 0.4:
            s += bytes(rng.integers(48, 112, int(rng.integers(1, 16))).astype(np.uint8))
        elif u < 0.45:
            hh += 1
        strings.append(bytes(s))
        h.append(hh)
        w.append(ww)
    ok, area, box = M.stats(M.RLEColumn.from_strings(strings, h, w))
    want = np.array([counts_problem(s, a * b) is None for s, a, b in zip(strings, h, w)])
    np.testing.assert_array_equal(ok, want)
    assert (~ok).sum() > 300 and ok.sum() > 300
    assert not area[~ok].any() and not box[~ok].any()


def test_pair_iou_equals_pycocotools(mode):
    rng = np.random.default_rng(2)
    sizes = [(1, 1), (1, 9), (7, 1), (5, 8), (23, 17), (64, 48)]
    dets, gts, want, pd, pg, crowd = [], [], [], [], [], []
    for k in range(400):
        h, w = sizes[k % len(sizes)]
        nd, ng = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        d = [mask_utils.encode(np.asfortranarray((rng.random((h, w)) < rng.random()).astype(np.uint8)))
             for _ in range(nd)]
        g = [mask_utils.encode(np.asfortranarray((rng.random((h, w)) < rng.random()).astype(np.uint8)))
             for _ in range(ng)]
        if k % 5 == 0:
            g[0] = d[0]                                                        # identical
            d[-1] = mask_utils.encode(np.zeros((h, w), np.uint8, order="F"))   # empty
            g[-1] = mask_utils.encode(np.ones((h, w), np.uint8, order="F"))    # full
        cr = [int(c) for c in rng.random(ng) < 0.3]
        m = np.asarray(mask_utils.iou(d, g, cr), np.float64).reshape(nd, ng)
        for i in range(nd):
            for j in range(ng):
                pd.append(len(dets) + i)
                pg.append(len(gts) + j)
                crowd.append(cr[j])
                want.append(m[i, j])
        dets += d
        gts += g
    got = M.pair_iou(_column(dets), _column(gts), np.array(pd), np.array(pg), np.array(crowd))
    np.testing.assert_array_equal(got, np.array(want))
    assert (got == 0).sum() > 50 and (got == 1).sum() > 20 and ((got > 0) & (got < 1)).sum() > 1000


def test_pack_take_concat(mode):
    rng = np.random.default_rng(3)
    rles = _random_masks(rng, 200)
    items = [dict(r, counts=r["counts"].decode()) if i % 2 else r for i, r in enumerate(rles)]
    items[5] = [[0, 0, 1, 0, 1, 1]]                                 # a polygon: not packed
    items[6] = {"size": [1, 2], "counts": [1, 1]}                   # uncompressed: not packed
    items[8] = {"size": [float(rles[8]["size"][0]), rles[8]["size"][1]], "counts": rles[8]["counts"]}
    h = [r["size"][0] for r in rles]
    w = [r["size"][1] for r in rles]
    col, ok = M.pack(items, h, w)
    assert list(np.flatnonzero(~ok)) == [5, 6, 8]
    for i in np.flatnonzero(ok):
        assert col[i] == {"size": rles[i]["size"], "counts": rles[i]["counts"]}
    full = _column(rles)
    idx = rng.permutation(len(rles))[:77]
    sub = full.take(idx)
    assert [s["counts"] for s in sub] == [rles[i]["counts"] for i in idx]
    both = M.RLEColumn.concat([full.take(np.arange(50)), full.take(np.arange(50, len(rles)))])
    assert list(both) == list(full)
    assert list(full[np.array([3, 1])]) == [full[3], full[1]]
