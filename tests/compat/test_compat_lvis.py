"""lveval.compat's lvis-api drop-in against lvis-api 0.5.3 itself."""
import contextlib
import copy
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import lveval
from lveval import evaluate
from lveval.compat import LVIS, LVISEval, LVISPooledEval, LVISResults
from lveval.simulate import simulate
from tests.support.gen import make_dataset
from tests.support.pooled import pooled_reference
from tests.support.reference import lvis_gt, run_lvis

HERE = os.path.dirname(__file__)

# Code written for lvis-api; only the import line differs between the two runs.
SCRIPT = """
gt = LVIS(GT_PATH)
dt = LVISResults(gt, RESULTS_PATH, max_dets=MAX_DETS)
ev = LVISEval(gt, dt, IOU_TYPE)
ev.params.max_dets = MAX_DETS
if IMG_IDS is not None:
    ev.params.img_ids = IMG_IDS
if CAT_IDS is not None:
    ev.params.cat_ids = CAT_IDS
ev.run()
ev.print_results()
out = (ev.get_results(), ev.eval["precision"], ev.eval["recall"], ev.params.iou_thrs, ev.params.area_rng_lbl)
"""


def run_script(import_line, **env):
    ns = dict(env)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exec(import_line + "\n" + SCRIPT, ns)
    return ns["out"], buf.getvalue()


@pytest.fixture(scope="module")
def sim_path(tmp_path_factory, lvis_path):
    res = simulate(lvis_path, seed=4, candidates_per_image=250)
    p = tmp_path_factory.mktemp("compat") / "results.json"
    p.write_text(json.dumps(res))
    return str(p)


@pytest.mark.parametrize("max_dets,img_ids,cat_ids", [
    (300, None, None),
    (40, None, None),                                     # the per-image cap binds
    (300, "every other image", "a reversed subset"),      # user-restricted params
])
def test_unchanged_script_gives_lvis_api_figures(lvis_path, lvis_dataset, sim_path, max_dets, img_ids, cat_ids):
    all_imgs = sorted(im["id"] for im in lvis_dataset["images"])
    all_cats = sorted(c["id"] for c in lvis_dataset["categories"])
    env = dict(GT_PATH=lvis_path, RESULTS_PATH=sim_path, MAX_DETS=max_dets, IOU_TYPE="bbox",
               IMG_IDS=all_imgs[::2] if img_ids else None, CAT_IDS=all_cats[3::2][::-1] if cat_ids else None)
    (ref, ref_p, ref_r, thr, lbl), ref_text = run_script("from lvis import LVIS, LVISResults, LVISEval", **env)
    (ours, p, r, thr2, lbl2), text = run_script("from lveval.compat import LVIS, LVISResults, LVISEval", **env)
    assert list(ours) == list(ref)                       # same keys, same order ("AR@300" ...)
    for k in ref:
        assert ours[k] == pytest.approx(float(ref[k]), abs=1e-12), k
    assert p.shape == ref_p.shape and r.shape == ref_r.shape
    np.testing.assert_allclose(p, ref_p, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r, ref_r, rtol=0, atol=1e-12)
    assert text == ref_text                              # print_results prints the same lines
    assert lbl2 == lbl and np.array_equal(thr2, thr)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5, 8])
def test_generated_data_matches_lvis_api(seed):
    gt, res = make_dataset(seed, kind="lvis", n_images=4, n_cats=5, max_dets=14)
    if not res:
        pytest.skip("lvis-api cannot take an empty result list")
    ref, e = run_lvis(gt, res, max_dets=6)
    g = LVIS(copy.deepcopy(gt))
    ev = LVISEval(g, LVISResults(g, res, max_dets=6), "bbox")
    ev.params.max_dets = 6
    ev.run()
    for k, v in e.results.items():
        assert ev.results[k] == pytest.approx(float(v), abs=1e-12), (seed, k)
    np.testing.assert_allclose(ev.eval["precision"], e.eval["precision"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ev.eval["recall"], e.eval["recall"], rtol=0, atol=1e-12)


def test_changed_thresholds_and_area_ranges_match_lvis_api():
    gt, res = make_dataset(11, kind="lvis", n_images=5, n_cats=4, max_dets=16)
    g_ref = lvis_gt(gt)
    import lvis

    outs = []
    for mod in (lvis, __import__("lveval.compat", fromlist=["x"])):
        g = g_ref if mod is lvis else mod.LVIS(copy.deepcopy(gt))
        ev = mod.LVISEval(g, mod.LVISResults(g, copy.deepcopy(res), max_dets=-1), "bbox")
        ev.params.iou_thrs = np.array([0.3, 0.5, 0.7])
        ev.params.area_rng = [[0, 1e10], [0, 40 ** 2], [40 ** 2, 1e10]]
        ev.params.area_rng_lbl = ["all", "small", "large"]
        ev.params.rec_thrs = np.linspace(0, 1, 21)
        with contextlib.redirect_stdout(io.StringIO()):
            ev.run()
        outs.append(ev)
    ref, ours = outs
    for k, v in ref.results.items():
        assert ours.results[k] == pytest.approx(float(v), abs=1e-12), k
    np.testing.assert_allclose(ours.eval["precision"], ref.eval["precision"], rtol=0, atol=1e-12)


def test_segm_sizes_results_by_their_box_like_lvis_api():
    """lvis-api sizes segm results by the box when they carry one; the drop-in does the same."""
    from pycocotools import mask as mask_utils

    gt, res = make_dataset(3, kind="lvis", n_images=4, n_cats=4, max_dets=12, segm=True)
    for r in res:
        x, y, w, h = mask_utils.toBbox(r["segmentation"]).tolist()
        r["bbox"] = [x - 6, y - 6, w + 12, h + 12]       # a loose box changes small/medium/large
    ref, e = run_lvis(gt, res, max_dets=300, iou_type="segm")
    g = LVIS(copy.deepcopy(gt))
    ev = LVISEval(g, LVISResults(g, res), "segm")
    ev.run()
    for k, v in e.results.items():
        assert ev.results[k] == pytest.approx(float(v), abs=1e-12), k
    np.testing.assert_allclose(ev.eval["precision"], e.eval["precision"], rtol=0, atol=1e-12)


def test_accepts_lvis_api_objects_and_does_not_modify_inputs(lvis_path, lvis_dataset):
    res = simulate(lvis_path, seed=7, candidates_per_image=60)
    before = copy.deepcopy(res)
    g = LVIS(lvis_path)
    ours = LVISEval(g, LVISResults(g, res), "bbox")
    ours.run()
    assert res == before                                 # lvis-api adds id/area/segmentation in place; we do not
    import lvis

    g_ref = lvis_gt(lvis_dataset)
    mixed = LVISEval(g_ref, lvis.LVISResults(g_ref, copy.deepcopy(res)), "bbox")   # lvis-api's objects
    mixed.run()
    assert dict(mixed.results) == dict(ours.results)


def test_lvis_results_index_is_lvis_api_like(lvis_path):
    res = simulate(lvis_path, seed=9, candidates_per_image=50)
    g = LVIS(lvis_path)
    dt = LVISResults(g, res, max_dets=20)
    img = res[0]["image_id"]
    anns = dt.load_anns(dt.get_ann_ids(img_ids=[img]))
    assert len(anns) == 20 and all("area" in a and "id" in a for a in anns)
    assert [a["score"] for a in dt.get_top_results(img, 0.5)] == [a["score"] for a in anns if a["score"] > 0.5]
    assert sorted(g.get_cat_ids()) == sorted(c["id"] for c in g.dataset["categories"])


def test_max_dets_per_class_gives_ap_fixed(lvis_path, sim_path):
    g = LVIS(lvis_path)
    ev = LVISEval(g, LVISResults(g, sim_path, max_dets=-1), "bbox")
    ev.params.max_dets = -1
    ev.params.max_dets_per_class = 30
    ev.run()
    r = lveval.evaluate(lvis_path, sim_path, protocols=["fixed"], max_dets_per_class=30)
    for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf"):
        assert ev.results[k] == pytest.approx(r.fixed[k], abs=1e-12), k
    np.testing.assert_allclose(ev.eval["precision"], r.precision["fixed"], rtol=0, atol=1e-12)


def test_pooled_variant_matches_reference_and_engine(lvis_path, lvis_dataset):
    res = simulate(lvis_path, seed=5, candidates_per_image=80)
    ref = pooled_reference(lvis_dataset, res)
    g = LVIS(lvis_path)
    ev = LVISPooledEval(g, LVISResults(g, res, max_dets=-1), "bbox", pools=["all", "r", "c", "f"])
    ev.params.max_dets = -1
    ev.run()
    assert list(ev.results) == ["AP-pooled-all", "AP-pooled-r", "AP-pooled-c", "AP-pooled-f"]
    for pool in ("all", "r", "c", "f"):
        assert ev.results[f"AP-pooled-{pool}"] == pytest.approx(ref[pool], abs=1e-12), pool
    r = lveval.evaluate(lvis_path, res, protocols=["pooled"], max_dets_per_class=-1)
    assert ev.results["AP-pooled-all"] == pytest.approx(r.pooled["AP"], abs=1e-12)
    assert ev.eval["precision"].shape == (10, 101, 4, 4)


def test_runs_on_numpy_2_without_the_np_float_alias(lvis_path, sim_path):
    """lvis-api 0.5.3 needs np.float (gone in numpy 2); the drop-in does not."""
    code = ("import numpy as np\nassert not hasattr(np, 'float'), 'alias present'\n"
            "from lveval.compat import LVIS, LVISResults, LVISEval\n"
            f"g = LVIS({lvis_path!r}); e = LVISEval(g, LVISResults(g, {sim_path!r}), 'bbox'); e.run()\n"
            "print(np.__version__.split('.')[0], round(e.results['AP'], 6))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    major, ap = out.stdout.split()
    assert int(major) >= 2 and 0 < float(ap) < 1


def test_unsupported_options_fail_loudly(lvis_path, sim_path):
    g = LVIS(lvis_path)
    ev = LVISEval(g, LVISResults(g, sim_path), "bbox")
    ev.params.use_cats = 0   # supported: one pseudo-category, as lveval.evaluate(class_agnostic=True)
    ev.run()
    r = evaluate(lvis_path, sim_path, protocols=["old"], class_agnostic=True, max_dets_per_image=-1)
    assert ev.results["AP"] == pytest.approx(r.old["AP"], abs=1e-12)
    with pytest.raises(ValueError):
        LVISEval(g, sim_path, "keypoints")
