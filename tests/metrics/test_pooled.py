"""AP-Pool against a straightforward implementation built on lvis-api's matching."""
import pytest

from lveval.metrics import evaluate
from lveval.simulate import simulate
from tests.support.pooled import pooled_reference
from tests.support.reference import top_k_per_class


@pytest.mark.parametrize("k", [10_000, 20])
def test_pooled_on_lvis_subset(lvis_dataset, lvis_path, k):
    res = simulate(lvis_path, seed=3, candidates_per_image=300)
    ref = pooled_reference(lvis_dataset, top_k_per_class(res, k))
    ours = evaluate(lvis_path, res, protocols=["pooled"], max_dets_per_class=k).pooled
    assert ours["AP"] == pytest.approx(ref["all"], abs=1e-12)
    assert ours["AP50"] == pytest.approx(ref["AP50"], abs=1e-12)
    assert ours["AP75"] == pytest.approx(ref["AP75"], abs=1e-12)
    for f in "rcf":
        assert ours["AP" + f] == pytest.approx(ref[f], abs=1e-12), f


def test_pooled_segm(lvis_dataset, lvis_path):
    res = simulate(lvis_path, seed=4, candidates_per_image=40, iou_type="segm")
    ref = pooled_reference(lvis_dataset, res, iou_type="segm")
    ours = evaluate(lvis_path, res, iou_type="segm", protocols=["pooled"]).pooled
    assert ours["AP"] == pytest.approx(ref["all"], abs=1e-12)
    for f in "rcf":
        assert ours["AP" + f] == pytest.approx(ref[f], abs=1e-12), f
