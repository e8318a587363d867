"""Shared by the collector, detectron2 and toolbox adapter tests."""
import pytest

from lveval.topk.pool import _Pool


@pytest.fixture(autouse=True)
def small_batches(monkeypatch):
    """Prune often, so the tests exercise many prune rounds on small inputs."""
    monkeypatch.setattr(_Pool, "MIN_BATCH", 64)


@pytest.fixture(scope="session")
def ddp_outputs(tmp_path_factory, lvis_path):
    """The mmengine and torchmetrics adapters run once in two gloo processes (one start-up for both)."""
    from .adapters_data import ddp_jobs, run_ddp

    jobs = ddp_jobs(lvis_path)
    return run_ddp(str(tmp_path_factory.mktemp("ddp")), jobs) if jobs else {}
