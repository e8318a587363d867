"""Sharded evaluation by class on a Dask cluster, with the single-process engine's exact figures.

``lveval.distributed.evaluate(gt, results, client=..., workers=N, ...)``
takes the same keyword arguments as :func:`lveval.evaluate`;
:func:`partition` writes results as class-partitioned Parquet for large
runs. Needs the ``distributed`` extra (``pip install 'lveval[distributed]'``);
importing this package does not import Dask. See docs/distributed.md.
"""
from __future__ import annotations


def evaluate(*args, **kwargs):
    """Sharded :func:`lveval.evaluate`; see :func:`lveval.distributed.dask_backend.evaluate`."""
    from .dask_backend import evaluate as _evaluate
    return _evaluate(*args, **kwargs)


def partition(*args, **kwargs):
    """Class-partitioned Parquet; see :func:`lveval.distributed.shard.partition`."""
    from .shard import partition as _partition
    return _partition(*args, **kwargs)


__all__ = ["evaluate", "partition"]
