"""``summarize`` reads the precision array through a compact copy of the categories with a valid
value; its figures must equal lvis-api's ``_summarize`` taken on the full array, bit for bit:
``np.mean(s[s > -1])`` of each slice (lvis/eval.py), whatever the pattern of -1 entries."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from lveval.metrics import summarize
from lveval.params import Params


def reference(precision, params, groups):
    def mean(s):
        v = s[s > -1]
        return float(np.mean(v)) if v.size else -1.0

    thr = params.iou_thrs
    out = {"AP": mean(precision[:, :, :, 0])}
    for name, t in (("AP50", 0.5), ("AP75", 0.75)):
        out[name] = mean(precision[np.where(thr == t)[0]][:, :, :, 0])
    for a, lbl in enumerate(params.area_names[1:], 1):
        out["AP" + lbl[0]] = mean(precision[:, :, :, a])
    for g, cats in groups.items():
        out["AP" + g] = mean(precision[:, :, cats, 0])
        if g.startswith("_"):
            for name, t in (("AP50", 0.5), ("AP75", 0.75)):
                out[name + g] = mean(precision[np.where(thr == t)[0]][:, :, cats, 0])
    return out


@pytest.mark.parametrize("seed", range(20))
def test_compact_summary_equals_the_full_array_means(seed):
    rng = np.random.default_rng(seed)
    params = Params().resolve("lvis")
    T, R, A = len(params.iou_thrs), len(params.rec_thrs), len(params.area_rng)
    K = int(rng.integers(1, 60))
    p = rng.random((T, R, K, A))
    p[:, :, rng.random(K) < 0.6] = -1                     # categories without ground truth
    p[..., rng.random((K, A)) < 0.3] = -1                 # area ranges without ground truth
    if seed % 3 == 0:                                     # stray invalid values inside valid classes
        p[rng.random(p.shape) < 0.05] = -1
    if seed % 5 == 0:
        p[:] = -1                                         # nothing valid
    groups = {"r": rng.choice(K, int(rng.integers(0, K + 1)), replace=False),
              "c": np.sort(rng.choice(K, int(rng.integers(0, K + 1)), replace=False)),
              "_split": rng.integers(0, K, int(rng.integers(1, 2 * K + 1))),   # unsorted, repeated
              "f": rng.random(K) < 0.5}                                          # a boolean mask
    gt = SimpleNamespace()
    recall = rng.random((T, K, A))
    got = summarize(p, recall, params, gt, groups=groups)
    want = reference(p, params, groups)
    for key, v in want.items():
        assert got[key] == v, key
