"""Behaviour kept: every golden case prints and writes what it did before the options refactor.

The goldens in data/ were recorded by ``cases.record`` on the commit before the refactor; a
change of any figure, key, printed line or written byte (timing fields aside) fails here.
"""
from __future__ import annotations

import json
import os

import pytest

from .cases import CASES, make_inputs, run_case

GOLDEN = os.path.join(os.path.dirname(__file__), "data")


@pytest.fixture(scope="module")
def places(tmp_path_factory):
    return make_inputs(str(tmp_path_factory.mktemp("golden_in")))


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name, places, tmp_path):
    with open(os.path.join(GOLDEN, name + ".json")) as f:
        want = json.load(f)
    got = json.loads(json.dumps(run_case(name, places, str(tmp_path))))   # same normalisation
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == want[k], f"{name}: {k} differs from the recorded output"
