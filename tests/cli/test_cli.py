"""The command line: figures, JSON layout, exit codes, atomic output, reproducibility."""
import json
import os
import subprocess
import sys

import orjson
import pytest

from lveval.cli import main
from lveval.simulate import simulate

LVEVAL = [sys.executable, "-m", "lveval.cli"]


@pytest.fixture(scope="module")
def results_file(tmp_path_factory, lvis_path):
    p = tmp_path_factory.mktemp("r") / "res.json"
    p.write_bytes(orjson.dumps(simulate(lvis_path, seed=7, candidates_per_image=400)))
    return str(p)


def test_evaluate_json_layout(tmp_path, lvis_path, results_file, capsys):
    out = tmp_path / "o.json"
    assert main(["evaluate", lvis_path, results_file, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "AP-Old (300/image)" in text and "AP-Fixed (10000/class)" in text and "AP-Pool" in text
    d = json.loads(out.read_text())
    keys = {"AP", "AP50", "AP75", "APs", "APm", "APl", "APr", "APc", "APf", "AR", "ARs", "ARm", "ARl"}
    assert set(d["old"]) == keys and set(d["fixed"]) == keys
    assert set(d["pooled"]) == {"AP", "AP50", "AP75", "APr", "APc", "APf"}
    row = d["per_class"][0]
    assert set(row) == {"category_id", "name", "frequency", "num_gt", "num_dets", "AP_old", "AP_fixed"}
    assert d["params"]["max_dets_per_image"] == 300 and d["params"]["max_dets_per_class"] == 10000
    assert d["inputs"]["gt"].startswith("sha256:")
    assert all(-1 <= v <= 1 for p in ("old", "fixed", "pooled") for v in d[p].values())


def test_json_is_byte_identical_across_runs(tmp_path, lvis_path, results_file):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for p in (a, b):
        assert main(["evaluate", lvis_path, results_file, "--json", str(p), "--quiet"]) == 0
    assert a.read_bytes() == b.read_bytes()


def test_protocol_subset_and_caps(tmp_path, lvis_path, results_file):
    out = tmp_path / "o.json"
    assert main(["evaluate", lvis_path, results_file, "--protocols", "old", "--max-dets-per-image", "50",
                 "--json", str(out), "--quiet"]) == 0
    d = json.loads(out.read_text())
    assert "fixed" not in d and "pooled" not in d and d["params"]["max_dets_per_image"] == 50


def test_bad_input_exit_2_one_line_no_output(tmp_path, lvis_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": "high"}]')
    out = tmp_path / "o.json"
    p = subprocess.run(LVEVAL + ["evaluate", lvis_path, str(bad), "--json", str(out)],
                       capture_output=True, text=True)
    assert p.returncode == 2
    err = p.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in p.stderr
    assert str(bad) in err[0] and "record 0" in err[0] and "score" in err[0]
    assert not out.exists()


def test_demo_runs(capsys):
    assert main(["demo", "--quiet", "--candidates", "300"]) == 0
    out = capsys.readouterr().out
    assert "AP-Old" in out and "AP-Fixed" in out and "AP-Pool" in out


def test_demo_boundary_is_the_boundary_evaluation(tmp_path):
    """``demo --iou-type boundary`` evaluates the simulated masks with Boundary IoU: its JSON
    equals ``evaluate`` of the same simulated results with ``iou_type="boundary"``, and differs
    from the segm figures of the same masks."""
    from lveval import data_path
    from lveval.metrics import evaluate
    from lveval.simulate import simulate

    out = tmp_path / "demo.json"
    assert main(["demo", "--iou-type", "boundary", "--candidates", "100", "--quiet", "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    res = simulate(data_path(), seed=0, candidates_per_image=100, iou_type="boundary")
    want = evaluate(data_path(), res, iou_type="boundary").to_dict()
    segm = evaluate(data_path(), res, iou_type="segm").to_dict()
    for d in (got, want, segm):
        d.pop("inputs", None)
        d.pop("timing", None)
    assert got["params"]["iou_type"] == "boundary"
    assert got["fixed"] == want["fixed"] and got["old"] == want["old"] and got["pooled"] == want["pooled"]
    assert got["fixed"] != segm["fixed"]


def test_convert_round_trip(tmp_path, lvis_path, results_file):
    pq = tmp_path / "r.parquet"
    jl = tmp_path / "r.jsonl"
    assert main(["convert", results_file, str(pq), "--quiet"]) == 0
    assert main(["convert", str(pq), str(jl), "--quiet"]) == 0
    outs = []
    for f in (results_file, str(pq), str(jl)):
        o = tmp_path / (os.path.basename(f) + ".out.json")
        assert main(["evaluate", lvis_path, f, "--json", str(o), "--quiet"]) == 0
        d = json.loads(o.read_text())
        d.pop("inputs")
        outs.append(d)
    assert outs[0] == outs[1] == outs[2]
