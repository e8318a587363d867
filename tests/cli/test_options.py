"""Shared command-line options: one line and exit status 2 for bad values, the deprecated spellings."""
from __future__ import annotations

import json

import pytest

from lveval.cli import main
from lveval.simulate import simulate


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, lvis_path):
    d = tmp_path_factory.mktemp("opts")
    res = d / "r.json"
    res.write_text(json.dumps(simulate(lvis_path, seed=0, candidates_per_image=20)))
    return lvis_path, str(res)


@pytest.mark.parametrize("args, needle", [
    (["--workers", "0"], "option 'workers'"),
    (["--workers", "-1"], "option 'workers'"),
    (["--workers", "2", "--shards", "0"], "option 'shards'"),
    (["--dilation-ratio", "0", "--iou-type", "boundary"], "option 'dilation_ratio'"),
    (["--challenge", "lvis2021", "--iou-type", "segm"], "option 'iou_type'"),
    (["--challenge", "lvis2021", "--protocols", "old"], "option 'protocols'"),
])
def test_bad_option_values_exit_2_with_one_line(inputs, args, needle, capsys, tmp_path):
    gt, res = inputs
    out = tmp_path / "o.json"
    rc = main(["evaluate", gt, res, "--json", str(out), *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0], err
    assert not out.exists()


def test_deprecated_spellings_still_work(inputs, capsys, tmp_path):
    gt, res = inputs
    new, old = tmp_path / "new.json", tmp_path / "old.json"
    assert main(["topk", res, "--max-dets-per-class", "7", "--max-dets-per-image", "5", "--out", str(new),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["topk", res, "--per-class", "7", "--per-image", "5", "--out", str(old), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "--per-class is deprecated; use --max-dets-per-class" in err
    assert new.read_bytes() == old.read_bytes()
