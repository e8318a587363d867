"""A worker killed in the middle of a sharded evaluation: Dask reruns its tasks, figures stay exact."""
import os

import numpy as np

import lveval
from lveval.distributed import evaluate as sharded_evaluate
from lveval.simulate import simulate


def test_worker_killed_mid_run(dask_client, lvis_path, tmp_path):
    from distributed import WorkerPlugin

    class KillOnce(WorkerPlugin):
        """Exit the worker process the first time a shard task starts (a marker file says it happened)."""

        def __init__(self, marker):
            self.marker = marker

        def transition(self, key, start, finish, **kwargs):
            if finish == "executing" and str(key).startswith("lveval-shard-") and not os.path.exists(self.marker):
                open(self.marker, "w").close()
                os._exit(1)

    marker = str(tmp_path / "killed")
    res = simulate(lvis_path, seed=3, candidates_per_image=400)
    single = lveval.evaluate(lvis_path, res)
    pids_before = set(dask_client.run(os.getpid).values())
    dask_client.register_plugin(KillOnce(marker), name="kill-once")
    try:
        sharded = sharded_evaluate(lvis_path, res, client=dask_client, shards=6)
    finally:
        dask_client.unregister_worker_plugin("kill-once")
    assert os.path.exists(marker)                      # a worker did die during the run
    dask_client.wait_for_workers(2, timeout=60)
    assert set(dask_client.run(os.getpid).values()) != pids_before   # the nanny restarted it
    assert sharded.to_dict() == single.to_dict()
    for p in ("old", "fixed"):
        assert np.array_equal(sharded.precision[p], single.precision[p])
    assert np.array_equal(sharded.pooled_precision["all"], single.pooled_precision["all"])
