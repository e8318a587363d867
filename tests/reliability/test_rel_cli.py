"""Exit statuses, tracebacks only with --debug, atomic output, and byte-identical reproducible JSON."""
from __future__ import annotations

import hashlib
import json
import os

import orjson
import pytest

import lveval
from lveval.atomic import atomic_write
from lveval.cli import main
from tests.reliability.relkit import dumps, results_list, run_cli


def _boom(*a, **k):
    raise RuntimeError("boom: simulated bug")


def test_internal_error_exits_1_with_one_line(monkeypatch, capsys, gt_file, results_file, tmp_path):
    monkeypatch.setattr("lveval.metrics.evaluate", _boom)
    out = tmp_path / "out.json"
    assert main(["evaluate", str(gt_file), str(results_file), "--json", str(out)]) == 1
    cap = capsys.readouterr()
    lines = cap.err.splitlines()
    assert lines == ["lveval: internal error: RuntimeError: boom: simulated bug "
                     "(run with --debug for a traceback)"]
    assert "Traceback" not in cap.err and not out.exists()


def test_debug_reraises_internal_errors(monkeypatch, gt_file, results_file, tmp_path):
    monkeypatch.setattr("lveval.metrics.evaluate", _boom)
    with pytest.raises(RuntimeError, match="simulated bug"):
        main(["evaluate", str(gt_file), str(results_file), "--json", str(tmp_path / "o.json"), "--debug"])


def test_debug_shows_a_traceback_for_bad_input(gt_file, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_bytes(dumps([dict(results_list()[0], score="high")]))
    out = tmp_path / "out.json"
    p = run_cli(["evaluate", gt_file, bad, "--json", out, "--debug"])
    assert p.returncode != 0 and "Traceback (most recent call last)" in p.stderr
    assert "lveval.exceptions.InputError" in p.stderr and "field 'score'" in p.stderr
    assert not out.exists()


# --- atomic output -------------------------------------------------------------------------

def test_failed_run_keeps_the_previous_output(gt_file, tmp_path):
    """A stale OUT from an earlier run is neither truncated nor replaced by a failing run."""
    out = tmp_path / "out.json"
    old = b'{"old": "result from an earlier run"}\n'
    out.write_bytes(old)
    bad = tmp_path / "bad.json"
    bad.write_bytes(dumps(results_list())[:-20])   # truncated
    p = run_cli(["evaluate", gt_file, bad, "--json", out])
    assert p.returncode == 2
    assert out.read_bytes() == old
    assert sorted(os.listdir(tmp_path)) == ["bad.json", "gt.json", "out.json"]


def test_failure_while_writing_keeps_the_previous_output(monkeypatch, capsys, gt_file, results_file, tmp_path):
    """The rename is the last step: if it fails, OUT still holds its old bytes and no temp file stays."""
    out = tmp_path / "out.json"
    out.write_bytes(b"old\n")

    def no_rename(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr("lveval.atomic.os.replace", no_rename)
    # an environment problem, not a bug: exit 2 with one line naming the output
    assert main(["evaluate", str(gt_file), str(results_file), "--json", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and str(out) in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == b"old\n"
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


@pytest.mark.parametrize("exc", [ValueError("half-way"), KeyboardInterrupt()])
def test_atomic_write_leaves_nothing_on_error(tmp_path, exc):
    target = tmp_path / "t.json"
    target.write_text("before")
    with pytest.raises(type(exc)):
        with atomic_write(str(target), "w") as f:
            f.write("partial")
            f.flush()
            raise exc
    assert target.read_text() == "before"
    assert os.listdir(tmp_path) == ["t.json"]


def test_successful_run_replaces_stale_output(gt_file, results_file, tmp_path, capsys):
    out = tmp_path / "out.json"
    out.write_bytes(b"stale")
    assert main(["evaluate", str(gt_file), str(results_file), "--json", str(out), "--quiet"]) == 0
    assert json.loads(out.read_bytes())["lveval_version"] == lveval.__version__


# --- reproducibility -----------------------------------------------------------------------

def _sha256(path) -> str:
    return "sha256:" + hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def sim_files(tmp_path_factory):
    """The bundled LVIS subset and a simulated detector's results (ties and all three pools)."""
    from lveval.simulate import simulate

    d = tmp_path_factory.mktemp("repro")
    res = d / "res.json"
    res.write_bytes(orjson.dumps(simulate(lveval.data_path(), seed=3, candidates_per_image=300)))
    return lveval.data_path(), res, d


def test_two_cli_runs_give_identical_bytes(sim_files):
    gt, res, d = sim_files
    outs = [d / "a.json", d / "b.json"]
    from concurrent.futures import ThreadPoolExecutor
    envs = [{"PYTHONHASHSEED": "1"}, {"PYTHONHASHSEED": "2"}]   # no dependence on hash order
    with ThreadPoolExecutor(2) as pool:
        procs = list(pool.map(lambda oe: run_cli(["evaluate", gt, res, "--json", oe[0], "--quiet"], env=oe[1]),
                              zip(outs, envs)))
    assert [p.returncode for p in procs] == [0, 0], [p.stderr for p in procs]
    a, b = (o.read_bytes() for o in outs)
    assert a == b
    doc = json.loads(a)
    assert doc["lveval_version"] == lveval.__version__
    assert doc["inputs"] == {"gt": _sha256(gt), "results": _sha256(res)}
    params = doc["params"]
    assert params["iou_type"] == "bbox" and params["dataset"] == "lvis"
    assert params["max_dets_per_image"] == 300 and params["max_dets_per_class"] == 10000
    assert len(params["iou_thrs"]) == 10 and params["num_rec_thrs"] == 101   # lvis-api's T and R
    assert set(params["area_rng"]) == {"all", "small", "medium", "large"}
    # the table on stdout is the same too
    assert procs[0].stdout == procs[1].stdout


def test_input_hash_follows_the_content(sim_files, tmp_path, capsys):
    """A one-byte change of the results changes the recorded hash (and nothing but the file's bytes does)."""
    gt, res, _ = sim_files
    copy = tmp_path / "copy.json"
    copy.write_bytes(res.read_bytes())
    edited = tmp_path / "edited.json"
    edited.write_bytes(res.read_bytes()[:-1] + b" ]")   # one more byte of whitespace
    docs = []
    for r in (res, copy, edited):
        o = tmp_path / (r.name + ".out")
        assert main(["evaluate", gt, str(r), "--json", str(o), "--quiet", "--protocols", "old"]) == 0
        docs.append(json.loads(o.read_bytes()))
    assert docs[0]["inputs"] == docs[1]["inputs"]           # same bytes, other path: same hash
    assert docs[2]["inputs"]["results"] != docs[0]["inputs"]["results"]
    assert docs[2]["inputs"]["results"] == _sha256(edited)
    assert docs[2]["old"] == docs[0]["old"]                 # whitespace only: same figures


def test_output_does_not_depend_on_where_the_inputs_are(tmp_path, capsys):
    """Same bytes under other names in another directory (with notices: scores above 1, boxes
    outside the image, skipped records): byte-identical output."""
    from tests.reliability.relkit import GT
    res = results_list()
    res[0]["score"] = 1.5
    res[1]["bbox"] = [-3, 50, 30, 38]
    res.append(dict(res[2], image_id=404))
    outs = []
    for sub, g, r in (("a", "gt.json", "res.json"), ("b/deeper", "ground_truth.json", "detections.json")):
        d = tmp_path / sub
        d.mkdir(parents=True)
        (d / g).write_bytes(dumps(GT))
        (d / r).write_bytes(dumps(res))
        o = d / "out.json"
        assert main(["evaluate", str(d / g), str(d / r), "--json", str(o), "--quiet",
                     "--on-unknown-image", "skip"]) == 0
        outs.append(o.read_bytes())
    assert outs[0] == outs[1]
    doc = json.loads(outs[0])
    assert doc["skipped"] and doc["flagged"] and any("above 1" in w for w in doc["warnings"])


def test_unwritable_output_is_refused_before_the_run(capsys, gt_file, results_file, tmp_path):
    """An output that cannot be written is a one-line exit-2 error, found before evaluating."""
    assert main(["evaluate", str(gt_file), str(results_file), "--json", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is a directory" in err[0]
    missing = tmp_path / "no-such-dir" / "out.json"
    assert main(["evaluate", str(gt_file), str(results_file), "--json", str(missing), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err
