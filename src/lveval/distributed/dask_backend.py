"""Sharded evaluation on Dask distributed.

The graph: (AP-Old only, LVIS rules) one ``cap_candidates`` task per chunk
of rows, whose top-N-per-image lists the driver merges as they arrive into
each image's threshold (at most N rows per image: the driver's memory, not
a worker's); then one ``evaluate_shard`` task per class shard, given the
thresholds; the driver gathers the shard results and reduces them. Every
task is a pure function of its inputs, so when a worker dies the scheduler
reruns its tasks elsewhere (rows in memory travel inside the task, files
are read again) and the figures do not change.
"""
from __future__ import annotations

import contextlib
import os
import time
import uuid
import warnings
from typing import Any

from ..exceptions import InputError, OptionError
from ..io.gt import load_gt
from ..metrics import EvalResult, input_digest, make_params
from ..params import Params
from . import reduce, shard, work

MERGE_MIN_ROWS = 1 << 20   # candidates gathered before the driver merges them


def _import_distributed():
    try:
        import distributed
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError("sharded evaluation needs Dask distributed: "
                                  "pip install 'lveval[distributed]'") from exc
    return distributed


@contextlib.contextmanager
def client_for(client=None, workers: int | None = None, scheduler: str | None = None, *,
               security=None, insecure_scheduler: bool = False):
    """``client`` as given; else a Client of ``scheduler`` (checked first: see :mod:`.trust`; ``security``:
    Dask's ``Security`` for tls://, default from Dask's configuration); else a local cluster of
    ``workers`` processes (one thread each); else the current default client, or a local cluster."""
    distributed = _import_distributed()
    if client is not None:
        yield client
        return
    if scheduler:
        from . import trust

        if not isinstance(scheduler, trust.Checked):
            scheduler, security = trust.check_scheduler(scheduler, insecure=insecure_scheduler, security=security)
        try:
            c = distributed.Client(scheduler, security=security, timeout=trust.CONNECT_TIMEOUT * 2)
        except (OSError, TimeoutError) as exc:
            from ..exceptions import InputError

            raise InputError(f"--scheduler: cannot connect to {scheduler} ({exc})".split("\n")[0][:300]) from None
        with c:
            yield c
        return
    if workers is None:
        try:
            current = distributed.get_client()
        except ValueError:   # no client in this process
            current = None
        if current is not None:
            yield current
            return
        workers = os.cpu_count() or 1
    with local_cluster(int(workers)) as cluster, distributed.Client(cluster) as c:
        yield c


def local_cluster(n_workers: int, **kwargs):
    """A ``LocalCluster`` of ``n_workers`` single-threaded processes for evaluation.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which
    also turns off glibc's adaptive mmap threshold: every large numpy
    temporary is then a fresh mmap, and a shard task spends more time in page
    faults than in numpy (measured 2-3x slower, see docs/distributed.md).
    Workers started here keep the other pre-spawn settings but not that one.
    """
    import dask

    distributed = _import_distributed()
    env = {k: v for k, v in (dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {}).items()
           if k != "MALLOC_TRIM_THRESHOLD_"}
    opts = dict(threads_per_worker=1, processes=True, dashboard_address=":0")
    opts.update(kwargs)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env}), _children_ignore_sigint():
        return distributed.LocalCluster(n_workers=n_workers, **opts)


@contextlib.contextmanager
def _children_ignore_sigint():
    """Worker processes started inside the block ignore SIGINT (an ignored signal stays ignored across
    fork and exec): Ctrl-C reaches the whole process group, and the driver alone handles it (removes its
    temporary files, closes the cluster, prints one line) instead of every worker printing a traceback.
    The price: a Ctrl-C during the cluster's start (a second or two) is ignored."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def submit_task(c, fn, *args, key):
    """``c.submit`` of an impure task under ``key``; large arguments may travel inside it."""
    with warnings.catch_warnings():   # shards in memory travel inside their tasks, on purpose
        warnings.filterwarnings("ignore", message=".*[Ll]arge graph.*")
        warnings.filterwarnings("ignore", message=".*[Ll]arge object.*")
        return c.submit(fn, *args, key=key, pure=False)


def hold(c, value, key: str):
    """``value`` as a task's result on the cluster, for many tasks to share.

    Unlike ``scatter``, a task can be recomputed: when every worker holding
    the value dies, the scheduler runs it again from the graph instead of
    cancelling the tasks that need it.
    """
    return submit_task(c, work.identity, value, key=key)


def collect(futures, on_result=None) -> list:
    """Results in task order, each fetched as soon as it is done and released on its worker,
    so a worker never holds more than its unfetched results. ``on_result(result)`` consumes
    results as they come instead (the list then holds None). Raises the error the engine
    would meet first when tasks failed (after every task has finished)."""
    distributed = _import_distributed()
    index = {f.key: i for i, f in enumerate(futures)}
    out = [None] * len(futures)
    errors = []
    for f in distributed.as_completed(futures):
        if f.status == "error":
            errors.append(f.exception())
        elif not errors:
            r = f.result()
            if on_result is None:
                out[index[f.key]] = r
            else:
                on_result(r)
        f.release()
    if errors:
        raise _first_error(errors)
    return out


def _thresholds(futures, n: int, num_images: int):
    """Merge the chunks' top-N lists as they arrive (on the driver) into each image's threshold.

    The running merge holds at most N rows per image. An arriving row whose
    score is below its image's current N-th best can never make the final
    top N and is dropped at once; the rest are merged in batches at least as
    large as the running set, so the driver's work stays near linear.
    """
    import numpy as np

    state = {"merged": None, "pending": [], "size": 0, "floor": np.full(num_images, -np.inf), "thr": None}

    def merge():
        merged, thr = work.merge_candidates(n, *([state["merged"]] if state["merged"] else []),
                                            *state["pending"], num_images=num_images)
        state.update(merged=merged, thr=thr, floor=thr.score, pending=[], size=0)

    def add(part):
        keep = part.score >= state["floor"][part.img]
        state["pending"].append(work.Candidates(part.img[keep], part.score[keep], part.record[keep]))
        state["size"] += int(keep.sum())
        held = len(state["merged"].record) if state["merged"] else 0
        if state["size"] >= max(held, MERGE_MIN_ROWS):
            merge()

    collect(futures, on_result=add)
    if state["pending"] or state["merged"] is None:
        merge()
    return state["thr"]


def _spill(results: Any, local: bool) -> bool:
    """Whether the shards of ``results`` go through a temporary partition on this machine's disk.

    Only for a cluster started here (its workers share this disk) and a JSON or
    JSON Lines file: shipped in memory, its rows would be held by the driver
    (and the in-process scheduler) and by the workers at once, about twice
    the single-process footprint; read back from class-partitioned Parquet,
    each worker holds only the shard it evaluates.
    """
    return (local and isinstance(results, (str, os.PathLike)) and os.path.isfile(results)
            and not shard.is_partition(results) and not shard.is_parquet(results))


def _partition_locally(results: Any, num_shards: int, scratch: contextlib.ExitStack) -> str:
    """``results`` written as a class partition in a temporary directory removed on exit."""
    import tempfile

    tmp = scratch.enter_context(tempfile.TemporaryDirectory(prefix="lveval-shards-"))
    shard.partition(results, tmp, num_shards)
    return tmp


def _first_error(errors: list) -> BaseException:
    """The input error with the lowest (check, record) order, as bind meets them; else the first error."""
    inputs = [e for e in errors if isinstance(e, InputError)]
    if inputs:   # bind checks all rows' scores, then boxes, images, categories, masks: same order here
        return min(inputs, key=lambda e: (_CHECK_ORDER.get(e.field, 5) if e.record is not None else 1,
                                          e.record or 0))
    return errors[0]


_CHECK_ORDER = {"score": 0, "bbox": 2, "image_id": 3, "category_id": 4}


def evaluate(gt: Any, results: Any, params: Params | None = None, *, client=None, workers: int | None = None,
             shards: int | None = None, progress: bool = False, scheduler: str | None = None, security=None,
             insecure_scheduler: bool = False, **options: Any) -> EvalResult:
    """``lveval.evaluate`` sharded by class on a Dask cluster; the same figures, exactly.

    ``client``: a ``distributed.Client``; or ``scheduler``: its address (tls:// with ``security``, Dask's
    ``Security``, or from Dask's configuration; plain tcp:// only to loopback unless
    ``insecure_scheduler``: a scheduler can run code in this process); or
    ``workers``: start a local cluster of that many processes for this call.
    ``shards``: number of class shards (default: 4 per worker thread; a
    class-partitioned directory keeps its own). ``results`` may also be a
    directory written by :func:`lveval.distributed.partition`. Returns an
    :class:`lveval.metrics.EvalResult` without ``matching`` (no single
    process holds one); ``result.shard_stats`` lists each shard's rows,
    time and memory, ``result.timings`` each stage's wall time.
    """
    from ..progress import Stages

    base = make_params(params, **options)
    if base.class_agnostic or base.max_dets is not None:
        raise OptionError("class_agnostic" if base.class_agnostic else "max_dets",
                          "not available in a sharded evaluation (shards are classes); run it in one process")
    protocols, dataset = base.protocols, base.dataset
    bar = Stages(["ground truth", "sharding", "AP-Old caps", "shards", "reducing"], enabled=progress)
    timings: dict = {}

    @contextlib.contextmanager
    def stage(label: str, key: str):
        bar.start(label)
        t = time.perf_counter()
        yield
        timings[key] = time.perf_counter() - t
        bar.done()

    try:
        with stage("loading ground truth", "gt"):
            g = load_gt(gt, dataset=dataset)
            params = base.resolve(g.kind)
        with contextlib.ExitStack() as scratch, \
                client_for(client, workers, scheduler, security=security, insecure_scheduler=insecure_scheduler) as c:
            with stage("sharding results", "sharding"):
                nthreads = max(1, sum(c.nthreads().values()))
                if _spill(results, local=workers is not None and client is None and scheduler is None):
                    results = _partition_locally(results, shards or 4 * nthreads, scratch)
                sh = shard.open_sharded(results, g, shards or 4 * nthreads)
                ref = work.gt_ref(gt, dataset)
                token = uuid.uuid4().hex[:12]
                gt_arg = ref if ref is not None else hold(c, g, key=f"lveval-gt-{token}")
            thr = None
            n = params.max_dets_per_image
            with stage("AP-Old: per-image caps", "caps"):   # LVIS rules only: COCO caps per image and class
                if "old" in protocols and g.kind == "lvis" and n is not None and n > 0 and sh.cap_chunks:
                    cands = [submit_task(c, work.cap_candidates, ch, gt_arg, n, key=f"lveval-cap-{token}-{i}")
                             for i, ch in enumerate(sh.cap_chunks)]
                    thr = hold(c, _thresholds(cands, n, g.num_images), key=f"lveval-thresholds-{token}")
                    del cands
            with stage("evaluating shards", "shards"):
                futs = [submit_task(c, work.evaluate_shard, src, gt_arg, cats, params, protocols, thr,
                                key=f"lveval-shard-{token}-{i}")
                        for i, (src, cats) in enumerate(zip(sh.shards, sh.gt_cats))]
                parts = collect(futs)
                del futs, thr, gt_arg
        with stage("reducing", "reduce"):
            inputs = {"gt": input_digest(gt, g.digest), "results": sh.digest}
            res = reduce.assemble(g, params, protocols, parts, sh.notices, inputs)
            res.shard_stats = [p["stats"] for p in parts]
        res.timings = timings
        return res
    finally:
        bar.close()
