"""Boundaries of single masks and boundary IoU of pairs against the cv2 reference, pixel for pixel."""
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from lveval.boundary import boundaries, dilation, pair_iou, to_rles

from .boundary_reference import cv2_boundary


def _blobs(rng, n, h, w):
    """n random h x w masks: smoothed noise at a random level (holes, several parts), plus
    full, empty, single-pixel, single-row/column and border-touching masks."""
    noise = rng.random((n, h + 4, w + 4))
    k = int(rng.integers(1, 4))
    c = np.cumsum(np.cumsum(noise, 1), 2)                       # box filter of size k by cumsums
    sm = c[:, k:, k:] - c[:, :-k, k:] - c[:, k:, :-k] + c[:, :-k, :-k]
    sm = sm[:, :h, :w]
    level = np.quantile(sm.reshape(n, -1), rng.uniform(0.05, 0.95, n), axis=1).diagonal()
    m = (sm > level[:, None, None]).astype(np.uint8)
    kinds = rng.integers(0, 10, n)
    m[kinds == 0] = 1                                           # the whole image: every border
    m[kinds == 1] = 0                                           # empty
    one = np.flatnonzero(kinds == 2)                            # one pixel, anywhere (corners too)
    m[one] = 0
    m[one, rng.integers(0, h, len(one)), rng.integers(0, w, len(one))] = 1
    band = np.flatnonzero(kinds == 3)                           # a full row and a full column
    m[band, rng.integers(0, h, len(band)), :] = 1
    m[band, :, rng.integers(0, w, len(band))] = 1
    frame = np.flatnonzero(kinds == 4)                          # a ring touching all four borders
    m[frame] = 1
    if h > 4 and w > 4:
        m[frame, 2:-2, 2:-2] = 0
    return m


def _masks(seed):
    rng = np.random.default_rng(seed)
    sizes = [(1, 1), (1, 7), (9, 1), (2, 3), (5, 5), (13, 8), (31, 17), (40, 64), (64, 41), (97, 3),
             (3, 101), (120, 90), (57, 57), (200, 150)]
    out = []
    for h, w in sizes:
        n = 220 if h * w < 5000 else 50
        out.extend(_blobs(rng, n, h, w))
    return out


@pytest.mark.parametrize("ratio", [0.001, 0.008, 0.02, 0.037, 0.1])
def test_boundaries_equal_cv2(ratio):
    masks = _masks(int(ratio * 1000))
    rles = [mask_utils.encode(np.asfortranarray(m)) for m in masks]
    b = boundaries(rles, ratio)
    got = to_rles(b)
    assert len(masks) > 3000 / 5
    bad = [i for i, (m, r) in enumerate(zip(masks, got))
           if not np.array_equal(mask_utils.decode(r), cv2_boundary(m, ratio))]
    assert not bad, f"{len(bad)} masks differ, first {bad[0]} of shape {masks[bad[0]].shape}"
    np.testing.assert_array_equal(b.area, [int(cv2_boundary(m, ratio).sum()) for m in masks])


def test_images_smaller_than_the_band():
    # d = round(0.1 * sqrt(30^2 + 40^2)) = 5: every pixel of a 4 x 6 image is boundary; and d >= 1
    rng = np.random.default_rng(5)
    for h, w, ratio in ((30, 40, 0.1), (4, 6, 0.1), (2, 2, 0.001), (1, 1, 0.001), (11, 200, 0.1)):
        masks = list(_blobs(rng, 50, h, w))
        got = to_rles(boundaries([mask_utils.encode(np.asfortranarray(m)) for m in masks], ratio))
        for m, r in zip(masks, got):
            np.testing.assert_array_equal(mask_utils.decode(r), cv2_boundary(m, ratio))


def test_dilation_is_pythons_round():
    h = np.array([480, 427, 1, 3, 500, 612])
    w = np.array([640, 640, 1, 4, 375, 612])
    for ratio in (0.02, 0.001, 0.1, 0.0125):
        want = [max(1, int(round(ratio * np.sqrt(a * a + c * c)))) for a, c in zip(h, w)]
        np.testing.assert_array_equal(dilation(h, w, ratio), want)
    # 3-4-5: ratio * 5 = 2.5 exactly -> Python's round gives 2 (half to even)
    assert dilation([3], [4], 0.5)[0] == 2


def test_pair_iou_equals_bitmaps():
    rng = np.random.default_rng(7)
    masks = []
    for h, w in ((60, 80), (33, 47), (1, 50)):
        masks.append(_blobs(rng, 80, h, w))
    for group in masks:
        rles = [mask_utils.encode(np.asfortranarray(m)) for m in group]
        b = boundaries(rles, 0.02)
        bits = [cv2_boundary(m, 0.02).astype(bool) for m in group]
        di = rng.integers(0, len(group), 400)
        gi = rng.integers(0, len(group), 400)
        got = pair_iou(b, di, b, gi)
        want = []
        for i, j in zip(di, gi):
            inter = np.count_nonzero(bits[i] & bits[j])
            want.append(inter / np.count_nonzero(bits[i] | bits[j]) if inter else 0.0)
        np.testing.assert_array_equal(got, want)
        # pycocotools' own IoU of the two boundary RLEs gives the same numbers
        br = to_rles(b)
        ref = np.asarray(mask_utils.iou(br, br, [0] * len(br)))
        np.testing.assert_array_equal(got, ref[di, gi])
