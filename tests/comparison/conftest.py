import os
import sys

import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)                      # dup.py
sys.path.insert(0, os.path.dirname(HERE))     # tests/ (gen.py)


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run ``lveval ARGS`` with only ``lveval compare`` registered (isolated from other modules)."""
    from lveval import cli
    from lveval.comparison.cli import register_cli

    monkeypatch.setattr(cli, "_load_extensions", lambda: None)
    monkeypatch.setattr(cli, "_EXTENSIONS", [register_cli])

    def run(*args):
        rc = cli.main([str(a) for a in args])
        out = capsys.readouterr()
        return rc, out.out, out.err
    return run


@pytest.fixture(scope="session")
def sims():
    """The bundled LVIS subset and two runs of the simulated detector."""
    import json

    import lveval
    from lveval.simulate import simulate

    with open(lveval.data_path()) as f:
        gt = json.load(f)
    return gt, simulate(gt, seed=0), simulate(gt, seed=1)
