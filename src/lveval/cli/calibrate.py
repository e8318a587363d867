"""``lveval calibrate fit|apply|bench``: per-class score calibration from the command line."""
from __future__ import annotations

import argparse
import sys

from ..calibrate.options import (
    DEFAULT_IOU,
    DEFAULT_MIN_POSITIVES,
    GROUPINGS,
    POLICIES,
    TABLE8_METHODS,
    UNKNOWN_POLICIES,
)
from ..params import DEFAULT_MAX_DETS_PER_CLASS
from .options import eval_options

__all__ = ["register_cli", "split_method_list"]


def _calibration_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--grouping", choices=GROUPINGS, default="per-class",
                   help="one calibrator per class (default), per frequency group r/c/f, or overall")
    p.add_argument("--missing", choices=POLICIES, default="by-frequency",
                   help="classes absent from the calibration data (default: by-frequency)")
    p.add_argument("--no-tp", choices=POLICIES, default="by-frequency", dest="no_tp",
                   help="classes with fewer than --min-positives true positives there (default: by-frequency)")
    p.add_argument("--min-positives", type=int, default=DEFAULT_MIN_POSITIVES, metavar="N",
                   help=f"true positives a class needs for a calibrator of its own (default "
                        f"{DEFAULT_MIN_POSITIVES}; 1 = the paper's scripts)")
    p.add_argument("--no-monotone", dest="monotone", action="store_false",
                   help="do not constrain maps to be non-decreasing (histogram binning, BBQ and Platt "
                        "scaling may then reorder a class's detections and change AP-Fixed)")
    p.add_argument("--no-keep-rank", dest="keep_rank", action="store_false",
                   help="leave the ties binning methods create (by default they are broken in the "
                        "original score order, keeping each tie's mean)")
    p.add_argument("--iou", type=float, default=DEFAULT_IOU,
                   help=f"IoU at which a detection counts as correct (default {DEFAULT_IOU})")


def _data_options(p: argparse.ArgumentParser) -> None:
    """The evaluation options that apply to calibration (no per-image cap: it labels AP-Fixed's selection)."""
    eval_options(p, protocols=False, max_dets=False)
    p.add_argument("--max-dets-per-class", type=int, default=DEFAULT_MAX_DETS_PER_CLASS, metavar="K",
                   help=f"detections per class labelled and evaluated, as AP-Fixed (default {DEFAULT_MAX_DETS_PER_CLASS})")


def _data_kwargs(a) -> dict:
    return dict(iou_type=a.iou_type, max_dets_per_class=a.max_dets_per_class, dataset=a.dataset,
                on_unknown_image=a.on_unknown_image, on_unknown_category=a.on_unknown_category)


def cmd_fit(a) -> int:
    from ..calibrate.grouped import GroupedCalibrator
    from ..output import check_writable

    check_writable(a.out)
    cal = GroupedCalibrator(a.method, grouping=a.grouping, missing=a.missing, no_tp=a.no_tp,
                            min_positives=a.min_positives, monotone=a.monotone, iou=a.iou, iou_type=a.iou_type,
                            max_dets_per_class=a.max_dets_per_class, keep_rank=a.keep_rank)
    cal.fit(a.gt, a.results, dataset=a.dataset, on_unknown_image=a.on_unknown_image,
            on_unknown_category=a.on_unknown_category)
    cal.save(a.out)
    s = cal.summary()
    uses = ", ".join(f"{k}: {v}" for k, v in s["categories_by_calibrator"].items())
    print(f"fit {s['num_calibrators']} {cal.method} calibrator(s) on {s['num_samples']} labelled detections "
          f"({s['num_positives']} true positives at IoU {cal.iou:g})\ncategories by calibrator: {uses}\n"
          f"wrote {a.out}")
    return 0


def cmd_apply(a) -> int:
    from ..calibrate.grouped import GroupedCalibrator
    from ..io.results import write_results
    from ..output import check_writable

    check_writable(a.out)
    cal = GroupedCalibrator.load(a.model)
    dets = cal.apply(a.results, on_unknown_category=a.on_unknown_category)
    write_results(dets, a.out)
    print(f"wrote {len(dets)} calibrated detections to {a.out}")
    return 0


def cmd_bench(a) -> int:
    from ..calibrate.bench import bench, format_table
    from ..output import check_writable, write_json

    check_writable(a.json)
    methods = split_method_list(a.methods)
    progress = None if a.quiet else (lambda msg: print(f"[calibrate bench] {msg}", file=sys.stderr))
    res = bench(a.gt, a.results, train_gt=a.train_gt, train_results=a.train_results, kfold=a.kfold, seed=a.seed,
                methods=methods, with_oracle=a.oracle, grouping=a.grouping, missing=a.missing, no_tp=a.no_tp,
                min_positives=a.min_positives, monotone=a.monotone, keep_rank=a.keep_rank, iou=a.iou,
                ece_bins=a.ece_bins, plots_dir=a.plots, progress=progress, **_data_kwargs(a))
    print(format_table(res))
    if a.json:
        write_json(a.json, res.to_dict())
    return 0


def split_method_list(items) -> list[str]:
    """Method specs from ``--methods`` words: commas separate specs, except before ``KEY=VALUE``
    parts, which belong to the spec before them (``bbq:binning=uniform,prune=elbow,platt``)."""
    specs: list[str] = []
    for item in ([items] if isinstance(items, str) else items):
        for part in filter(None, (x.strip() for x in item.split(","))):
            if "=" in part and ":" not in part and specs:
                specs[-1] += "," + part
            else:
                specs.append(part)
    return specs


def _no_action(parser: argparse.ArgumentParser):
    def run(a) -> int:
        parser.print_help()
        return 2
    return run


def register_cli(sub, common, eval_options, eval_kwargs) -> None:
    """Add ``lveval calibrate fit|apply|bench`` to the main parser's sub-commands."""
    cp = sub.add_parser("calibrate", help="per-class score calibration (fit, apply, Table 8 bench)",
                        description="Calibrate detection scores per class (Dave et al. 2021, Sec. 6.3): "
                                    "fit calibrators on labelled detections, apply them to results files, "
                                    "and measure AP-Pool / ECE before and after.")
    cp.set_defaults(func=_no_action(cp), debug=False, quiet=False)
    csub = cp.add_subparsers(dest="calibrate_command", metavar="ACTION")

    f = csub.add_parser("fit", help="fit calibrators on (ground truth, results) and write a model JSON")
    f.add_argument("--gt", required=True, help="ground truth of the calibration set (COCO or LVIS JSON)")
    f.add_argument("--results", required=True, help="detections on it: .json array, .jsonl or .parquet")
    f.add_argument("--method", default="platt",
                   help="histogram, bbq, beta, isotonic, platt or temperature, optionally with parameters, "
                        "e.g. 'bbq:scoring=BIC' or 'bbq:binning=uniform,prune=elbow' (default platt)")
    _calibration_options(f)
    _data_options(f)
    f.add_argument("--out", required=True, metavar="MODEL", help="model JSON to write")
    common(f)
    f.set_defaults(func=cmd_fit)

    ap = csub.add_parser("apply", help="calibrate a results file with a fitted model")
    ap.add_argument("model", help="model JSON written by 'lveval calibrate fit'")
    ap.add_argument("results", help="results to calibrate: .json array, .jsonl or .parquet")
    ap.add_argument("--out", required=True, help="calibrated results to write (.json, .jsonl or .parquet)")
    ap.add_argument("--on-unknown-category", choices=UNKNOWN_POLICIES, default="error",
                    help="categories the model was not fit with: error (default), keep or zero their scores")
    common(ap)
    ap.set_defaults(func=cmd_apply)

    b = csub.add_parser("bench", help="Table 8: AP-Pool, r/c/f pools and ECE for every method, plus the oracle")
    b.add_argument("--gt", required=True, help="ground truth of the test set")
    b.add_argument("--results", required=True, help="detections on the test set")
    b.add_argument("--train-gt", help="ground truth of the calibration set (the paper: the training set)")
    b.add_argument("--train-results", help="detections on the calibration set")
    b.add_argument("--kfold", type=int, metavar="K",
                   help="instead of a calibration set: K-fold cross-fitting over the test images")
    b.add_argument("--seed", type=int, default=0, help="seed of the k-fold image split (default 0)")
    b.add_argument("--methods", nargs="+", default=list(TABLE8_METHODS), metavar="SPEC",
                   help="method specs, separated by spaces or commas (default: Table 8's histogram bbq beta "
                        "isotonic platt; e.g. add temperature or 'bbq:binning=uniform,prune=elbow')")
    b.add_argument("--no-oracle", dest="oracle", action="store_false", help="skip the oracle block")
    b.add_argument("--ece-bins", type=int, default=15, help="equal-width bins of the ECE (default 15)")
    b.add_argument("--plots", metavar="DIR", help="write a reliability diagram (PNG) per variant into DIR")
    b.add_argument("--json", metavar="OUT", help="write all figures as JSON")
    _calibration_options(b)
    _data_options(b)
    common(b)
    b.set_defaults(func=cmd_bench)
