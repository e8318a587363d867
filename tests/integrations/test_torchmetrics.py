"""LVISMeanAveragePrecision against torchmetrics' MeanAveragePrecision (pycocotools path, step by step in
tm_reference.py, and the real class where it imports), against the CLI on the bundled LVIS subset, and
synced over two gloo processes."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchmetrics")

from lveval.integrations.torchmetrics import LVISMeanAveragePrecision  # noqa: E402
from lveval.io.gt import load_gt  # noqa: E402
from lveval.io.results import load_results  # noqa: E402
from lveval.simulate import simulate  # noqa: E402

from .adapters_data import TM_KW, make_inputs  # noqa: E402
from .cli_figures import cli_figures  # noqa: E402
from .tm_reference import tm_map  # noqa: E402


def _ours(preds, targets, batch=4, **kw):
    m = LVISMeanAveragePrecision(**kw)
    for i in range(0, len(preds), batch):
        m.update(preds[i:i + batch], targets[i:i + batch])
    return {k: v.tolist() for k, v in m.compute().items()}


def _check(got, exp):
    for k, v in exp.items():
        g = got[k]
        if isinstance(v, list) and not isinstance(g, list):
            g = [g]
        assert g == v, (k, g, v)


@pytest.mark.parametrize("fmt", ["xyxy", "xywh", "cxcywh"])
def test_bbox_box_formats(fmt):
    preds, targets = make_inputs(1, fmt=fmt, n_img=14)
    _check(_ours(preds, targets, box_format=fmt, class_metrics=True),
           tm_map(preds, targets, box_format=fmt, class_metrics=True))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("iou_type", ["segm", ("bbox", "segm")])
def test_segm_and_both(iou_type):
    preds, targets = make_inputs(2, masks=True, n_img=10)
    exp = tm_map(preds, targets, iou_type=iou_type, class_metrics=True)
    got = _ours(preds, targets, iou_type=iou_type, class_metrics=True)
    _check(got, exp)
    assert any(v > 0 for k, v in exp.items() if k.endswith("map"))


def test_custom_thresholds_and_max_dets():
    preds, targets = make_inputs(3, n_img=16)
    for kw in (dict(iou_thresholds=[0.3, 0.5, 0.8], rec_thresholds=[0.0, 0.25, 0.5, 0.75, 1.0],
                    max_detection_thresholds=[1, 3, 100]),
               dict(max_detection_thresholds=[2, 5, 7]),          # no 100: torchmetrics' map is -1
               dict(max_detection_thresholds=[1, 100, 300]),     # map at 100, the rest at 300
               dict(iou_thresholds=[0.5, 0.75], class_metrics=True)):
        _check(_ours(preds, targets, **kw), tm_map(preds, targets, **kw))
    # torchmetrics' float32 thresholds, not numpy's float64 ones, are what make map_50 agree
    from lveval.integrations.torchmetrics import default_thresholds
    iou, rec = default_thresholds()
    assert iou[1] != 0.55 and rec[1] != 0.01


REAL_CASES = [dict(class_metrics=True), dict(box_format="xywh"), dict(box_format="cxcywh", class_metrics=True),
              dict(iou_type="segm", class_metrics=True), dict(iou_type=("bbox", "segm"), class_metrics=True),
              dict(iou_thresholds=[0.3, 0.5, 0.8], rec_thresholds=[0.0, 0.25, 0.5, 0.75, 1.0],
                   max_detection_thresholds=[1, 3, 100]),
              dict(max_detection_thresholds=[2, 5, 7]), dict(max_detection_thresholds=[1, 100, 300])]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("kw", REAL_CASES)
def test_real_torchmetrics_class_where_it_imports(kw):
    """torchmetrics' own MeanAveragePrecision (it needs torchvision) on the same update calls."""
    try:
        from torchmetrics.detection import MeanAveragePrecision
        MeanAveragePrecision()
    except Exception as e:   # needs torchvision
        pytest.skip(f"torchmetrics' MeanAveragePrecision is not usable here: {e}")
    preds, targets = make_inputs(11, n_img=12, fmt=kw.get("box_format", "xyxy"),
                                 masks="segm" in str(kw.get("iou_type", "")))
    ref = MeanAveragePrecision(**kw)
    for i in range(0, 12, 5):
        ref.update(preds[i:i + 5], targets[i:i + 5])
    exp = {k: v.tolist() for k, v in ref.compute().items()}
    got = _ours(preds, targets, batch=5, **kw)
    assert {k: got[k] for k in exp} == exp
    assert set(got) - set(exp) <= {f"{p}{k}" for p in ("", "bbox_", "segm_")
                                   for k in ("map_fixed", "map_fixed_50", "map_fixed_75", "map_pool", "map_pool_50",
                                             "map_pool_75")}


def test_lvis_file_equals_the_cli_for_three_protocols(tmp_path, lvis_path):
    d = load_results(simulate(lvis_path, seed=8, candidates_per_image=300))
    gt = load_gt(lvis_path)
    box = d.bbox.astype(np.float32)
    score = d.score.astype(np.float32)
    m = LVISMeanAveragePrecision(gt=lvis_path, max_dets_per_class=50, max_detection_thresholds=[120],
                                 box_format="xywh", class_metrics=True)
    order = []
    for i in range(0, gt.num_images, 7):
        imgs = gt.img_ids[i:i + 7]
        preds = []
        for img in imgs:
            s = d.img_id == img
            order.append(np.flatnonzero(s))
            preds.append({"boxes": torch.tensor(box[s]), "scores": torch.tensor(score[s]),
                          "labels": torch.tensor(d.cat_id[s])})
        m.update(preds, [{"image_id": int(img)} for img in imgs])
    out = {k: v.tolist() for k, v in m.compute().items()}
    idx = np.concatenate(order)
    cols = {"image_id": d.img_id[idx], "category_id": d.cat_id[idx], "score": score[idx].astype(np.float64),
            "bbox": box[idx].astype(np.float64)}
    fig = cli_figures(tmp_path, lvis_path, cols, "--max-dets-per-class", "50", "--max-dets-per-image", "120")
    f32 = lambda v: float(np.float32(v))  # noqa: E731
    assert out["map"] == f32(fig["old"]["AP"]) and out["mar_120"] == f32(fig["old"]["AR"])
    assert out["map_r"] == f32(fig["old"]["APr"]) and out["map_f"] == f32(fig["old"]["APf"])
    assert out["map_fixed"] == f32(fig["fixed"]["AP"]) and out["map_fixed_c"] == f32(fig["fixed"]["APc"])
    assert out["map_pool"] == f32(fig["pooled"]["AP"]) and out["map_pool_r"] == f32(fig["pooled"]["APr"])
    assert fig["old"]["AP"] != fig["fixed"]["AP"] != fig["pooled"]["AP"]
    by_id = {r["category_id"]: r for r in fig["per_class"]}
    for c, ap in zip(out["classes"], out["map_per_class"]):
        assert ap == f32(by_id[c]["AP_old"])
    # string labels (names and synonyms, any case, spaces for underscores) give the same figures
    cats = {c["id"]: c for c in gt.dataset["categories"]}
    rng = np.random.default_rng(0)

    def name(c):
        c = cats[int(c)]
        n = rng.choice([c["name"]] + list(c.get("synonyms") or []))
        return n.replace("_", " ").upper() if rng.random() < 0.5 else n
    m2 = LVISMeanAveragePrecision(gt=lvis_path, max_dets_per_class=50, max_detection_thresholds=[120],
                                  box_format="xywh", class_metrics=True)
    for img in gt.img_ids:
        s = d.img_id == img
        labels = [name(c) for c in d.cat_id[s]] + ["no such thing"]
        m2.update([{"boxes": torch.tensor(np.vstack([box[s], [[0, 0, 5, 5]]])),
                    "scores": torch.tensor(np.r_[score[s], 0.5].astype(np.float32)), "labels": labels}],
                  [{"image_id": int(img)}])
    out2 = {k: v.tolist() for k, v in m2.compute().items()}
    assert out2 == out
    assert any("'no such thing' (100)" in w for w in m2.result["bbox"].notices.warnings)


def test_bounded_state_subset_warning_and_reset(lvis_path):
    d = load_results(simulate(lvis_path, seed=9, candidates_per_image=300))
    m = LVISMeanAveragePrecision(gt=lvis_path, max_dets_per_class=2, box_format="xywh",
                                 max_detection_thresholds=[20])
    imgs = np.unique(d.img_id)[:10]
    for img in imgs:
        s = d.img_id == img
        m.update([{"boxes": torch.tensor(d.bbox[s]), "scores": torch.tensor(d.score[s]),
                   "labels": torch.tensor(d.cat_id[s])}], [{"image_id": int(img)}])
    m._prune()
    kept = sum(len(x) for x in m.det_score)
    seen = np.isin(d.img_id, imgs)
    assert kept <= 2 * len(np.unique(d.cat_id[seen])) + 20 * len(imgs) and kept < int(seen.sum())
    m.compute()
    assert any("detections were given for 10 of the ground truth's 100 images" in w
               for w in m.result["bbox"].notices.warnings)
    m.reset()
    assert not m.det_score and not m.img_key


def test_two_gloo_processes_sync_pruned_state(ddp_outputs):
    got = ddp_outputs["torchmetrics"]
    preds, targets = make_inputs(6, n_img=13)
    # rank r updated images r, r + 2, ...; torchmetrics numbers gathered images as its list states
    # come back (rank 0's first, rank 1's first, ...), which is the original order here
    exp = tm_map(preds, targets, class_metrics=True)
    _check(got, exp)
    assert got == _ours(preds, targets, **TM_KW)
    assert got["map_fixed"] != got["map"]        # K = 4 per class binds


def test_merge_state_with_an_empty_metric_and_compute_twice():
    preds, targets = make_inputs(7, n_img=12)
    a, b, empty = (LVISMeanAveragePrecision(class_metrics=True) for _ in range(3))
    a.update(preds[:5], targets[:5])
    b.update(preds[5:], targets[5:])
    a.merge_state(b)
    a.merge_state(empty)
    first = {k: v.tolist() for k, v in a.compute().items()}
    _check(first, tm_map(preds, targets, class_metrics=True))   # no score ties: image order is immaterial
    assert {k: v.tolist() for k, v in a.compute().items()} == first
    a.update(preds[:1], targets[:1])                            # updating after compute goes on counting
    assert a.compute()["map"].item() == pytest.approx(tm_map(preds + preds[:1], targets + targets[:1])["map"])
