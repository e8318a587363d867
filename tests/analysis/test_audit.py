"""``lveval audit`` end to end on generated data (LVIS and COCO rules)."""
import json
import os
import stat

from lveval.metrics import evaluate
from tests.support.gen import make_dataset

PNG = b"\x89PNG\r\n\x1a\n"


def _files(tmp_path, kind):
    gt, res = make_dataset(11, kind=kind, n_images=6, n_cats=9, max_gt=10, max_dets=40, score_levels=8)
    g, r = tmp_path / "gt.json", tmp_path / "res.json"
    g.write_text(json.dumps(gt))
    r.write_text(json.dumps(res))
    return gt, res, g, r


def test_audit_lvis(run_cli, tmp_path):
    gt, res, g, r = _files(tmp_path, "lvis")
    out = tmp_path / "audit"
    rc, text, err = run_cli("audit", g, r, "--out", out, "--max-dets-per-image", 8, "--max-dets-per-class", 6)
    assert rc == 0, err
    assert "Report AP-Fixed" in text and "index.html" in text
    fig = json.loads((out / "figures.json").read_text())
    ref = evaluate(gt, res, max_dets_per_image=8, max_dets_per_class=6)
    assert fig["protocols"]["old"] == ref.old
    assert fig["protocols"]["fixed"] == ref.fixed
    assert fig["protocols"]["pooled"] == ref.pooled
    assert {"cap", "rerank", "budget", "scores", "protocols", "recommendation"} <= set(fig["findings"])
    assert fig["dets_per_image"][-1]["cap"] is None        # the no-cap end of the sweep
    assert fig["counts"]["num_detections"] == len(res)
    pngs = [f for f in fig["files"] if f.endswith(".png")]
    assert set(pngs) == {"protocols.png", "cap_sweep.png", "rerank.png", "budget_sweep.png", "scores.png",
                         "subsets.png"}
    page = (out / "index.html").read_text()
    md = (out / "report.md").read_text()
    for p in pngs:
        assert (out / p).read_bytes()[:8] == PNG
        assert f'src="{p}"' in page and f"]({p})" in md
    assert 'href="report.md"' in page and "What to report" in md
    for f in fig["files"]:
        assert stat.S_IMODE(os.stat(out / f).st_mode) == 0o644


def test_audit_coco_skips_frequency_sections(run_cli, tmp_path):
    gt, res, g, r = _files(tmp_path, "coco")
    out = tmp_path / "audit"
    rc, _, err = run_cli("audit", g, r, "--out", out)
    assert rc == 0, err
    fig = json.loads((out / "figures.json").read_text())
    assert "scores" not in fig and "subsets" not in fig
    assert "APr" not in fig["protocols"]["fixed"]
    assert (out / "index.html").exists()


def test_audit_demo_findings(demo, tmp_path):
    from lveval.analysis.audit import run_audit
    from lveval.analysis.common import Session

    gt, res, _ = demo
    s = Session.load(gt, res)
    fig = run_audit(s)
    f = fig.findings
    assert f["rerank"]["gameable"] and f["rerank"]["delta_AP_fixed"] <= 0
    assert f["cap"]["delta_AP"] > 0
    assert fig.counts.images_at_max == 1.0 and "capped per image" in f["budget"]["text"]
    assert f["scores"]["rare_vs_frequent"] < 0.8
