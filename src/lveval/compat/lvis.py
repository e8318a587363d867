"""lvis-api 0.5.3 drop-in: ``LVIS``, ``LVISResults``, ``LVISEval`` (plus ``LVISPooledEval``).

Code written for lvis-api runs unchanged after replacing
``from lvis import LVIS, LVISResults, LVISEval`` with
``from lveval.compat import LVIS, LVISResults, LVISEval``, and gives the same
figures (tested against lvis-api itself), computed by lveval's engine: no
Python loop per image and class, and numpy 2 works.

Beyond lvis-api:

* ``params.max_dets_per_class`` (default -1: no limit) keeps the top K
  detections of each class over the whole set before evaluation. With
  ``LVISResults(..., max_dets=-1)`` and K = 10,000 this is AP-Fixed.
* The LVIS 2021 challenge branch's interface (``lvis_challenge_2021``):
  ``LVISEval(gt, dt, iou_type=..., mode="challenge2021", dilation_ratio=0.02)``
  (Boundary IoU, top 10,000 detections per class, no per-image cap),
  ``iou_type="boundary"``, ``LVISResults(gt, res, max_dets_per_cat=...,
  max_dets_per_im=...)``, and its summary keys and lines (``AR@10000/cat``,
  ``maxDets=10000/cat``). Boundaries are computed where matching needs them,
  not precomputed: ``precompute_boundary`` and ``max_cpu_num`` are accepted and
  unused.
* :class:`LVISPooledEval` computes AP-Pool with the interface of the paper's
  ``lvdevil.eval_wrapper.LVISPooledEval`` (``pools=["all", "r", "c", "f"]``,
  results keys ``AP-pooled-all`` ...).

What is not replicated (see docs/compat.md): ``eval_imgs``, ``ious`` and
``eval["dt_pointers"]`` stay empty; ``download``
and the visualisation helpers are absent.
"""
from __future__ import annotations

import datetime
import logging
from collections import OrderedDict, defaultdict

import numpy as np

from ..exceptions import InputError
from ..io.gt import GroundTruth, load_gt
from ..io.jsonfile import loads_any, read_bytes
from ..io.results import Detections
from ..metrics import mean_valid
from ..select import cap_per_image, top_k_per_class
from ._common import dataset_of, engine_params, load_detections, prepare

log = logging.getLogger("lveval.compat")


class LVIS:
    """LVIS annotations with lvis-api's index (``anns``, ``cats``, ``imgs``, ``img_ann_map``, ``cat_img_map``).

    ``annotation_path`` may also be a dict (the parsed JSON). ``precompute_boundary``,
    ``dilation_ratio`` and ``max_cpu_num`` (the challenge branch's) are recorded, not used.
    """

    def __init__(self, annotation_path, precompute_boundary=False, dilation_ratio=0.02, max_cpu_num=80):
        self.logger = logging.getLogger(__name__)
        self.precompute_boundary = precompute_boundary
        self.dilation_ratio = dilation_ratio
        self.max_cpu_num = max_cpu_num
        if isinstance(annotation_path, dict):
            self.dataset = annotation_path
        else:
            self.dataset = self._load_json(annotation_path)
        if not isinstance(self.dataset, dict):
            raise InputError(f"expected a JSON object, got {type(self.dataset).__name__}",
                             path=str(annotation_path))
        self._gt: GroundTruth | None = None
        self._create_index()

    def _load_json(self, path):
        return loads_any(read_bytes(path), str(path))

    def _create_index(self):
        self.img_ann_map = defaultdict(list)
        self.cat_img_map = defaultdict(list)
        self.anns = {}
        self.imgs = {im["id"]: im for im in self.dataset.get("images", [])}
        self.cats = {c["id"]: c for c in self.dataset.get("categories", [])}
        for ann in self.dataset.get("annotations", []):
            self.img_ann_map[ann["image_id"]].append(ann)
            self.anns[ann["id"]] = ann
            self.cat_img_map[ann["category_id"]].append(ann["image_id"])

    @property
    def ground_truth(self) -> GroundTruth:
        """The validated columnar ground truth lveval's engine evaluates (cached)."""
        if self._gt is None:
            self._gt = load_gt(self.dataset, dataset="lvis")
        return self._gt

    def get_ann_ids(self, img_ids=None, cat_ids=None, area_rng=None):
        """Ids of annotations of the given images, classes and (open) area range."""
        if img_ids is not None:
            anns = [a for i in img_ids for a in self.img_ann_map[i]]
        else:
            anns = self.dataset["annotations"]
        if cat_ids is None and area_rng is None:
            return [a["id"] for a in anns]
        cats = set(cat_ids) if cat_ids is not None else None
        lo, hi = area_rng if area_rng is not None else (0, float("inf"))
        return [a["id"] for a in anns
                if (cats is None or a["category_id"] in cats) and lo < a["area"] < hi]

    def get_cat_ids(self):
        return list(self.cats.keys())

    def get_img_ids(self):
        return list(self.imgs.keys())

    @staticmethod
    def _pick(table, ids):
        return list(table.values()) if ids is None else [table[i] for i in ids]

    def load_anns(self, ids=None):
        return self._pick(self.anns, ids)

    def load_cats(self, ids):
        return self._pick(self.cats, ids)

    def load_imgs(self, ids):
        return self._pick(self.imgs, ids)

    def ann_to_rle(self, ann):
        """Compressed RLE of an annotation (polygons and uncompressed RLE converted)."""
        from pycocotools import mask as mask_utils

        im = self.imgs[ann["image_id"]]
        h, w = im["height"], im["width"]
        seg = ann["segmentation"]
        if isinstance(seg, list):
            return mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        if isinstance(seg["counts"], list):
            return mask_utils.frPyObjects(seg, h, w)
        return seg

    def ann_to_mask(self, ann):
        from pycocotools import mask as mask_utils

        return mask_utils.decode(self.ann_to_rle(ann))


class LVISResults(LVIS):
    """Detections for an LVIS ground truth, capped at ``max_dets`` per image (``-1``: no cap).

    As in the LVIS 2021 challenge branch, ``max_dets_per_im`` (same as ``max_dets``)
    and ``max_dets_per_cat`` (``-1``: no limit; the challenge: 10,000 per class with
    ``max_dets_per_im=-1``) may be given; the per-image cap is applied first.

    ``results``: a path (.json array, .jsonl, .parquet), a list of result dicts,
    a dict of numpy columns or :class:`lveval.io.Detections`. The input list is
    not modified. The cap keeps each image's highest scores, earlier records
    winning ties, exactly as lvis-api does. As in lvis-api, a result's area is
    its box's when results carry boxes, else its mask's.

    The lvis-api index (``dataset``, ``anns``, ``load_anns`` ...) is built on first use only.
    """

    def __init__(self, lvis_gt, results, max_dets=300, *, max_dets_per_cat=-1, max_dets_per_im=None,
                 precompute_boundary=False, dilation_ratio=0.02, max_cpu_num=80):
        self.logger = logging.getLogger(__name__)
        if isinstance(lvis_gt, str):
            lvis_gt = LVIS(lvis_gt)
        self._gt_dataset = dataset_of(lvis_gt, "lvis_gt")
        self._gt_obj = lvis_gt
        dets = load_detections(results)
        if max_dets_per_im is not None:
            max_dets = max_dets_per_im
        self.max_dets = self.max_dets_per_im = max_dets
        self.max_dets_per_cat = max_dets_per_cat
        self.precompute_boundary = getattr(lvis_gt, "precompute_boundary", precompute_boundary)
        self.dilation_ratio, self.max_cpu_num = dilation_ratio, max_cpu_num
        if max_dets is not None and max_dets >= 0:
            keep = cap_per_image(dets.img_id, dets.score, int(max_dets))
            if not keep.all():
                dets = dets.take(keep)
        if max_dets_per_cat is not None and max_dets_per_cat >= 0:
            keep = top_k_per_class(dets.cat_id, dets.score, int(max_dets_per_cat))
            if not keep.all():
                dets = dets.take(keep)
            n = np.unique(dets.cat_id, return_counts=True)[1]
            short = int((n < max_dets_per_cat).sum())
            if short:
                self.logger.warning(f"{short} categories had less than {max_dets_per_cat} detections!\n"
                                    f"Outputting {max_dets_per_cat} detections for each category will "
                                    "improve AP further.")
        known = np.array(sorted(im["id"] for im in self._gt_dataset["images"]), np.int64)
        unknown = ~np.isin(dets.img_id, known)
        if unknown.any():
            i = int(np.flatnonzero(unknown)[0])
            rec = int(dets.record[i]) if dets.record is not None else i
            raise InputError(f"Results do not correspond to current LVIS set: unknown image_id "
                             f"{int(dets.img_id[i])}", path=dets.path, record=rec, field="image_id")
        self.detections: Detections = dets
        self.area_from = "box" if dets.bbox is not None else "mask"
        self._indexed = False
        self._gt = None

    # lvis-api's index, built lazily (it costs a Python dict per detection)
    def __getattr__(self, name):
        if name in ("dataset", "anns", "imgs", "cats", "img_ann_map", "cat_img_map"):
            if not self.__dict__.get("_indexed", True):
                self._build_index()
                return self.__dict__[name]
        raise AttributeError(name)

    def _build_index(self):
        recs = self.detections.to_records()
        for i, r in enumerate(recs):
            if "bbox" in r:
                x, y, w, h = r["bbox"]
                r.setdefault("segmentation", [[x, y, x, y + h, x + w, y + h, x + w, y]])
                r["area"] = w * h
            r["id"] = i + 1
        if self.area_from == "mask" and recs:
            from pycocotools import mask as mask_utils

            from ..io.results import mask_area

            rles = [dict(r["segmentation"], counts=r["segmentation"]["counts"].encode())
                    if isinstance(r["segmentation"].get("counts"), str) else r["segmentation"] for r in recs]
            areas = mask_area(rles)
            boxes = mask_utils.toBbox(rles)
            for r, a, b in zip(recs, areas, boxes):
                r["area"] = float(a)
                r.setdefault("bbox", [float(v) for v in b])
        ds = dict(self._gt_dataset)
        ds["annotations"] = recs
        self.__dict__["dataset"] = ds
        self._indexed = True
        self._create_index()

    def get_top_results(self, img_id, score_thrs):
        anns = self.load_anns(self.get_ann_ids(img_ids=[img_id]))
        return [a for a in anns if a["score"] > score_thrs]


class Params:
    """lvis-api's evaluation parameters, plus ``max_dets_per_class`` (-1: no per-class limit, applied
    by the evaluation) and the challenge branch's ``max_dets_per_cat`` (-1; it names the summary keys,
    the limit itself is LVISResults')."""

    def __init__(self, iou_type):
        self.img_ids = []
        self.cat_ids = []
        self.iou_thrs = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
        self.rec_thrs = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
        self.max_dets = 300
        self.max_dets_per_class = -1
        self.max_dets_per_cat = -1
        self.area_rng = [[0 ** 2, 1e5 ** 2], [0 ** 2, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]]
        self.area_rng_lbl = ["all", "small", "medium", "large"]
        self.use_cats = 1
        self.img_count_lbl = ["r", "c", "f"]
        self.iou_type = iou_type


def _as_results(lvis_gt, lvis_dt):
    """(Detections, area rule) from our LVISResults, lvis-api's, a path or a list."""
    if isinstance(lvis_dt, LVISResults):
        return lvis_dt.detections, lvis_dt.area_from
    ds = getattr(lvis_dt, "dataset", None)
    if isinstance(ds, dict) and "annotations" in ds:     # lvis-api's LVISResults: already capped
        from ..io.results import load_results
        from ._common import columns_from_anns

        cols, area = columns_from_anns(ds["annotations"])
        return load_results(cols), area
    if isinstance(lvis_dt, (str, list)):
        r = LVISResults(lvis_gt, lvis_dt)
        return r.detections, r.area_from
    raise TypeError(f"Unsupported type {type(lvis_dt).__name__} of lvis_dt.")


class LVISEval:
    """lvis-api's ``LVISEval`` on lveval's engine: same constructor, params, methods and arrays.

    ``iou_type``: bbox, segm or boundary; ``mode="challenge2021"``: the LVIS 2021 challenge
    (boundary IoU; results limited to 10,000 per class, no per-image cap), as lvis-api's
    ``lvis_challenge_2021`` branch; ``dilation_ratio``: Boundary IoU's band (fraction of the
    image diagonal). ``max_cpu_num`` is accepted and unused.
    """

    def __init__(self, lvis_gt, lvis_dt, iou_type="segm", mode="default", dilation_ratio=0.02, max_cpu_num=80):
        self.logger = logging.getLogger(__name__)
        if iou_type not in ("bbox", "segm", "boundary"):
            raise ValueError(f"iou_type: {iou_type} is not supported.")
        if mode == "challenge2021":
            iou_type = "boundary"
        elif mode != "default":
            raise ValueError(f"Unexpected mode: {mode}")
        self.mode = mode
        self.use_boundary_iou = iou_type == "boundary"
        self.dilation_ratio = dilation_ratio
        if isinstance(lvis_gt, str):
            lvis_gt = LVIS(lvis_gt)
        self.lvis_gt = lvis_gt
        self._dataset = dataset_of(lvis_gt, "lvis_gt")
        if mode == "challenge2021":
            if isinstance(lvis_dt, LVISResults):
                assert lvis_dt.max_dets_per_im == -1, ("mode='challenge2021' specified with LVISResults object "
                                                       "containing incorrect max_dets_per_im (must be -1).")
                assert lvis_dt.max_dets_per_cat == 10000, ("mode='challenge2021' specified with LVISResults "
                                                           "object containing incorrect max_dets_per_cat "
                                                           "(must be 10000).")
            elif isinstance(lvis_dt, (str, list)):
                lvis_dt = LVISResults(lvis_gt, lvis_dt, max_dets_per_cat=10000, max_dets_per_im=-1)
        self.lvis_dt = lvis_dt
        self._dets, self._area = _as_results(lvis_gt, lvis_dt)
        if iou_type == "bbox" and self._dets.bbox is not None and self._dets.segm is not None:
            from dataclasses import replace

            self._dets = replace(self._dets, segm=None)     # masks (or lvis-api's box polygons) unused
        self.eval_imgs = []          # not computed: the engine matches all groups at once
        self.eval = {}
        self.params = Params(iou_type=iou_type)
        self.results = OrderedDict()
        self.ious = {}
        if mode == "challenge2021":
            self.params.max_dets = -1
            self.params.max_dets_per_cat = 10000
        self.params.img_ids = sorted(im["id"] for im in self._dataset["images"])
        self.params.cat_ids = sorted(c["id"] for c in self._dataset["categories"])
        self._ev = None
        self.freq_groups = None

    # -- the three steps ----------------------------------------------------------------------
    def evaluate(self):
        """Match detections to ground truth (one vectorised pass over every image and class)."""
        p = self.params
        p.img_ids = list(np.unique(p.img_ids))
        cat_ids = [int(c) for c in p.cat_ids]
        k = p.max_dets_per_class
        params = engine_params(p.iou_type, "lvis", p.iou_thrs, p.rec_thrs, p.area_rng,
                               max_dets_per_image=-1, max_dets_per_class=-1 if k is None else int(k),
                               area_labels=p.area_rng_lbl, class_agnostic=not p.use_cats,
                               dilation_ratio=self.dilation_ratio)
        cached = getattr(self.lvis_gt, "ground_truth", None) if isinstance(self.lvis_gt, LVIS) else None
        gt, ev = prepare(self._dataset, "lvis", self._dets, self._area, p.img_ids, cat_ids, p.iou_type,
                         params, cached)
        self._gt, self._ev = gt, ev
        self._sel = ev.fixed_selection()
        self._m = ev.matching_for(self._sel)
        # K axis in the order of params.cat_ids, as lvis-api (which need not be sorted)
        self._perm = np.searchsorted(gt.cat_ids, np.asarray(cat_ids, np.int64))
        cats = self._dataset_cats()
        self.freq_groups = [[i for i, c in enumerate(cat_ids) if cats[c].get("frequency") == f]
                            for f in p.img_count_lbl]
        if not p.use_cats:   # one pseudo-category (lvis-api's cat_ids = [-1]); no frequency groups
            self._perm = np.zeros(1, np.int64)
            self.freq_groups = [[] for _ in p.img_count_lbl]

    def _dataset_cats(self):
        return {c["id"]: c for c in self._dataset["categories"]}

    def accumulate(self):
        """Precision (T, R, K, A) and recall (T, K, A) into ``self.eval``."""
        if self._ev is None:
            self.logger.warning("Please run evaluate first.")
            self.evaluate()
        prec, rec = self._ev.accumulate(self._m, self._sel)
        prec, rec = prec[:, :, self._perm, :], rec[:, self._perm, :]
        p = self.params
        self.eval = {"params": p, "counts": list(prec.shape), "date": _now(),
                     "precision": prec, "recall": rec, "dt_pointers": {}}

    def _summarize(self, summary_type, iou_thr=None, area_rng="all", freq_group_idx=None):
        aidx = [i for i, lbl in enumerate(self.params.area_rng_lbl) if lbl == area_rng]
        if summary_type == "ap":
            s = self.eval["precision"]
            if iou_thr is not None:
                s = s[np.where(iou_thr == self.params.iou_thrs)[0]]
            if freq_group_idx is not None:
                s = s[:, :, self.freq_groups[freq_group_idx]][:, :, :, aidx]
            else:
                s = s[:, :, :, aidx]
        else:
            s = self.eval["recall"]
            if iou_thr is not None:
                s = s[np.where(iou_thr == self.params.iou_thrs)[0]]
            s = s[:, :, aidx]
        return mean_valid(s)

    def _max_dets_label(self) -> tuple[str, str]:
        """(key suffix, printed maxDets) as the challenge branch names them: ``300`` (0.5.3's),
        ``10000/cat`` or ``300/im,10000/cat``."""
        im, cat = self.params.max_dets, getattr(self.params, "max_dets_per_cat", -1)
        if cat is None or cat < 0:
            return str(im), f"{im:>3d}"
        if im < 0:
            return f"{cat}/cat", f"{cat}/cat"
        return f"{im}/im,{cat}/cat", f"{im}/im,{cat}/cat"

    def summarize(self):
        """The summary figures into ``self.results`` (keys as lvis-api: ``AP`` ... ``AR@300``; the
        challenge branch's ``AR@10000/cat`` ... when ``params.max_dets_per_cat`` is set)."""
        if not self.eval:
            raise RuntimeError("Please run accumulate() first.")
        md = self._max_dets_label()[0]
        r = self.results
        r["AP"] = self._summarize("ap")
        r["AP50"] = self._summarize("ap", iou_thr=0.50)
        r["AP75"] = self._summarize("ap", iou_thr=0.75)
        r["APs"] = self._summarize("ap", area_rng="small")
        r["APm"] = self._summarize("ap", area_rng="medium")
        r["APl"] = self._summarize("ap", area_rng="large")
        r["APr"] = self._summarize("ap", freq_group_idx=0)
        r["APc"] = self._summarize("ap", freq_group_idx=1)
        r["APf"] = self._summarize("ap", freq_group_idx=2)
        r[f"AR@{md}"] = self._summarize("ar")
        for a in ("small", "medium", "large"):
            r[f"AR{a[0]}@{md}"] = self._summarize("ar", area_rng=a)

    def run(self):
        """evaluate(), accumulate(), summarize()."""
        self.evaluate()
        self.accumulate()
        self.summarize()

    def print_results(self):
        template = " {:<18} {} @[ IoU={:<9} | area={:>6s} | maxDets={} catIds={:>3s}] = {:0.3f}"
        md = self._max_dets_label()[1]
        for key, value in self.results.items():
            title, kind = ("Average Precision", "(AP)") if "AP" in key else ("Average Recall", "(AR)")
            if len(key) > 2 and key[2].isdigit():
                iou = f"{float(key[2:]) / 100:0.2f}"
            else:
                iou = f"{self.params.iou_thrs[0]:0.2f}:{self.params.iou_thrs[-1]:0.2f}"
            group = key[2] if len(key) > 2 and key[2] in "rcf" else "all"
            area = key[2] if len(key) > 2 and key[2] in "sml" else "all"
            print(template.format(title, kind, iou, area, md, group, value))

    def get_results(self):
        if not self.results:
            self.logger.warning("results is empty. Call run().")
        return self.results


class LVISPooledEval(LVISEval):
    """AP-Pool with the interface of the paper's ``LVISPooledEval``: one PR curve per pool of classes.

    ``pools``: any of ``"all", "r", "c", "f"`` (default ``["all"]``). Detections
    are matched per class as usual, then ranked together across the pool's
    classes. ``eval["precision"]`` is (T, R, P, A); pooled curves are computed
    for the first area range (``all``) only, other area columns and
    ``eval["recall"]`` hold -1.
    """

    def __init__(self, lvis_gt, lvis_dt, iou_type="segm", pools=None, **kwargs):
        super().__init__(lvis_gt, lvis_dt, iou_type, **kwargs)
        pools = ["all"] if pools is None else list(pools)
        if not all(x in ("all", "r", "c", "f") for x in pools):
            raise ValueError(f"pools must be among all, r, c, f; got {pools}")
        self.pools = pools

    def accumulate(self):
        if self._ev is None:
            self.evaluate()
        curves = self._ev.pooled_curves(self._m, self._sel)
        p = self.params
        T, R, A = len(p.iou_thrs), len(p.rec_thrs), len(p.area_rng)
        prec = -np.ones((T, R, len(self.pools), A))
        for i, name in enumerate(self.pools):
            q = curves.get(name)
            if q is not None:
                prec[:, :, i, 0] = q
        self.eval = {"params": p, "counts": [T, R, len(self.pools), A], "date": _now(),
                     "precision": prec, "recall": -np.ones((T, len(self.pools), A)), "dt_pointers": {}}

    def summarize(self):
        if not self.eval:
            raise RuntimeError("Please run accumulate() first.")
        aidx = [i for i, lbl in enumerate(self.params.area_rng_lbl) if lbl == "all"]
        for name in ("all", "r", "c", "f"):
            if name in self.pools:
                s = self.eval["precision"][:, :, self.pools.index(name), aidx]
                self.results[f"AP-pooled-{name}"] = mean_valid(s)


def _now() -> str:
    return datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
