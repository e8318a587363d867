"""The HTML report: content, self-containment, CLI, and a real rendering in headless Chromium."""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from lveval.cli import main
from lveval.report import build_report
from lveval.simulate import simulate

SECTIONS = ("protocols", "frequency", "pr-curves", "classes", "per-class", "scores", "calibration", "notices")


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory, lvis_path):
    res = simulate(lvis_path, seed=3, candidates_per_image=300)
    p = tmp_path_factory.mktemp("report") / "results.json"
    p.write_text(json.dumps(res))
    return str(p)


@pytest.fixture(scope="module")
def calibration_model(tmp_path_factory, lvis_path, sim_file):
    """A per-class Platt model as `lveval calibrate fit` writes it (needs lveval.calibrate)."""
    grouped = pytest.importorskip("lveval.calibrate.grouped")
    cal = grouped.GroupedCalibrator("platt")
    cal.fit(lvis_path, sim_file)
    p = tmp_path_factory.mktemp("cal") / "model.json"
    cal.save(str(p))
    return str(p)


@pytest.fixture(scope="module")
def report(tmp_path_factory, lvis_path, sim_file, calibration_model):
    out = tmp_path_factory.mktemp("out")
    path = build_report(lvis_path, sim_file, str(out), classes=["banana", "3"], calibration=calibration_model,
                        max_dets_per_image=100)
    return path


def test_figures_record_the_inputs_like_evaluate(report, lvis_path, sim_file):
    import lveval

    figs = json.load(open(os.path.join(os.path.dirname(report), "figures.json")))
    assert figs["inputs"] == lveval.evaluate(lvis_path, sim_file, protocols=["fixed"]).to_dict()["inputs"]
    assert figs["inputs"]["results"].startswith("sha256:")


def test_page_has_every_section_and_is_self_contained(report, lvis_dataset):
    page = open(report, encoding="utf-8").read()
    for s in SECTIONS:
        assert f'<section id="{s}">' in page, s
    # nothing is fetched: no external scripts, styles or images
    assert not re.search(r'(src|href)="(https?:)?//', page)
    imgs = re.findall(r'<img class="fig[^"]*" alt="([^"]*)" src="data:image/png;base64,', page)
    assert {"AP per frequency group", "precision-recall curves per protocol", "precision-recall of chosen classes",
            "score distributions", "reliability diagram"} <= set(imgs)
    rows = re.findall(r'<tr data-id="(\d+)"', page)
    assert len(rows) == len(lvis_dataset["categories"])
    assert "banana" in page and "ECE" in page
    figs = json.load(open(os.path.join(os.path.dirname(report), "figures.json")))
    assert f'id="value-fixed">{100 * figs["fixed"]["AP"]:.2f}<' in page
    assert figs["old"]["AP"] != figs["fixed"]["AP"]


def test_without_calibration_package_the_section_is_skipped(calibration_model, monkeypatch):
    from lveval.report.build import calibration_figure

    monkeypatch.setitem(sys.modules, "lveval.calibrate", None)     # as if the package were absent
    uri, note = calibration_figure(None, np.ones(3, bool), np.ones(3), np.zeros(3, int), calibration_model)
    assert uri is None and "not available in this installation" in note
    uri, note = calibration_figure(None, None, None, None, None)
    assert uri is None and "--calibration" in note


def test_simple_calibration_formats(tmp_path):
    cal = pytest.importorskip("lveval.calibrate")
    from lveval.report.build import load_calibration

    rng = np.random.default_rng(0)
    s = rng.random(400)
    y = (rng.random(400) < s ** 2).astype(int)
    platt = cal.make_calibrator("platt").fit(s, y)
    one, per = tmp_path / "one.json", tmp_path / "per.json"
    one.write_text(json.dumps(platt.to_dict()))
    per.write_text(json.dumps({"per_class": {"7": platt.to_dict()}, "fallback": None}))
    cats = np.array([7] * 200 + [8] * 200)
    np.testing.assert_array_equal(load_calibration(str(one))(cats, s), platt.predict(s))
    got = load_calibration(str(per))(cats, s)
    np.testing.assert_array_equal(got[:200], platt.predict(s[:200]))
    np.testing.assert_array_equal(got[200:], s[200:])          # no calibrator, no fallback: unchanged


def test_cli(tmp_path, lvis_path, capsys):
    small = tmp_path / "small.json"
    small.write_text(json.dumps(simulate(lvis_path, seed=1, candidates_per_image=40)))
    out = tmp_path / "rep"
    assert main(["report", lvis_path, str(small), "--out", str(out), "--protocols", "fixed,pooled",
                 "--classes", "banana"]) == 0
    assert (out / "report.html").exists() and (out / "figures.json").exists()
    page = (out / "report.html").read_text()
    assert "AP-Old (" not in page and "AP-Fixed (10,000/class)" in page
    assert main(["report", lvis_path, str(small), "--out", str(tmp_path / "x"), "--classes", "no_such_class"]) == 2
    assert "unknown class 'no_such_class'" in capsys.readouterr().err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium(args, timeout=120):
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              timeout=timeout)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_renders_in_headless_chromium(report, tmp_path):
    from matplotlib.image import imread

    shot = tmp_path / "shot.png"
    url = "file://" + os.path.abspath(report) + "#sort=ap_fixed-desc"     # the script sorts on load
    r = _chromium([f"--screenshot={shot}", "--dump-dom", "--window-size=1400,4000", url])
    assert shot.exists(), r.stderr.decode()[-2000:]
    img = imread(str(shot))[:, :, :3]
    assert img.shape[:2] == (4000, 1400)
    # the page is long: every 400-pixel band of the upper 3600 pixels shows content, not a flat colour
    bands = [img[y:y + 400].std() for y in range(0, 3600, 400)]
    assert min(bands) > 0.02, bands
    # the figures were decoded: some band has many distinct colours (anti-aliased plots)
    colours = max(len(np.unique((img[y:y + 400] * 255).astype(np.uint8).reshape(-1, 3), axis=0))
                  for y in range(0, 3600, 400))
    assert colours > 200
    # the DOM after scripts ran: all sections, and the table sorted by AP-Fixed, descending
    dom = r.stdout.decode()
    for s in SECTIONS:
        assert f'id="{s}"' in dom
    assert 'data-sorted="ap_fixed-desc"' in dom
    body = dom.split('id="class-table"')[1]
    vals = [float(v) for v in re.findall(r'<tr data-id="\d+">(?:<td[^>]*>.*?</td>){5}<td data-v="([-0-9.]+)"', body)]
    assert len(vals) > 1000 and vals == sorted(vals, reverse=True)
