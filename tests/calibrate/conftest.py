"""Shared data of the calibration tests: the bundled LVIS subset and two simulated detector runs.

The simulator (lveval.simulate) is under-confident on rare and common
classes; "train" and "test" are independent runs (seeds 0 and 1) on the same
100 images, so every class that can be calibrated on one is present in the
other -- the situation of the paper's Table 8, where the training set covers
the validation classes.
"""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sim_gt(lvis_path):
    from lveval.io import load_gt

    return load_gt(lvis_path)


@pytest.fixture(scope="session")
def sim_train(lvis_path):
    from lveval.simulate import simulate

    return simulate(lvis_path, seed=0)


@pytest.fixture(scope="session")
def sim_test(lvis_path):
    from lveval.simulate import simulate

    return simulate(lvis_path, seed=1)


@pytest.fixture(scope="session")
def train_set(sim_gt, sim_train):
    from lveval.calibrate import CalibrationSet

    return CalibrationSet.load(sim_gt, sim_train)


@pytest.fixture(scope="session")
def test_set(sim_gt, sim_test):
    from lveval.calibrate import CalibrationSet

    return CalibrationSet.load(sim_gt, sim_test)


@pytest.fixture(scope="session")
def test_baseline(sim_gt, test_set):
    import lveval

    return lveval.evaluate(sim_gt, test_set.dets, protocols=("fixed", "pooled"))
