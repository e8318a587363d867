"""The LVIS 2021 challenge preset (API, CLI) and the compat classes' challenge interface, against the
Boundary IoU reference of boundary_reference.py on lvis-api 0.5.3's loop."""
import contextlib
import copy
import io
import json

import numpy as np
import orjson
import pytest

import tests.support.reference as reference
from lveval.cli import main
from lveval.metrics import evaluate
from lveval.params import Params
from lveval.simulate import simulate
from tests.support.reference import KEYS, top_k_per_class

from .boundary_reference import BoundaryCOCOeval, BoundaryLVISEval, nonempty

# The challenge branch's key names (lvis-api, branch lvis_challenge_2021, lvis/eval.py summarize():
# "AR@{}" with suffix "{max_dets_per_cat}/cat" when max_dets_per_im < 0).
CHALLENGE_KEYS = {"AR": "AR@10000/cat", "ARs": "ARs@10000/cat", "ARm": "ARm@10000/cat", "ARl": "ARl@10000/cat"}
# ... and its printed line (same file, print_results()).
TEMPLATE = " {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={} catIds={:>3s}] = {:0.3f}"


@pytest.fixture(scope="module")
def challenge_case(lvis_dataset, lvis_path, tmp_path_factory):
    res = nonempty(simulate(lvis_path, seed=21, candidates_per_image=20, iou_type="segm"))
    path = tmp_path_factory.mktemp("ch") / "res.json"
    path.write_bytes(orjson.dumps(res))
    mp = pytest.MonkeyPatch()
    mp.setattr(reference, "LVISEval", BoundaryLVISEval)
    try:
        ref, e = reference.run_lvis(lvis_dataset, top_k_per_class(res, 10_000), max_dets=-1, iou_type="segm")
    finally:
        mp.undo()
    return res, str(path), ref, e


def test_api_preset(challenge_case, lvis_path):
    res, path, ref, e = challenge_case
    r = evaluate(lvis_path, path, challenge="lvis2021")
    assert r.old is None and r.fixed is not None and r.pooled is not None
    assert r.params.iou_type == "boundary" and r.params.max_dets_per_class == 10_000
    assert r.params.dilation_ratio == 0.02
    for k in KEYS:
        assert r.fixed[k] == pytest.approx(ref[k], abs=1e-12), k
    np.testing.assert_allclose(r.precision["fixed"], e.eval["precision"], rtol=0, atol=1e-12)
    label, value = r.headline()
    assert value == r.fixed["AP"] and "boundary AP-Fixed" in label
    same = evaluate(lvis_path, path, iou_type="boundary", protocols=["fixed", "pooled"])
    assert same.pooled == r.pooled and same.fixed == r.fixed


@pytest.mark.parametrize("kw", [dict(iou_type="segm"), dict(max_dets_per_class=300), dict(dilation_ratio=0.01),
                                dict(protocols=["old"]), dict(challenge="lvis2020")])
def test_api_preset_rejects_contradictions(lvis_path, challenge_case, kw):
    kw = {"challenge": "lvis2021", **kw}
    with pytest.raises(ValueError):
        evaluate(lvis_path, challenge_case[1], **kw)


def test_cli_preset(challenge_case, lvis_path, tmp_path, capsys):
    res, path, ref, _ = challenge_case
    out = tmp_path / "o.json"
    assert main(["evaluate", lvis_path, path, "--challenge", "lvis2021", "--json", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    first = text.splitlines()[0]
    assert first.startswith("LVIS 2021 challenge: boundary AP-Fixed") and first.endswith(f"AP = {100 * ref['AP']:.2f}")
    assert "AP-Old" not in text and "AP-Fixed (10000/class)" in text and "AP-Pool (10000/class)" in text
    d = json.loads(out.read_text())
    assert "old" not in d and set(d["fixed"]) == set(KEYS)
    assert d["challenge"]["name"] == "lvis2021" and d["challenge"]["AP"] == pytest.approx(ref["AP"], abs=1e-12)
    assert d["params"]["iou_type"] == "boundary" and d["params"]["dilation_ratio"] == 0.02
    for k in KEYS:
        assert d["fixed"][k] == pytest.approx(ref[k], abs=1e-12), k
    for bad in (["--protocols", "old"], ["--iou-type", "segm"], ["--max-dets-per-class", "300"],
                ["--dilation-ratio", "0.05"]):
        assert main(["evaluate", lvis_path, path, "--challenge", "lvis2021", "--quiet"] + bad) == 2, bad
    assert main(["evaluate", lvis_path, path, "--iou-type", "boundary", "--dilation-ratio", "0", "--quiet"]) == 2


def test_default_outputs_carry_no_boundary_fields(lvis_path, challenge_case):
    assert "dilation_ratio" not in Params().to_dict() and "dilation_ratio" not in Params(iou_type="segm").to_dict()
    d = evaluate(lvis_path, challenge_case[1], iou_type="segm", protocols=["fixed"]).to_dict()
    assert "challenge" not in d and "dilation_ratio" not in d["params"]
    with pytest.raises(ValueError):
        Params(iou_type="boundary", dilation_ratio=0)


def test_compat_challenge_script_unchanged(challenge_case, lvis_path):
    res, path, ref, _ = challenge_case
    from lveval.compat import LVISEval  # the script's only change: this import line

    ANNOTATION_PATH, RESULT_PATH = lvis_path, path
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        # lvis-api's test_challenge21.py (branch lvis_challenge_2021), verbatim
        lvis_eval = LVISEval(ANNOTATION_PATH, RESULT_PATH, mode="challenge2021")
        lvis_eval.run()
        lvis_eval.print_results()
    got = lvis_eval.get_results()
    assert list(got) == [CHALLENGE_KEYS.get(k, k) for k in KEYS]
    for k in KEYS:
        assert got[CHALLENGE_KEYS.get(k, k)] == pytest.approx(ref[k], abs=1e-12), k
    lines = buf.getvalue().splitlines()
    assert len(lines) == 13
    assert lines[0] == TEMPLATE.format("Average Precision", "(AP)", "0.50:0.95", "all", "10000/cat", "all", ref["AP"])
    assert lines[9] == TEMPLATE.format("Average Recall", "(AR)", "0.50:0.95", "all", "10000/cat", "all", ref["AR"])
    assert lines[6] == TEMPLATE.format("Average Precision", "(AP)", "0.50:0.95", "all", "10000/cat", "r", ref["APr"])


def test_compat_results_caps(challenge_case, lvis_path, lvis_dataset):
    from lveval.compat import LVIS, LVISEval, LVISResults

    res, path, ref, _ = challenge_case
    g = LVIS(lvis_path)
    ok = LVISResults(g, copy.deepcopy(res), max_dets_per_cat=10000, max_dets_per_im=-1)
    e = LVISEval(g, ok, iou_type="boundary", mode="challenge2021")
    with contextlib.redirect_stdout(io.StringIO()):
        e.run()
    assert e.results["AP"] == pytest.approx(ref["AP"], abs=1e-12)
    with pytest.raises(AssertionError):
        LVISEval(g, LVISResults(g, res), mode="challenge2021")   # 300 per image: not the challenge's set
    # per-class limit alone: the top 5 of each class, keys as lvis-api 0.5.3 (no /cat suffix: params.max_dets
    # and max_dets_per_cat are the evaluation's, not the results')
    five = LVISResults(g, res, max_dets_per_cat=5, max_dets_per_im=-1)
    assert len(five.detections) == len(top_k_per_class(res, 5))
    mp = pytest.MonkeyPatch()
    mp.setattr(reference, "LVISEval", BoundaryLVISEval)
    try:
        want, _ = reference.run_lvis(lvis_dataset, top_k_per_class(res, 5), max_dets=-1, iou_type="segm")
    finally:
        mp.undo()
    e = LVISEval(g, five, iou_type="boundary")
    e.params.max_dets = -1
    with contextlib.redirect_stdout(io.StringIO()):
        e.run()
    for k in KEYS:
        assert e.results[k if not k.startswith("AR") else k + "@-1"] == pytest.approx(want[k], abs=1e-12), k


def test_compat_coco_boundary(coco_paths):
    from pycocotools.coco import COCO

    from lveval.compat import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO(coco_paths["gt"])
        d = g.loadRes(coco_paths["segm"])
        ours = COCOeval(g, d, iouType="boundary")
        ours.evaluate()
        ours.accumulate()
        ours.summarize()
        g2 = COCO(coco_paths["gt"])
        ref = BoundaryCOCOeval(g2, g2.loadRes(coco_paths["segm"]), "boundary")
        ref.evaluate()
        ref.accumulate()
        ref.summarize()
    np.testing.assert_allclose(ours.stats, ref.stats, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.eval["precision"], ref.eval["precision"], rtol=0, atol=1e-12)
