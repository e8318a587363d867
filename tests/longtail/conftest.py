"""Shared fixtures for the lveval.longtail tests (torch is imported lazily)."""

from pathlib import Path

import pytest

import lveval

CAT_INFO = Path(lveval.data_path("lvis_v1_train_cat_info.json"))


@pytest.fixture(scope="session")
def lvis_stats():
    """LVIS v1 train class statistics (1,203 classes, 100,170 images)."""
    pytest.importorskip("torch")
    from lveval.longtail.stats import ClassStats

    return ClassStats.from_cat_info(CAT_INFO)


@pytest.fixture(scope="session")
def cat_info_path():
    """Path of the bundled LVIS v1 train cat-info."""
    return CAT_INFO


@pytest.fixture(scope="session", autouse=True)
def _single_torch_thread():
    """The tensors here are tiny: one intra-op thread is faster, above all on a busy CPU."""
    try:
        import torch
    except ImportError:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
