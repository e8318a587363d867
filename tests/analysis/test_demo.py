"""Acceptance on the embedded default (bundled LVIS subset + simulated detector, seed 0)."""
import numpy as np
import pytest

from lveval.analysis.rerank import rerank
from lveval.analysis.sweep import sweep
from lveval.simulate import simulate


def test_rerank_raises_old_not_fixed(demo):
    _, _, s = demo
    r = rerank(s, per_class=100, max_dets_per_image=300)
    assert r.after.old["AP"] > r.before.old["AP"]
    assert r.after.fixed["AP"] <= r.before.fixed["AP"]
    assert r.settings.num_detections_after < r.settings.num_detections_before


def test_old_rises_with_the_cap_and_saturates(demo):
    gt, _, s = demo
    caps = [100, 300, 1000, 2000, 5000, -1]
    out = sweep(s, caps, [10_000])
    ap = [r.old["AP"] for r in out.dets_per_image]
    assert ap[0] < ap[1] < ap[2]
    # the simulator emits `candidates_per_image` = 1000 detections per image, so caps >= 1000 keep all
    per_image = np.bincount(s.dets.img_idx)
    assert per_image.max() == 1000 and simulate.__kwdefaults__["candidates_per_image"] == 1000
    assert ap[2] == ap[3] == ap[4] == ap[5]
    # no cap is AP-Fixed's setting when the budget does not bind
    assert ap[5] == out.dets_per_class[0].fixed["AP"]


def test_simulated_rare_scores_are_lower(demo):
    from lveval.analysis.scores import score_stats
    from lveval.simulate import CONFIDENCE

    _, _, s = demo
    st = score_stats(s)
    g = st.selections["fixed"]
    assert g["f"].normalised_mean == 1.0
    # the simulator scales scores by CONFIDENCE r < c < f (paper, Figure 3's softmax CE tilt)
    assert CONFIDENCE["r"] < CONFIDENCE["c"] < CONFIDENCE["f"]
    assert g["r"].normalised_mean < g["c"].normalised_mean < 1.0
    assert sum(st.shares[f].detections_in_cap for f in "rcf") == pytest.approx(1.0)
