"""Fast version of the CPU smoke run (paper Figure 3: losses tilt scores towards rare classes)."""

import pytest

pytest.importorskip("torch")

from lveval.longtail import smoke  # noqa: E402
from lveval.longtail.stats import GROUPS  # noqa: E402


@pytest.fixture(scope="module")
def results(lvis_stats):
    # the command-line defaults: K = 60, 300 steps of 256 proposals, seed 0 (about 2 s)
    return smoke.run(seed=0, lvis=lvis_stats)


def test_class_selection_follows_lvis_profile(lvis_stats):
    chosen = smoke.select_classes(lvis_stats, 60)
    assert {g: len(v) for g, v in chosen.group_indices().items()} == {"r": 17, "c": 23, "f": 20}
    assert chosen.num_images == 100_170
    assert smoke.scaled_federated_classes(60, 1203) == 2


def test_normalised_to_frequent(results):
    assert set(results) == {"softmax_ce", "sigmoid_bce", "eql", "federated", "bags"}
    for row in results.values():
        assert set(row) == set(GROUPS) and row["f"] == pytest.approx(1.0)
        assert 0 < row["r"] and 0 < row["c"]


@pytest.mark.parametrize("loss", ["eql", "federated", "bags"])
def test_long_tail_losses_are_more_uniform_than_softmax(results, loss):
    """Verified on seeds 0-7: rare/frequent and common/frequent both exceed softmax CE's."""
    assert results[loss]["r"] > results["softmax_ce"]["r"]
    assert results[loss]["c"] > results["softmax_ce"]["c"]


def test_command_line(capsys, cat_info_path):
    assert smoke.main(["--steps", "5", "--losses", "softmax_ce", "bags", "--cat-info", str(cat_info_path)]) == 0
    out = capsys.readouterr().out
    assert "normalised so frequent = 1.0" in out and "bags" in out and "federated |S|=2" in out
