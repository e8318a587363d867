import pytest

from tests.support.cli import cli_runner


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run ``lveval ARGS`` with only ``lveval compare`` registered (isolated from other modules)."""
    return cli_runner(monkeypatch, capsys, "lveval.cli.compare")


@pytest.fixture(scope="session")
def sims():
    """The bundled LVIS subset and two runs of the simulated detector."""
    import json

    import lveval
    from lveval.simulate import simulate

    with open(lveval.data_path()) as f:
        gt = json.load(f)
    return gt, simulate(gt, seed=0), simulate(gt, seed=1)
