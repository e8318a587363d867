"""The detectron2 evaluator with a stand-in for detectron2's Instances (detectron2 is not installed)."""
import subprocess
import sys
import types

import numpy as np
import pytest

import lveval
from lveval.integrations.detectron2 import LVEvalEvaluator, default_gather
from lveval.io.results import load_results
from lveval.simulate import simulate
from tests.support.gen import make_dataset


class Boxes:
    def __init__(self, xyxy):
        self.tensor = xyxy


class Instances:
    """The attributes detectron2's evaluators read: pred_boxes.tensor (XYXY), scores, pred_classes."""

    def __init__(self, boxes, scores, classes, masks=None):
        self.pred_boxes = Boxes(boxes)
        self.scores = scores
        self.pred_classes = classes
        if masks is not None:
            self.pred_masks = masks

    def to(self, device):
        assert device == "cpu"
        return self

    def has(self, name):
        return hasattr(self, name)


def feed(evaluator, d, cat_ids, images, batch=4):
    """Run the evaluator's process() over ``images`` as detectron2's inference loop would."""
    for i in range(0, len(images), batch):
        inputs, outputs = [], []
        for img in images[i:i + batch]:
            m = d.img_id == img
            b = d.bbox[m].astype(np.float32)          # detectron2's boxes: float32 XYXY
            b[:, 2:] += b[:, :2]
            inputs.append({"image_id": int(img), "file_name": f"{img}.jpg"})
            outputs.append({"instances": Instances(b, d.score[m].astype(np.float32),
                                                   np.searchsorted(cat_ids, d.cat_id[m]))})
        evaluator.process(inputs, outputs)


def test_two_processes_give_lveval_evaluate_figures(lvis_path):
    res = simulate(lvis_path, seed=11, candidates_per_image=500)
    d = load_results(res)
    d.score = d.score.astype(np.float32).astype(np.float64)     # detectors output float32 scores
    d.bbox = d.bbox.astype(np.float32).astype(np.float64)
    gt = lveval.io.load_gt(lvis_path)
    images = np.unique(d.img_id)
    shards = [images[0::2], images[1::2]]          # detectron2's InferenceSampler splits images
    states = []
    ev = LVEvalEvaluator(lvis_path, max_dets_per_class=60, max_dets_per_image=150)
    for shard in shards:
        ev.reset()
        feed(ev, d, gt.cat_ids, shard)
        states.append(ev._collector.state())
    ev.gather = lambda state: states                # what torch.distributed would deliver to rank 0
    out = ev.evaluate()
    # the same detections as detectron2's results file would hold them (XYXY float32 -> XYWH in
    # float32), in the order the evaluator saw them (rank 0's, then rank 1's)
    xyxy = d.bbox.astype(np.float32).copy()
    xyxy[:, 2:] += xyxy[:, :2]
    back = xyxy.copy()
    back[:, 2:] -= back[:, :2]
    back = back.astype(np.float64)
    order = np.concatenate([np.flatnonzero(np.isin(d.img_id, s)) for s in shards])
    cols = {"image_id": d.img_id[order], "category_id": d.cat_id[order], "score": d.score[order],
            "bbox": back[order]}
    full = lveval.evaluate(lvis_path, cols, max_dets_per_class=60, max_dets_per_image=150)
    fig = out["bbox"]
    assert fig["AP-Old"] == pytest.approx(100 * full.old["AP"], abs=1e-12)
    assert fig["AP-Fixed"] == pytest.approx(100 * full.fixed["AP"], abs=1e-12)
    assert fig["AP-Pool"] == pytest.approx(100 * full.pooled["AP"], abs=1e-12)
    assert fig["APr-Fixed"] == pytest.approx(100 * full.fixed["APr"], abs=1e-12)
    assert full.old["AP"] != full.fixed["AP"]       # the per-image cap binds: AP-Old needs the per-image pool
    assert ev.results["bbox"].fixed == full.fixed
    # non-main processes get nothing back and return {}
    ev.gather = lambda state: None
    assert ev.evaluate() == {}


@pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")   # numpy 2 note inside mask.decode
def test_segm_with_pred_masks(tmp_path):
    from pycocotools import mask as mask_utils

    gt, res = make_dataset(7, kind="lvis", n_images=4, n_cats=4, max_dets=12, segm=True)
    cat_ids = sorted(c["id"] for c in gt["categories"])
    ev = LVEvalEvaluator(gt, iou_types=("bbox", "segm", "boundary"), max_dets_per_class=5,
                         output_dir=str(tmp_path))
    by_img = {}
    for r in res:
        by_img.setdefault(r["image_id"], []).append(r)
    cols = {"image_id": [], "category_id": [], "score": [], "bbox": [], "segmentation": []}
    for img, rs in by_img.items():
        rles = [dict(r["segmentation"], counts=r["segmentation"]["counts"].encode()) for r in rs]
        masks = mask_utils.decode(rles).transpose(2, 0, 1).astype(bool)
        boxes = mask_utils.toBbox(rles)
        xyxy = boxes.copy()
        xyxy[:, 2:] += xyxy[:, :2]
        scores = np.array([r["score"] for r in rs])
        ev.process([{"image_id": img}],
                   [{"instances": Instances(xyxy, scores, np.searchsorted(cat_ids, [r["category_id"] for r in rs]),
                                            masks)}])
        for r, b in zip(rs, boxes):
            cols["image_id"].append(img)
            cols["category_id"].append(r["category_id"])
            cols["score"].append(r["score"])
            cols["bbox"].append(b)
            cols["segmentation"].append(r["segmentation"])
    out = ev.evaluate()
    cols = {k: (v if k == "segmentation" else np.asarray(v)) for k, v in cols.items()}
    for t in ("bbox", "segm", "boundary"):
        full = lveval.evaluate(gt, cols, iou_type=t, max_dets_per_class=5)
        assert out[t]["AP-Fixed"] == pytest.approx(100 * full.fixed["AP"], abs=1e-12), t
        assert out[t]["AP-Old"] == pytest.approx(100 * full.old["AP"], abs=1e-12), t
    assert (tmp_path / "lveval_results.json").exists() and (tmp_path / "lveval_figures.json").exists()


def test_imports_without_torch_or_detectron2():
    code = ("import sys\nsys.modules['torch'] = None\nsys.modules['detectron2'] = None\n"
            "import lveval.integrations as m\n"
            "from lveval.integrations.detectron2 import default_gather\n"
            "assert default_gather({'a': 1}) == [{'a': 1}]\n"
            "print(m.LVEvalEvaluator.__name__, m.FixedAPMetric.__name__, m.TopKPerClassCollector.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["LVEvalEvaluator", "FixedAPMetric", "TopKPerClassCollector"]


def test_single_process_gather_and_dataset_name(monkeypatch, lvis_path):
    assert default_gather(3) == [3]         # torch.distributed not initialised: this process only
    meta = types.SimpleNamespace(json_file=lvis_path,
                                 thing_dataset_id_to_contiguous_id={3: 0, 12: 1, 5: 2})
    catalog = types.SimpleNamespace(get=lambda name: meta)
    data = types.ModuleType("detectron2.data")
    data.MetadataCatalog = catalog
    monkeypatch.setitem(sys.modules, "detectron2", types.ModuleType("detectron2"))
    monkeypatch.setitem(sys.modules, "detectron2.data", data)
    ev = LVEvalEvaluator.from_dataset_name("lvis_v0.5_val_100")
    assert ev.category_ids == {0: 3, 1: 12, 2: 5}
    ev.process([{"image_id": int(ev.gt.img_ids[0])}],
               [{"instances": Instances(np.array([[1.0, 2.0, 11.0, 22.0]]), np.array([0.4]), np.array([1]))}])
    cols = ev._collector.to_columns()
    assert cols["category_id"].tolist() == [12] and cols["bbox"].tolist() == [[1.0, 2.0, 10.0, 20.0]]


def test_classic_keys_hold_ap_old_and_subset_is_warned(lvis_path, coco_paths):
    """detectron2's LVISEvaluator / COCOEvaluator keys (AP, AP50, ..., APr/APc/APf) next to the protocol keys,
    with AP-Old's values; a run over part of the images says so."""
    d = load_results(simulate(lvis_path, seed=4, candidates_per_image=100))
    gt = lveval.io.load_gt(lvis_path)
    ev = LVEvalEvaluator(lvis_path, max_dets_per_class=30)
    images = np.unique(d.img_id)[:20]
    feed(ev, d, gt.cat_ids, images)
    out = ev.evaluate()["bbox"]
    r = ev.results["bbox"]
    assert [k for k in out][:9] == ["AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf"]
    for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "APc", "APf"):
        v = r.old[k]
        assert out[k] == (100 * v if v >= 0 else pytest.approx(float("nan"), nan_ok=True)), k
    assert out["AP"] == out["AP-Old"]
    assert any("detections were given for 20 of the ground truth's 100 images" in w for w in r.notices.warnings)
    c = load_results(coco_paths["bbox"])
    cgt = lveval.io.load_gt(coco_paths["gt"])
    ev = LVEvalEvaluator(coco_paths["gt"])
    feed(ev, c, cgt.cat_ids, np.unique(c.img_id))
    out = ev.evaluate()["bbox"]
    assert "APr" not in out and out["AP"] == pytest.approx(100 * ev.results["bbox"].old["AP"])
