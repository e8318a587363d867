
import pytest

from tests.support.cli import cli_runner


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run ``lveval ARGS`` with only the analysis sub-commands registered (isolated from other modules)."""
    return cli_runner(monkeypatch, capsys, "lveval.cli.analysis")


@pytest.fixture(scope="session")
def demo():
    """The embedded default: bundled 100-image LVIS v0.5 subset + simulated detector (seed 0)."""
    from lveval.analysis.common import Session, demo_inputs

    gt, res = demo_inputs(seed=0)
    return gt, res, Session.load(gt, res)
