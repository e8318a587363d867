"""The figures ``lveval evaluate`` prints for a results list (the reference the toolbox adapters must equal)."""
import json

import numpy as np

from lveval.cli import main


def write_results(path, cols) -> str:
    """A COCO-style results file from columns (image_id, category_id, score, bbox xywh[, segmentation])."""
    recs = []
    for i in range(len(cols["score"])):
        r = {"image_id": int(cols["image_id"][i]), "category_id": int(cols["category_id"][i]),
             "bbox": [float(x) for x in cols["bbox"][i]], "score": float(cols["score"][i])}
        if "segmentation" in cols:
            r["segmentation"] = cols["segmentation"][i]
        recs.append(r)
    with open(path, "w") as f:
        json.dump(recs, f)
    return str(path)


def cli_figures(tmp_path, gt_path, cols, *args) -> dict:
    """``lveval evaluate GT RESULTS --json OUT ARGS`` on ``cols``; the JSON it writes."""
    res = write_results(tmp_path / f"cli_results_{np.random.default_rng().integers(1 << 30)}.json", cols)
    out = tmp_path / "cli_figures.json"
    assert main(["evaluate", str(gt_path), res, "--json", str(out), "--quiet", *args]) == 0
    with open(out) as f:
        return json.load(f)


def float32_xyxy_to_xywh(xywh: np.ndarray):
    """(xyxy float32, xywh as a toolbox's results file holds it): XYXY float32 boxes as detectors output them,
    and the XYWH each toolbox writes back (the subtraction done in float32)."""
    xyxy = np.asarray(xywh, np.float32).copy()
    xyxy[:, 2:] += xyxy[:, :2]
    back = xyxy.copy()
    back[:, 2:] -= back[:, :2]
    return xyxy, back.astype(np.float64)
