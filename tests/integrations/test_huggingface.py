"""Hugging Face post-processed outputs (built in the test; no weights) through the collectors: string labels
(names, synonyms) give the figures integer labels give, unknown names are counted, partial coverage warned."""
import numpy as np
import pytest

from lveval.integrations import FixedAPMetric
from lveval.integrations.huggingface import from_hf, resolve
from lveval.integrations.labels import CategoryResolver, normalize_name
from lveval.io.gt import load_gt
from lveval.io.results import load_results
from lveval.simulate import simulate


def _outputs(lvis_path, seed=4):
    """Per-image post-processed dicts (XYXY pixel boxes, scores, integer labels = index in the ground
    truth's category order) of the simulated detector."""
    d = load_results(simulate(lvis_path, seed=seed, candidates_per_image=150))
    gt = load_gt(lvis_path)
    xyxy = d.bbox.astype(np.float32).copy()
    xyxy[:, 2:] += xyxy[:, :2]
    outs = []
    for img in gt.img_ids:
        m = d.img_id == img
        outs.append({"scores": d.score[m].astype(np.float32), "boxes": xyxy[m],
                     "labels": np.searchsorted(gt.cat_ids, d.cat_id[m])})
    return gt, outs


def _figures(gt_path, preds, **kw):
    m = FixedAPMetric(gt_path, max_dets_per_class=40, **kw)
    for i in range(0, len(preds), 10):
        m.update(preds[i:i + 10])
    return m.compute(), m


def test_names_and_synonyms_equal_integer_labels(lvis_path):
    gt, outs = _outputs(lvis_path)
    ids = list(range(len(outs)))
    img = gt.img_ids.tolist()
    ref, _ = _figures(lvis_path, from_hf(outs, img), label_to_category=gt.cat_ids.tolist())
    cats = {c["id"]: c for c in gt.dataset["categories"]}
    rng = np.random.default_rng(1)
    text = []
    for o in outs:
        names = []
        for lab in o["labels"]:
            c = cats[int(gt.cat_ids[lab])]
            n = str(rng.choice([c["name"]] + list(c.get("synonyms") or [])))
            names.append(n.replace("_", " ").title() if rng.random() < 0.5 else n)
        # Grounding DINO's outputs: "labels" and "text_labels" both hold the phrases
        text.append({"scores": o["scores"], "boxes": o["boxes"], "labels": names + ["a cloud"],
                     "text_labels": names + ["a cloud"]})
        text[-1]["scores"] = np.r_[o["scores"], 0.9].astype(np.float32)
        text[-1]["boxes"] = np.vstack([o["boxes"], [[0, 0, 9, 9]]]).astype(np.float32)
    got, m = _figures(lvis_path, from_hf(text, img))
    assert got == ref
    assert any("'a cloud' (100)" in w for w in m.result.notices.warnings)
    # DETR-style integer labels named through id2label
    id2label = {i: cats[int(c)]["name"] for i, c in enumerate(gt.cat_ids)}
    got2, _ = _figures(lvis_path, from_hf(outs, img, id2label=id2label))
    assert got2 == ref
    preds, res = resolve(text, img, gt)
    assert res.unknown == {"a cloud": 100} and all(p["labels"].dtype == np.int64 for p in preds)
    assert ids


def test_partial_coverage_is_warned_once(lvis_path):
    gt, outs = _outputs(lvis_path)
    outs[3] = {"scores": np.zeros(0, np.float32), "boxes": np.zeros((0, 4), np.float32), "labels": np.zeros(0, int)}
    _, m = _figures(lvis_path, from_hf(outs[:8], gt.img_ids[:8].tolist()), label_to_category=gt.cat_ids.tolist())
    w = [x for x in m.result.notices.warnings if "of the ground truth's" in x]
    assert w == ["detections were given for 8 of the ground truth's 100 images; the 92 others count as images "
                 "without detections (pass every image, or restrict the ground truth to the images evaluated); "
                 "93 images have no detections (1 of those given)"]


def test_resolver_rules():
    r = CategoryResolver([{"id": 3, "name": "aerosol_can", "synonyms": ["aerosol_can", "spray_can"]},
                          {"id": 1, "name": "can", "synonyms": ["spray_can", "tin_can"]}])
    assert normalize_name("  Spray__ Can ") == "spray can"
    assert r.lookup("Aerosol Can") == 3 and r.lookup("spray can") == 1     # shared synonym: smallest id
    assert r.lookup("TIN can") == 1 and r.lookup("canister") is None
    assert r(["can", "x", "x"]).tolist() == [1, -1, -1] and r.unknown == {"x": 2}
    assert "2 detections with 1 label names" in r.report()


def test_real_transformers_post_processing(lvis_path):
    """DETR's and OWL-ViT's image processors on model outputs built from tensors (no weights)."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from transformers.models.detr.modeling_detr import DetrObjectDetectionOutput
    from transformers.models.owlvit.modeling_owlvit import OwlViTObjectDetectionOutput

    gt = load_gt(lvis_path)
    cats = {c["id"]: c for c in gt.dataset["categories"]}
    rng = np.random.default_rng(2)
    imgs = gt.img_ids[:12]
    sizes = [(int(gt.img_h[i]), int(gt.img_w[i])) for i in range(12)]
    # queries near each image's ground-truth boxes (normalised cxcywh), logits favouring their class
    Q, C = 30, gt.num_categories
    logits = torch.tensor(rng.normal(0, 1, (12, Q, C + 1)), dtype=torch.float32)
    boxes = torch.tensor(rng.uniform(0.2, 0.6, (12, Q, 4)), dtype=torch.float32)
    for b in range(12):
        a = np.flatnonzero(gt.ann_img == b)[:Q]
        h, w = sizes[b]
        xywh = gt.ann_box[a]
        cxcywh = np.c_[(xywh[:, 0] + xywh[:, 2] / 2) / w, (xywh[:, 1] + xywh[:, 3] / 2) / h, xywh[:, 2] / w,
                       xywh[:, 3] / h]
        boxes[b, :len(a)] = torch.tensor(cxcywh + rng.normal(0, 0.01, cxcywh.shape), dtype=torch.float32)
        logits[b, np.arange(len(a)), gt.ann_cat[a]] += 6.0
    detr = transformers.DetrImageProcessor().post_process_object_detection(
        DetrObjectDetectionOutput(logits=logits, pred_boxes=boxes), threshold=0.0, target_sizes=sizes)
    id2label = {i: cats[int(c)]["name"] for i, c in enumerate(gt.cat_ids)}
    ints, _ = _figures(lvis_path, from_hf(detr, imgs.tolist()), label_to_category=gt.cat_ids.tolist())
    names, _ = _figures(lvis_path, from_hf(detr, imgs.tolist(), id2label=id2label))
    assert ints == names and ints["AP-Fixed"] > 0
    # OWL-ViT: labels index the text queries; the processor's text_labels are those queries' words
    queries = [cats[int(c)]["name"].replace("_", " ") for c in gt.cat_ids]
    owl = transformers.OwlViTImageProcessor().post_process_object_detection(
        OwlViTObjectDetectionOutput(logits=logits[:, :, :C], pred_boxes=boxes), threshold=0.0, target_sizes=sizes)
    for o in owl:
        o["text_labels"] = [queries[int(i)] for i in o["labels"]]
    by_text, _ = _figures(lvis_path, from_hf(owl, imgs.tolist()))
    by_int, _ = _figures(lvis_path, from_hf(owl, imgs.tolist()), label_to_category=gt.cat_ids.tolist())
    assert by_text == by_int and by_text["AP-Fixed"] > 0
