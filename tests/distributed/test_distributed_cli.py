"""``lveval evaluate ... --scheduler/--workers`` writes the same JSON as the single-process command."""
import argparse
import json

import lveval.cli.core  # noqa: F401 - cli.core.cmd_evaluate below
from lveval import cli
from lveval.cli import distributed as dcli
from lveval.cli.options import common, eval_options
from lveval.simulate import simulate


def _parser():
    p = argparse.ArgumentParser()
    p.add_argument("gt")
    p.add_argument("results")
    eval_options(p)
    p.add_argument("--json")
    common(p)
    dcli.add_arguments(p)
    return p


def test_cli_scheduler_matches_single_process(dask_client, lvis_path, tmp_path, capsys):
    res = str(tmp_path / "dets.json")
    with open(res, "w") as f:
        json.dump(simulate(lvis_path, seed=4, candidates_per_image=300), f)
    one, many = str(tmp_path / "one.json"), str(tmp_path / "many.json")
    assert cli.main(["evaluate", lvis_path, res, "--max-dets-per-image", "100", "--json", one, "--quiet"]) == 0
    out_single = capsys.readouterr().out
    a = _parser().parse_args([lvis_path, res, "--max-dets-per-image", "100", "--json", many, "--quiet",
                              "--scheduler", dask_client.scheduler.address, "--shards", "3"])
    assert dcli.wants_distributed(a)
    assert cli.core.cmd_evaluate(a) == 0                    # the command, taking its distributed branch
    assert capsys.readouterr().out == out_single       # the same table
    with open(one) as f1, open(many) as f2:
        assert json.load(f1) == json.load(f2)


def test_cli_options_absent_mean_single_process():
    a = _parser().parse_args(["gt.json", "dets.json"])
    assert not dcli.wants_distributed(a)
    assert (a.scheduler, a.workers, a.shards) == (None, None, None)
