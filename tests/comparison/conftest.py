import pytest


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run ``lveval ARGS`` with only ``lveval compare`` registered (isolated from other modules)."""
    from lveval import cli

    monkeypatch.setattr(cli, "_GROUPS", ("lveval.cli.compare",))

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
