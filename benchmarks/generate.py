"""Generate LVIS-v1-scale ground truth and raw detector outputs for benchmarking.

Why synthetic: real LVIS v1 val (19,809 images) plus a detector's 1,000
candidates per image (~20M detections) cannot be shipped, yet the benchmark
must exercise evaluators at that scale with the structure that makes AP-Old
and AP-Fixed differ (paper, Sections 3-4).  Every statistic is drawn from the
real per-class LVIS v1 train statistics bundled with lveval (``lveval/data/lvis_v1_train_cat_info.json``):

* a class is present in an image with probability ``image_count / 100,170``
  (LVIS v1 train has 100,170 images), with a geometric number of instances
  whose mean is ``instance_count / image_count``;
* each image gets a federated negative set (``neg_category_ids``, ~9 classes,
  as in LVIS val) and a few ``not_exhaustive_category_ids`` among its
  positives;
* the detector finds most objects with jittered boxes (true-positive-ish),
  adds duplicates and class confusions, and fills the rest of its
  ``--candidates-per-image`` budget with false positives spread over classes.
  Its scores are under-confident on rare classes (paper, Figure 3), so under
  a 300-detections-per-image cap rare true positives are crowded out by
  frequent-class false positives: AP-Old < AP-Fixed, as in Table 2.

Generation is chunked by images with one RNG stream per chunk, so the
detections can be regenerated deterministically: ``--per-class-topk`` makes a
first pass to rank scores per class and a second pass to write, keeping
memory bounded (scores and classes only) while JSON is written chunk by chunk.

Outputs in ``--out-dir``: ``gt.json`` (LVIS format), ``dets_c{C}.json`` or
``dets_c{C}_top{K}.json`` (JSON array of {image_id, category_id, bbox, score}
and, with ``--segm``, a compressed-RLE ``segmentation``), the same rows as
``.parquet`` with ``--parquet``, and ``manifest.json`` (parameters, counts,
timings).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

CAT_INFO = Path(__import__("lveval").data_path("lvis_v1_train_cat_info.json"))   # see lveval/data/ATTRIBUTION.md
LVIS_V1_TRAIN_IMAGES = 100_170
LVIS_V1_VAL_IMAGES = 19_809
FREQUENCIES = ("r", "c", "f")
POLY_VERTICES = 12

# (width, height, weight): the most common COCO image sizes (LVIS reuses COCO images).
IMAGE_SIZES = np.array(
    [(640, 480, 35), (640, 427, 15), (640, 426, 10), (480, 640, 10), (427, 640, 7),
     (640, 428, 6), (500, 375, 5), (640, 360, 5), (375, 500, 4), (612, 612, 3)],
    dtype=np.float64,
)


@dataclass(frozen=True)
class GroundTruthModel:
    """Knobs of the ground-truth sampler (defaults mimic LVIS v1 val)."""

    max_instances_per_pair: int = 300  # cap of the geometric instance count
    neg_per_image: float = 9.4  # mean |neg_category_ids| (LVIS val)
    neg_weight_power: float = 0.5  # negatives drawn prop. to image_count ** power
    not_exhaustive_prob: float = 0.05  # P(positive class is flagged not exhaustive)
    log_side_mean: float = 3.24  # ln sqrt(box area); polygon areas: 66% small, 25% medium, 10% large
    log_side_std: float = 1.1
    class_side_std: float = 0.5  # per-class shift of ln sqrt(area)
    log_aspect_std: float = 0.5


@dataclass(frozen=True)
class DetectorModel:
    """Knobs of the simulated detector.  Scores are sigmoid(logit) in float32.

    ``freq_bias`` is the logit offset per frequency group (r, c, f): negative
    values make rare classes under-confident, the cross-category miscalibration
    the paper's Figure 3 shows for a softmax-CE Mask R-CNN.
    """

    hit_prob: tuple[float, float, float] = (0.60, 0.75, 0.90)  # P(object is found), r/c/f
    freq_bias: tuple[float, float, float] = (-3.5, -2.2, 0.0)
    class_bias_std: float = 0.5  # per-class logit offset (miscalibration)
    tp_logit: float = 0.5  # mean logit of a found object's best box
    tp_logit_std: float = 1.2
    loc_sigma: float = 0.07  # relative jitter of a found object's best box
    loc_sigma_spread: float = 0.6  # log-normal spread of that jitter
    loc_score_penalty: float = 6.0  # logit lost per unit of relative jitter
    size_score_slope: float = 0.8  # logit gained per unit of ln(sqrt(area)) above the median object
    dup_mean: float = 1.5  # extra, worse boxes per found object
    dup_sigma: float = 0.25
    dup_logit: float = -2.0
    confusion_mean: float = 1.0  # wrong-class boxes per object
    confusion_neg_prob: float = 0.3  # ... drawn from the image's negative set
    confusion_logit: float = -2.5
    bg_logit: float = -3.0  # background false positives
    bg_logit_std: float = 1.5
    bg_log_side_mean: float = 3.6  # background boxes: ln sqrt(area) ~ N(mean, 1)
    bg_pos_prob: float = 0.03  # background box labelled with a class present in the image
    bg_neg_prob: float = 0.03  # ... with a class of the image's negative set
    bg_class_power: float = 0.3  # other classes drawn prop. to image_count ** power
    score_dtype: str = "float32"


@dataclass
class Categories:
    """Per-class arrays (index = position in the cat-info file)."""

    records: list[dict]
    ids: np.ndarray
    freq: np.ndarray  # 0 r, 1 c, 2 f
    image_count: np.ndarray
    instance_count: np.ndarray


@dataclass
class GroundTruth:
    """Ground truth as flat arrays; annotations sorted by image index."""

    image_ids: np.ndarray
    width: np.ndarray
    height: np.ndarray
    ann_img: np.ndarray  # image index of each annotation
    ann_cat: np.ndarray  # class index
    ann_box: np.ndarray  # (A, 4) x, y, w, h
    ann_poly: np.ndarray  # (A, POLY_VERTICES, 2)
    ann_area: np.ndarray
    pos_ptr: np.ndarray  # CSR: image -> distinct positive class indices
    pos_cat: np.ndarray
    neg_ptr: np.ndarray  # CSR: image -> negative class indices
    neg_cat: np.ndarray
    nel_ptr: np.ndarray  # CSR: image -> not-exhaustive class indices
    nel_cat: np.ndarray


def load_categories(path: Path = CAT_INFO) -> Categories:
    """Read the LVIS v1 train class statistics."""
    records = json.loads(Path(path).read_text())
    records.sort(key=lambda c: c["id"])
    return Categories(
        records=records,
        ids=np.array([c["id"] for c in records], dtype=np.int64),
        freq=np.array([FREQUENCIES.index(c["frequency"]) for c in records], dtype=np.int8),
        image_count=np.array([c["image_count"] for c in records], dtype=np.float64),
        instance_count=np.array([c["instance_count"] for c in records], dtype=np.float64),
    )


def _csr(owner: np.ndarray, values: np.ndarray, n_owners: int) -> tuple[np.ndarray, np.ndarray]:
    """Group ``values`` by ``owner`` (already sorted by owner) into CSR arrays."""
    ptr = np.zeros(n_owners + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n_owners), out=ptr[1:])
    return ptr, values


def _pick_from_csr(rng, ptr, values, owner) -> tuple[np.ndarray, np.ndarray]:
    """For each element of ``owner``, pick a random entry of its CSR row.

    Returns (picked values, mask of owners whose row was non-empty).
    """
    lengths = ptr[owner + 1] - ptr[owner]
    ok = lengths > 0
    pick = ptr[owner] + np.floor(rng.random(owner.size) * lengths).astype(np.int64)
    out = np.zeros(owner.size, dtype=np.int64)
    out[ok] = values[pick[ok]]
    return out, ok


def _polygons(rng, n: int) -> np.ndarray:
    """Star-shaped polygons normalised to span exactly the unit square."""
    angles = (np.arange(POLY_VERTICES) + rng.uniform(-0.3, 0.3, (n, POLY_VERTICES))) * (
        2 * np.pi / POLY_VERTICES
    )
    radius = rng.uniform(0.6, 1.0, (n, POLY_VERTICES))
    pts = np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=-1)
    lo, hi = pts.min(axis=1, keepdims=True), pts.max(axis=1, keepdims=True)
    return (pts - lo) / (hi - lo)


def _shoelace(poly: np.ndarray) -> np.ndarray:
    x, y = poly[..., 0], poly[..., 1]
    return 0.5 * np.abs(np.sum(x * np.roll(y, -1, axis=-1) - np.roll(x, -1, axis=-1) * y, axis=-1))


def generate_ground_truth(cats: Categories, n_images: int, seed: int,
                          model: GroundTruthModel = GroundTruthModel()) -> GroundTruth:
    """Draw images, per-class presence, instances, boxes and federated labels."""
    rng = np.random.default_rng([seed, 0])
    n_cat = cats.ids.size
    id_space = max(600_000, 3 * n_images)
    image_ids = np.sort(rng.choice(np.arange(1, id_space + 1), n_images, replace=False))
    size = IMAGE_SIZES[rng.choice(len(IMAGE_SIZES), n_images, p=IMAGE_SIZES[:, 2] / IMAGE_SIZES[:, 2].sum())]
    width, height = size[:, 0], size[:, 1]

    # Presence: class c in image i with prob image_count/100170 (one draw per class).
    p_present = np.minimum(cats.image_count / LVIS_V1_TRAIN_IMAGES, 1.0)
    pair_img, pair_cat = [], []
    for c in range(n_cat):
        k = rng.binomial(n_images, p_present[c])
        if k:
            pair_img.append(rng.choice(n_images, k, replace=False))
            pair_cat.append(np.full(k, c, dtype=np.int64))
    pair_img = np.concatenate(pair_img) if pair_img else np.zeros(0, np.int64)
    pair_cat = np.concatenate(pair_cat) if pair_cat else np.zeros(0, np.int64)
    order = np.lexsort((pair_cat, pair_img))
    pair_img, pair_cat = pair_img[order], pair_cat[order]

    mean_inst = np.maximum(cats.instance_count / np.maximum(cats.image_count, 1), 1.0)
    n_inst = np.minimum(rng.geometric(1.0 / mean_inst[pair_cat]), model.max_instances_per_pair)
    ann_img = np.repeat(pair_img, n_inst)
    ann_cat = np.repeat(pair_cat, n_inst)
    n_ann = ann_img.size

    # Boxes: log-normal side length (class-dependent), log-normal aspect ratio.
    class_shift = rng.normal(0.0, model.class_side_std, n_cat)
    side = np.exp(rng.normal(model.log_side_mean, model.log_side_std, n_ann) + class_shift[ann_cat])
    aspect = np.exp(rng.normal(0.0, model.log_aspect_std, n_ann))
    W, H = width[ann_img], height[ann_img]
    w = np.clip(side * np.sqrt(aspect), 2.0, W)
    h = np.clip(side / np.sqrt(aspect), 2.0, H)
    x = rng.random(n_ann) * (W - w)
    y = rng.random(n_ann) * (H - h)
    poly = _polygons(rng, n_ann) * np.stack([w, h], -1)[:, None, :] + np.stack([x, y], -1)[:, None, :]
    poly = np.round(poly, 2)
    x0, y0 = poly[..., 0].min(1), poly[..., 1].min(1)
    box = np.stack([x0, y0, poly[..., 0].max(1) - x0, poly[..., 1].max(1) - y0], -1)
    area = np.round(_shoelace(poly), 2)

    pos_ptr, pos_cat = _csr(pair_img, pair_cat, n_images)

    # Negatives: ~Poisson(9.4) classes per image, prop. to image_count**power, not positive.
    neg_w = (cats.image_count + 1.0) ** model.neg_weight_power
    neg_w /= neg_w.sum()
    n_neg = rng.poisson(model.neg_per_image, n_images)
    draw = rng.choice(n_cat, size=(n_images, int(n_neg.max(initial=0)) + 8), p=neg_w)
    neg_img, neg_cat = [], []
    for i in range(n_images):
        positives = pos_cat[pos_ptr[i]:pos_ptr[i + 1]]
        cand = draw[i][~np.isin(draw[i], positives)]
        _, first = np.unique(cand, return_index=True)
        chosen = cand[np.sort(first)][: n_neg[i]]
        neg_img.append(np.full(chosen.size, i, dtype=np.int64))
        neg_cat.append(chosen)
    neg_ptr, neg_cat = _csr(np.concatenate(neg_img), np.concatenate(neg_cat).astype(np.int64), n_images)

    flagged = rng.random(pair_img.size) < model.not_exhaustive_prob
    nel_ptr, nel_cat = _csr(pair_img[flagged], pair_cat[flagged], n_images)

    return GroundTruth(image_ids, width, height, ann_img, ann_cat, box, poly, area,
                       pos_ptr, pos_cat, neg_ptr, neg_cat, nel_ptr, nel_cat)


def ground_truth_json(gt: GroundTruth, cats: Categories, with_segm: bool) -> dict:
    """LVIS-format dict.  Annotation ids start at 1; polygons only with ``with_segm``."""
    cat_ids = cats.ids
    images = []
    for i, img_id in enumerate(gt.image_ids.tolist()):
        images.append({
            "id": img_id,
            "width": int(gt.width[i]),
            "height": int(gt.height[i]),
            "file_name": f"{img_id:012d}.jpg",
            "neg_category_ids": cat_ids[gt.neg_cat[gt.neg_ptr[i]:gt.neg_ptr[i + 1]]].tolist(),
            "not_exhaustive_category_ids": cat_ids[gt.nel_cat[gt.nel_ptr[i]:gt.nel_ptr[i + 1]]].tolist(),
        })
    img_ids = gt.image_ids[gt.ann_img].tolist()
    ann_cats = cat_ids[gt.ann_cat].tolist()
    boxes = np.round(gt.ann_box, 2).tolist()
    areas = gt.ann_area.tolist()
    annotations = []
    polys = gt.ann_poly.reshape(len(areas), -1).tolist() if with_segm else None
    for k in range(len(areas)):
        ann = {"id": k + 1, "image_id": img_ids[k], "category_id": ann_cats[k],
               "bbox": boxes[k], "area": areas[k]}
        if with_segm:
            ann["segmentation"] = [polys[k]]
        annotations.append(ann)
    categories = [{key: c[key] for key in ("id", "name", "synonyms", "synset", "def", "frequency",
                                           "image_count", "instance_count")} for c in cats.records]
    return {
        "info": {"description": "synthetic LVIS-v1-scale ground truth (lveval benchmarks/generate.py)"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


@dataclass
class Detections:
    """One chunk of detections, in file order: by image, then by descending score."""

    img: np.ndarray  # image index
    cat: np.ndarray  # class index
    box: np.ndarray  # (n, 4) x, y, w, h
    score: np.ndarray


def _jitter(rng, box, sigma, W, H):
    """Move and rescale boxes by relative Gaussian noise; keep them in the image."""
    n = box.shape[0]
    cx = box[:, 0] + box[:, 2] / 2 + rng.normal(0, 1, n) * sigma * box[:, 2]
    cy = box[:, 1] + box[:, 3] / 2 + rng.normal(0, 1, n) * sigma * box[:, 3]
    w = box[:, 2] * np.exp(rng.normal(0, 1, n) * sigma)
    h = box[:, 3] * np.exp(rng.normal(0, 1, n) * sigma)
    return _clip_boxes(cx - w / 2, cy - h / 2, w, h, W, H)


def _clip_boxes(x, y, w, h, W, H):
    x0, y0 = np.clip(x, 0, W - 1), np.clip(y, 0, H - 1)
    x1, y1 = np.clip(x + w, x0 + 1, W), np.clip(y + h, y0 + 1, H)
    return np.stack([x0, y0, x1 - x0, y1 - y0], -1)


def class_logit_offsets(cats: Categories, model: DetectorModel, seed: int) -> np.ndarray:
    """Per-class score logit offset: frequency-group bias plus random miscalibration.
    Drawn once per seed so that every chunk sees the same detector."""
    rng = np.random.default_rng([seed, 2])
    return np.asarray(model.freq_bias)[cats.freq] + rng.normal(0, model.class_bias_std, cats.ids.size)


def generate_detections(gt: GroundTruth, cats: Categories, model: DetectorModel, logit_offset: np.ndarray,
                        start: int, stop: int, candidates: int, rng: np.random.Generator) -> Detections:
    """Simulate a detector's top-``candidates`` outputs for images [start, stop)."""
    n_cat = cats.ids.size
    bg_w = (cats.image_count + 1.0) ** model.bg_class_power
    bg_w /= bg_w.sum()

    a0, a1 = np.searchsorted(gt.ann_img, [start, stop])
    a_img, a_cat, a_box = gt.ann_img[a0:a1], gt.ann_cat[a0:a1], gt.ann_box[a0:a1]
    W_img, H_img = gt.width, gt.height
    parts_img, parts_cat, parts_box, parts_logit = [], [], [], []

    def add(img, cat, box, logit):
        parts_img.append(img)
        parts_cat.append(cat)
        parts_box.append(box)
        parts_logit.append(logit)

    # 1. Found objects: one good box each, plus worse duplicates.
    hit = rng.random(a_img.size) < np.asarray(model.hit_prob)[cats.freq[a_cat]]
    h_img, h_cat, h_box = a_img[hit], a_cat[hit], a_box[hit]
    sigma = model.loc_sigma * np.exp(rng.normal(0, model.loc_sigma_spread, h_img.size))
    add(h_img, h_cat, _jitter(rng, h_box, sigma, W_img[h_img], H_img[h_img]),
        model.tp_logit + logit_offset[h_cat] + rng.normal(0, model.tp_logit_std, h_img.size)
        - model.loc_score_penalty * sigma
        # relative to the median object size of GroundTruthModel's defaults
        + model.size_score_slope * (0.5 * np.log(h_box[:, 2] * h_box[:, 3]) - GroundTruthModel.log_side_mean))
    n_dup = rng.poisson(model.dup_mean, h_img.size)
    d_src = np.repeat(np.arange(h_img.size), n_dup)
    d_img, d_cat = h_img[d_src], h_cat[d_src]
    add(d_img, d_cat, _jitter(rng, h_box[d_src], model.dup_sigma, W_img[d_img], H_img[d_img]),
        model.dup_logit + logit_offset[d_cat] + rng.normal(0, model.tp_logit_std, d_src.size))

    # 2. Confusions: a box on a real object with the wrong class.
    n_conf = rng.poisson(model.confusion_mean, a_img.size)
    c_src = np.repeat(np.arange(a_img.size), n_conf)
    c_img = a_img[c_src]
    c_cat = rng.choice(n_cat, c_src.size, p=bg_w)
    from_neg, ok = _pick_from_csr(rng, gt.neg_ptr, gt.neg_cat, c_img)
    use_neg = ok & (rng.random(c_src.size) < model.confusion_neg_prob)
    c_cat[use_neg] = from_neg[use_neg]
    c_cat = np.where(c_cat == a_cat[c_src], (c_cat + 1) % n_cat, c_cat)
    add(c_img, c_cat, _jitter(rng, a_box[c_src], model.dup_sigma, W_img[c_img], H_img[c_img]),
        model.confusion_logit + logit_offset[c_cat] + rng.normal(0, model.tp_logit_std, c_src.size))

    # 3. Background false positives fill each image's budget.
    n_struct = np.bincount(np.concatenate(parts_img) - start, minlength=stop - start)
    n_bg = np.maximum(candidates - n_struct, 0)
    b_img = np.repeat(np.arange(start, stop), n_bg)
    b_cat = rng.choice(n_cat, b_img.size, p=bg_w)
    u = rng.random(b_img.size)
    for lo, hi, ptr, vals in ((0.0, model.bg_pos_prob, gt.pos_ptr, gt.pos_cat),
                              (model.bg_pos_prob, model.bg_pos_prob + model.bg_neg_prob, gt.neg_ptr, gt.neg_cat)):
        sel = np.flatnonzero((u >= lo) & (u < hi))
        picked, ok = _pick_from_csr(rng, ptr, vals, b_img[sel])
        b_cat[sel[ok]] = picked[ok]
    Wb, Hb = W_img[b_img], H_img[b_img]
    side = np.exp(rng.normal(model.bg_log_side_mean, 1.0, b_img.size))
    aspect = np.exp(rng.normal(0, 0.5, b_img.size))
    bw, bh = np.minimum(side * np.sqrt(aspect), Wb), np.minimum(side / np.sqrt(aspect), Hb)
    add(b_img, b_cat, _clip_boxes(rng.random(b_img.size) * (Wb - bw), rng.random(b_img.size) * (Hb - bh), bw, bh, Wb, Hb),
        model.bg_logit + logit_offset[b_cat] + rng.normal(0, model.bg_logit_std, b_img.size))

    img = np.concatenate(parts_img)
    cat = np.concatenate(parts_cat)
    box = np.round(np.concatenate(parts_box), 2)
    score = (1.0 / (1.0 + np.exp(-np.concatenate(parts_logit)))).astype(model.score_dtype).astype(np.float64)

    # Per image: sort by descending score (stable), keep the top ``candidates``.
    order = np.lexsort((-score, img))
    img, cat, box, score = img[order], cat[order], box[order], score[order]
    first = np.searchsorted(img, np.arange(start, stop))
    rank = np.arange(img.size) - first[img - start]
    keep = rank < candidates
    return Detections(img[keep], cat[keep], box[keep], score[keep])


def per_class_topk(cat: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """AP-Fixed selection: per class, stable sort by descending score (ties keep
    file order) and keep the first ``k``.  Returns a boolean mask in file order."""
    order = np.lexsort((-score, cat))  # lexsort is stable: ties stay in file order
    sorted_cat = cat[order]
    starts = np.searchsorted(sorted_cat, sorted_cat, side="left")
    keep = np.zeros(cat.size, dtype=bool)
    keep[order[(np.arange(cat.size) - starts) < k]] = True
    return keep


def _segm_rles(dets: Detections, gt: GroundTruth, rng: np.random.Generator) -> list[dict]:
    """Compressed RLE of a star polygon inscribed in each detection box."""
    from pycocotools import mask as mask_utils

    poly = _polygons(rng, dets.img.size) * dets.box[:, None, 2:] + dets.box[:, None, :2]
    poly = poly.reshape(dets.img.size, -1)
    out: list[dict] = []
    bounds = np.flatnonzero(np.diff(dets.img, prepend=-1, append=-1))
    for a, b in zip(bounds[:-1], bounds[1:]):
        i = dets.img[a]
        # A list of polygons gives one RLE per polygon, i.e. per detection.
        for r in mask_utils.frPyObjects(poly[a:b].tolist(), int(gt.height[i]), int(gt.width[i])):
            out.append({"size": r["size"], "counts": r["counts"].decode("ascii")})
    return out


def _chunk_rows(dets: Detections, gt: GroundTruth, cats: Categories, segm: list[dict] | None) -> list[dict]:
    rows = []
    it = zip(gt.image_ids[dets.img].tolist(), cats.ids[dets.cat].tolist(), dets.box.tolist(), dets.score.tolist())
    if segm is None:
        for i, c, b, s in it:
            rows.append({"image_id": i, "category_id": c, "bbox": b, "score": s})
    else:
        for (i, c, b, s), m in zip(it, segm):
            rows.append({"image_id": i, "category_id": c, "bbox": b, "score": s, "segmentation": m})
    return rows


class JsonArrayWriter:
    """Writes a JSON array element chunk by element chunk (bounded memory)."""

    def __init__(self, path: Path):
        self.f = open(path, "wb")
        self.f.write(b"[")
        self.first = True

    def write(self, rows: list[dict]) -> None:
        if not rows:
            return
        body = orjson.dumps(rows)[1:-1]
        if not self.first:
            self.f.write(b",")
        self.f.write(body)
        self.first = False

    def close(self) -> None:
        self.f.write(b"]")
        self.f.close()


class ParquetDetWriter:
    """Parquet layout: image_id int64, category_id int64, score float64,
    bbox fixed_size_list<float64>[4] (x, y, w, h), and in segm mode
    segmentation struct<size: list<int64>, counts: string> (compressed RLE)."""

    def __init__(self, path: Path, segm: bool):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        fields = [("image_id", pa.int64()), ("category_id", pa.int64()), ("score", pa.float64()),
                  ("bbox", pa.list_(pa.float64(), 4))]
        if segm:
            fields.append(("segmentation", pa.struct([("size", pa.list_(pa.int64())), ("counts", pa.string())])))
        self.schema = pa.schema(fields)
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")

    def write(self, dets: Detections, gt: GroundTruth, cats: Categories, segm: list[dict] | None) -> None:
        pa = self.pa
        cols = [pa.array(gt.image_ids[dets.img], pa.int64()), pa.array(cats.ids[dets.cat], pa.int64()),
                pa.array(dets.score, pa.float64()),
                pa.FixedSizeListArray.from_arrays(pa.array(dets.box.reshape(-1), pa.float64()), 4)]
        if segm is not None:
            cols.append(pa.array(segm, self.schema.field("segmentation").type))
        self.writer.write_table(pa.Table.from_arrays(cols, schema=self.schema))

    def close(self) -> None:
        self.writer.close()


def _select(dets: Detections, mask: np.ndarray) -> Detections:
    return Detections(dets.img[mask], dets.cat[mask], dets.box[mask], dets.score[mask])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-images", type=int, default=LVIS_V1_VAL_IMAGES)
    ap.add_argument("--candidates-per-image", type=int, default=1000)
    ap.add_argument("--per-class-topk", type=int, default=None, metavar="K",
                    help="write only the top K detections per class over the whole set (AP-Fixed selection)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", type=Path, default=Path("bench-out/data"))
    ap.add_argument("--segm", action="store_true", help="GT polygons and RLE segmentation in the results")
    ap.add_argument("--parquet", action="store_true", help="also write the results as Parquet")
    ap.add_argument("--no-json", action="store_true", help="skip the JSON results (with --parquet)")
    ap.add_argument("--chunk-images", type=int, default=500)
    ap.add_argument("--score-dtype", choices=("float32", "float64"), default="float32",
                    help="float32 like real detectors (creates score ties) or float64")
    ap.add_argument("--cat-info", type=Path, default=CAT_INFO)
    args = ap.parse_args(argv)

    t_start = time.perf_counter()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    cats = load_categories(args.cat_info)
    det_model = DetectorModel(score_dtype=args.score_dtype)
    gt_model = GroundTruthModel()
    gt = generate_ground_truth(cats, args.n_images, args.seed, gt_model)
    gt_path = args.out_dir / "gt.json"
    gt_path.write_bytes(orjson.dumps(ground_truth_json(gt, cats, args.segm)))
    t_gt = time.perf_counter()

    offsets = class_logit_offsets(cats, det_model, args.seed)
    chunks = [(s, min(s + args.chunk_images, args.n_images)) for s in range(0, args.n_images, args.chunk_images)]

    def chunk(ci: int) -> Detections:
        s, e = chunks[ci]
        return generate_detections(gt, cats, det_model, offsets, s, e, args.candidates_per_image,
                                   np.random.default_rng([args.seed, 1, ci]))

    keep = None
    n_candidates = None
    if args.per_class_topk is not None:  # pass 1: rank all scores per class
        cat_parts, score_parts = [], []
        for ci in range(len(chunks)):
            d = chunk(ci)
            cat_parts.append(d.cat.astype(np.int16))
            score_parts.append(d.score.astype(args.score_dtype))
        cat_all, score_all = np.concatenate(cat_parts), np.concatenate(score_parts)
        del cat_parts, score_parts
        n_candidates = int(cat_all.size)
        keep = per_class_topk(cat_all, score_all, args.per_class_topk)
        del cat_all, score_all
    t_rank = time.perf_counter()

    stem = f"dets_c{args.candidates_per_image}" + (f"_top{args.per_class_topk}" if args.per_class_topk else "")
    json_path = None if args.no_json else args.out_dir / f"{stem}.json"
    pq_path = args.out_dir / f"{stem}.parquet" if args.parquet else None
    jw = JsonArrayWriter(json_path) if json_path else None
    pw = ParquetDetWriter(pq_path, args.segm) if pq_path else None
    n_written, offset = 0, 0
    for ci in range(len(chunks)):
        d = chunk(ci)
        n = d.img.size
        if keep is not None:
            d = _select(d, keep[offset:offset + n])
        offset += n
        segm = _segm_rles(d, gt, np.random.default_rng([args.seed, 3, ci])) if args.segm else None
        if jw:
            jw.write(_chunk_rows(d, gt, cats, segm))
        if pw:
            pw.write(d, gt, cats, segm)
        n_written += d.img.size
    if jw:
        jw.close()
    if pw:
        pw.close()
    t_end = time.perf_counter()

    manifest = {
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "gt": str(gt_path),
        "results_json": str(json_path) if json_path else None,
        "results_parquet": str(pq_path) if pq_path else None,
        "n_images": args.n_images,
        "n_annotations": int(gt.ann_img.size),
        "n_classes_with_gt": int(np.unique(gt.ann_cat).size),
        "n_detections_candidates": n_candidates if n_candidates is not None else offset,
        "n_detections_written": n_written,
        "gt_model": dataclasses.asdict(gt_model),
        "detector_model": dataclasses.asdict(det_model),
        "seconds": {"ground_truth": round(t_gt - t_start, 3), "rank_topk": round(t_rank - t_gt, 3),
                    "detections": round(t_end - t_rank, 3), "total": round(t_end - t_start, 3)},
    }
    (args.out_dir / f"manifest_{stem}.json").write_text(json.dumps(manifest, indent=2))
    print(json.dumps({k: manifest[k] for k in ("gt", "results_json", "results_parquet", "n_annotations",
                                               "n_detections_written", "seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
