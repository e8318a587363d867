"""A Dask LocalCluster of 2 worker processes shared by the distributed tests (start-up costs ~3 s)."""
import pytest


@pytest.fixture(scope="session")
def dask_client():
    distributed = pytest.importorskip("distributed")
    from lveval.distributed.dask_backend import local_cluster

    with local_cluster(2) as cluster, distributed.Client(cluster) as client:
        yield client
