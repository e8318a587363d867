"""``lveval errors`` on the command line and ``lveval.errors`` as a function."""
from __future__ import annotations

import json

import pytest

import lveval
from lveval.error_analysis import TYPES
from tests.support.cli import cli_runner


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run ``lveval ARGS`` with only ``lveval errors`` registered."""
    return cli_runner(monkeypatch, capsys, "lveval.cli.errors")


def test_top_level_function_is_callable(coco_paths):
    import lveval.exceptions  # noqa: F401 -- importing the exception module must not shadow the function
    r = lveval.errors(coco_paths["gt"], coco_paths["bbox"], protocols=["fixed"])
    assert set(r.figures) == {"fixed"}
    assert callable(lveval.errors) and "top_confusions" in lveval.errors.__code__.co_varnames


def test_demo_json_layout_and_html(run_cli, tmp_path):
    out, html_dir = tmp_path / "e.json", tmp_path / "html"
    rc, text, err = run_cli("errors", "--demo", "--json", out, "--html", html_dir, "--quiet")
    assert rc == 0 and "AP-Fixed selection" in text and "AP-Old selection" in text
    d = json.loads(out.read_text())
    for sel in ("fixed", "old"):
        f = d[sel]
        assert set(f["dAP"]) == set(TYPES) and set(f["counts"]) == set(TYPES)
        assert set(f["dAP_special"]) == {"fp", "fn"}
        assert set(f["by_frequency"]) == {"r", "c", "f"}
        assert set(f["by_frequency"]["c"]["dAP"]) == set(TYPES)
        assert f["confusions"] and {"detected", "true", "count", "dAP"} <= set(f["confusions"][0])
        assert 0 <= f["AP50"] <= 1
    page = (html_dir / "errors.html").read_text()
    assert 'class="sortable"' in page and "FalseNeg" in page and "baby" in page


def test_one_protocol_and_bad_input(run_cli, tmp_path, coco_paths):
    out = tmp_path / "e.json"
    rc, text, _ = run_cli("errors", coco_paths["gt"], coco_paths["bbox"], "--protocol", "old", "--json", out)
    assert rc == 0
    d = json.loads(out.read_text())
    assert "old" in d and "fixed" not in d and d["old"]["by_frequency"] == {}
    bad = tmp_path / "bad.json"
    bad.write_text('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": "x"}]')
    rc, _, err = run_cli("errors", coco_paths["gt"], bad)
    assert rc == 2 and "score" in err and err.count("\n") == 1


def test_report_errors_section(tmp_path, coco_paths):
    from lveval.report.build import build_report

    page = build_report(coco_paths["gt"], coco_paths["bbox"], str(tmp_path), errors=True,
                        protocols=["old", "fixed"])
    text = open(page).read()
    assert 'href="#errors-fixed"' in text and 'id="errors-old"' in text
    d = json.loads((tmp_path / "errors.json").read_text())
    assert d["fixed"]["counts"] == lveval.errors(coco_paths["gt"], coco_paths["bbox"])["fixed"]["counts"]
