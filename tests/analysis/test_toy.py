"""The paper's toy example (Section 3.2, Figure 2) through the engine."""
import json

import pytest

from lveval.analysis import toy


@pytest.fixture(scope="module")
def fig():
    return toy.run()


def test_capped_values_match_the_paper(fig):
    # Paper, Section 3.2 and Figure 2(c)/(d): Ranking 1 -> 0.5, Ranking 2 -> 0.65 with 2 dets/image.
    assert round(fig.ranking1["capped"], 2) == 0.50
    assert round(fig.ranking2["capped"], 2) == 0.65
    assert fig.ranking2["capped"] > fig.ranking1["capped"]


def test_exact_values_follow_101_point_interpolation(fig):
    # One TP of two objects at precision 1: recall thresholds 0.00..0.50 (51 of 101) have precision 1.
    a_half = 51 / 101
    assert fig.ranking1["capped"] == pytest.approx(0.8 * (1 + 0) / 2 + 0.2 * (1 + 0) / 2, abs=1e-12)
    assert fig.ranking2["capped"] == pytest.approx(0.8 * (a_half + 1) / 2 + 0.2 * (a_half + 0) / 2, abs=1e-12)
    s1, s2 = fig.details["ranking2"]["capped"]["scenarios"]
    assert s1["engine_per_class"]["A"] == pytest.approx(a_half, abs=1e-12)
    assert s1["engine_per_class"]["B"] == pytest.approx(1.0, abs=1e-12)
    # the engine (like lvis-api) leaves class B undefined where it has no ground truth ...
    assert s2["engine_per_class"]["B"] == -1.0
    # ... and the paper's convention scores it 0
    assert s2["per_class"]["B"] == 0.0


def test_uncapped_rankings_are_equal(fig):
    # Without a cap per-class AP ignores cross-class order: A = 1, B = 1 (p 0.8) or 0 (p 0.2).
    assert fig.ranking1["uncapped"] == fig.ranking2["uncapped"]
    assert fig.ranking1["uncapped"] == pytest.approx(0.8 * (1 + 1) / 2 + 0.2 * (1 + 0) / 2, abs=1e-12)
    # the caption's 0.75 is the equal-weight average of the two scenarios
    assert fig.caption_check["uncapped_equal_weights"] == pytest.approx(0.75, abs=1e-12)


def test_lvis_api_convention_differs(fig):
    # Dropping the undefined class B in scenario 2 instead: 0.8 * 0.5 + 0.2 * 1.0 = 0.6 for Ranking 1.
    assert fig.details["ranking1"]["capped"]["lvis_convention"] == pytest.approx(0.6, abs=1e-12)


def test_gaming_policy_produces_ranking2():
    # top 1 per class over the dataset (A1 wins the A tie by file order, as lvis-api's stable sort), then cap 2
    assert toy.gamed_ranking2_selection() == ["A1", "B1"]


def test_cli_json(run_cli, tmp_path):
    out = tmp_path / "toy.json"
    rc, text, _ = run_cli("toy", "--json", out)
    assert rc == 0
    assert "the engine agrees" in text and "0.75" in text
    d = json.loads(out.read_text())
    assert set(d["ranking1"]) == {"capped", "uncapped"} and set(d["ranking2"]) == {"capped", "uncapped"}
    assert round(d["ranking2"]["capped"], 2) == 0.65
