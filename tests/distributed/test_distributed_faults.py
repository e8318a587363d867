"""Workers killed in the middle of a sharded evaluation: Dask reruns their tasks, figures stay exact."""
import json
import os

import numpy as np
import pytest

import lveval
from lveval.distributed import evaluate as sharded_evaluate
from lveval.simulate import simulate


def _claim(markers):
    """Create the first marker file that does not exist yet, atomically; True when one was created."""
    for m in markers:
        try:
            os.close(os.open(m, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            continue
    return False


@pytest.mark.parametrize("kills, gt_in_memory", [(1, False), (2, True)], ids=["one-worker", "every-worker"])
def test_worker_killed_mid_run(dask_client, lvis_path, tmp_path, kills, gt_in_memory):
    """``kills`` worker processes exit as their first shard task starts (2 = the whole cluster at once,
    so the data the shards share, thresholds and an in-memory ground truth, must be recomputed)."""
    from distributed import WorkerPlugin

    class KillOnce(WorkerPlugin):
        """Exit the worker process when a shard task starts, once per marker file."""

        def __init__(self, markers):
            self.markers = markers

        def transition(self, key, start, finish, **kwargs):
            if finish == "executing" and str(key).startswith("lveval-shard-") and _claim(self.markers):
                os._exit(1)

    markers = [str(tmp_path / f"killed-{i}") for i in range(kills)]
    res = simulate(lvis_path, seed=3, candidates_per_image=400)
    single = lveval.evaluate(lvis_path, res)
    gt = json.load(open(lvis_path)) if gt_in_memory else lvis_path
    dask_client.wait_for_workers(2, timeout=60)
    pids_before = set(dask_client.run(os.getpid).values())
    dask_client.register_plugin(KillOnce(markers), name="kill-once")
    try:
        sharded = sharded_evaluate(gt, res, client=dask_client, shards=6)
    finally:
        dask_client.unregister_worker_plugin("kill-once")
    assert all(os.path.exists(m) for m in markers)     # that many workers did die during the run
    dask_client.wait_for_workers(2, timeout=60)
    assert set(dask_client.run(os.getpid).values()) != pids_before   # the nanny restarted it
    expect = single.to_dict()
    if gt_in_memory:   # no file, no digest
        expect["inputs"]["gt"] = None
    assert sharded.to_dict() == expect
    for p in ("old", "fixed"):
        assert np.array_equal(sharded.precision[p], single.precision[p])
    assert np.array_equal(sharded.pooled_precision["all"], single.pooled_precision["all"])
