"""Splits (k-fold over images, oracle, train/test), the Table 8 bench and ``lveval calibrate`` commands."""
from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

import lveval
from lveval.calibrate import (
    BenchEntry,
    BenchResult,
    CalibrationError,
    CalibrationSet,
    GroupedCalibrator,
    bench,
    cross_fit,
    fit_apply,
    format_table,
    image_folds,
    oracle,
    subset_dataset,
    subset_results,
)
from lveval.cli import main
from lveval.cli.calibrate import split_method_list
from lveval.exceptions import InputError
from lveval.simulate import simulate


@pytest.fixture(scope="module")
def small(lvis_dataset, tmp_path_factory):
    """40 images, two independent simulated runs with 150 candidates per image, written to files."""
    ids = sorted(im["id"] for im in lvis_dataset["images"])[:40]
    gt = subset_dataset(lvis_dataset, ids)
    d = tmp_path_factory.mktemp("cal")
    paths = {"gt": d / "gt.json", "train": d / "train.json", "test": d / "test.jsonl"}
    paths["gt"].write_bytes(orjson.dumps(gt))
    paths["train"].write_bytes(orjson.dumps(simulate(gt, seed=3, candidates_per_image=150)))
    paths["test"].write_bytes(b"\n".join(orjson.dumps(r) for r in simulate(gt, seed=4, candidates_per_image=150)))
    return {k: str(v) for k, v in paths.items()}


# --------------------------------------------------------------------------- splits


def test_image_folds_partition_deterministically():
    ids = np.arange(100, 123)
    folds = image_folds(ids[::-1], 4, seed=7)
    assert sorted(np.concatenate(folds).tolist()) == ids.tolist()
    assert sorted(len(f) for f in folds) == [5, 6, 6, 6]
    again = image_folds(ids, 4, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again))
    other = image_folds(ids, 4, seed=8)
    assert not all(np.array_equal(a, b) for a, b in zip(folds, other))
    for bad in (1, 24):
        with pytest.raises(InputError):
            image_folds(ids, bad)


def test_cross_fit_uses_a_model_fit_on_the_other_folds(small):
    data = CalibrationSet.load(small["gt"], small["test"])
    factory = lambda: GroupedCalibrator("platt")  # noqa: E731
    got = cross_fit(factory, data, 3, seed=1)
    folds = image_folds(data.gt.img_ids, 3, seed=1)
    gt_dict = data.gt.dataset
    for _i, fold in enumerate(folds):
        others = np.setdiff1d(data.gt.img_ids, fold)
        # a ground truth with only the other folds' images, but every category
        train = CalibrationSet.load(subset_dataset(gt_dict, others), subset_results(small["test"], others))
        cal = factory().fit_samples(train.gt, train.labeller.samples())
        rows = np.flatnonzero(np.isin(data.dets.img_id, fold))
        np.testing.assert_array_equal(got[rows], cal.predict(data.dets.cat_id[rows], data.dets.score[rows]))


def test_oracle_fits_on_the_test_set_itself(small):
    data = CalibrationSet.load(small["gt"], small["test"])
    got, cal = oracle(lambda: GroupedCalibrator("isotonic"), data)
    want = GroupedCalibrator("isotonic").fit(small["gt"], small["test"])
    assert cal.to_dict() == want.to_dict()
    np.testing.assert_array_equal(got, want.apply(small["test"]).score)
    same, _ = fit_apply(lambda: GroupedCalibrator("isotonic"), data, data)
    np.testing.assert_array_equal(got, same)


# --------------------------------------------------------------------------- bench


def test_bench_layout_and_figures(small, tmp_path):
    res = bench(small["gt"], small["test"], train_gt=small["gt"], train_results=small["train"],
                methods=["platt", "isotonic"], plots_dir=tmp_path / "plots")
    assert isinstance(res, BenchResult)
    assert list(res.methods) == ["platt", "isotonic"] and list(res.oracle) == ["platt", "isotonic"]
    ref = lveval.evaluate(small["gt"], small["test"]).to_dict()
    assert res.uncalibrated.pooled == ref["pooled"]
    assert res.uncalibrated.fixed == ref["fixed"]
    variants = [res.uncalibrated, *res.methods.values(), *res.oracle.values()]
    for v in variants:
        assert isinstance(v, BenchEntry) and isinstance(v.ece_detail, CalibrationError)
        assert set(v.pooled) == set(ref["pooled"]) and set(v.fixed) == set(ref["fixed"])
        assert isinstance(v.ece, float) and 0 <= v.ece <= 1 and v.ece == v.ece_detail.overall
        assert set(v.ece_detail.by_frequency) <= {"r", "c", "f"}
        assert isinstance(v.ece_detail.num_samples, int) and isinstance(v.ece_detail.n_bins, int)
    # each method's figures are those of its calibrated results, evaluated by lveval.evaluate
    cal = GroupedCalibrator("platt").fit(small["gt"], small["train"])
    r = lveval.evaluate(small["gt"], cal.apply(small["test"]))
    platt = res.methods["platt"]
    assert platt.pooled == r.pooled and platt.fixed == r.fixed
    assert platt.fixed == pytest.approx(ref["fixed"], abs=1e-12)
    # calibration on the test set itself lowers its calibration error
    assert res.oracle["isotonic"].ece < res.uncalibrated.ece
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {
        "uncalibrated.png", "platt.png", "isotonic.png", "oracle_platt.png", "oracle_isotonic.png"}
    text = format_table(res)
    lines = text.splitlines()
    assert lines[2].startswith("Uncalibrated") and lines[3].startswith("Platt scaling")
    assert "Calibrate on the test set (upper-bound oracle)" in lines
    gain = 100 * (platt.pooled["AP"] - res.uncalibrated.pooled["AP"])
    assert f"({gain:+.1f})" in lines[3]
    # the JSON form: method specs beside "uncalibrated", "oracle" and "settings", as written before
    d = json.loads(json.dumps(res.to_dict()))
    assert list(d) == ["uncalibrated", "platt", "isotonic", "oracle", "settings"]
    assert set(d["oracle"]) == {"platt", "isotonic"}
    for v in [d["uncalibrated"], d["platt"], d["isotonic"], *d["oracle"].values()]:
        assert set(v) == {"pooled", "fixed", "ece", "ece_detail"}
        assert set(v["ece_detail"]) == {"overall", "mean_per_class", "by_frequency", "mean_per_class_by_frequency",
                                        "num_samples", "num_positives", "n_bins"}
    assert d["platt"] == platt.to_dict() and format_table(d) == text   # the table of a saved output
    # dict-style reading (deprecated) still works, method specs included
    assert set(res) == set(d) and res["platt"] is platt and res["oracle"]["isotonic"]["ece"] == res.oracle["isotonic"].ece


def test_bench_kfold(small):
    res = bench(small["gt"], small["test"], kfold=2, seed=0, methods=["beta"], with_oracle=False)
    assert list(res.methods) == ["beta"] and res.oracle is None and "oracle" not in res.to_dict()
    assert res.settings["fit_on"] == "kfold" and res.settings["kfold"] == 2
    data = CalibrationSet.load(small["gt"], small["test"])
    scores = cross_fit(lambda: GroupedCalibrator("beta"), data, 2, seed=0)
    r = lveval.evaluate(small["gt"], data.with_scores(scores))
    assert res.methods["beta"].pooled == r.pooled
    assert "2-fold cross-fitting" in format_table(res)


def test_bench_with_unknown_categories_skipped(small):
    """--on-unknown-category skip is a loading option; it used to reach the calibrator's own
    ``on_unknown_category`` (error/keep/zero) and stop the bench."""
    kw = dict(train_gt=small["gt"], train_results=small["train"], methods=["platt"], with_oracle=False)
    res = bench(small["gt"], small["test"], on_unknown_category="skip", **kw)
    assert res.methods["platt"] == bench(small["gt"], small["test"], **kw).methods["platt"]


def test_bench_needs_exactly_one_calibration_source(small):
    with pytest.raises(InputError):
        bench(small["gt"], small["test"])
    with pytest.raises(InputError):
        bench(small["gt"], small["test"], train_gt=small["gt"], train_results=small["train"], kfold=2)
    with pytest.raises(InputError):
        bench(small["gt"], small["test"], train_gt=small["gt"], kfold=None)


# --------------------------------------------------------------------------- CLI


def test_cli_fit_apply_evaluate(small, tmp_path, capsys):
    model, out = tmp_path / "model.json", tmp_path / "cal.parquet"
    assert main(["calibrate", "fit", "--gt", small["gt"], "--results", small["train"], "--method", "bbq:scoring=BIC",
                 "--grouping", "per-class", "--out", str(model)]) == 0
    assert "bbq calibrator(s)" in capsys.readouterr().out
    m = json.loads(model.read_text())
    assert m["method"] == "bbq" and m["method_params"] == {"scoring": "BIC"} and m["grouping"] == "per-class"
    assert main(["calibrate", "apply", str(model), small["test"], "--out", str(out)]) == 0
    want = GroupedCalibrator.load(model).apply(small["test"])
    evaluated = tmp_path / "eval.json"
    assert main(["evaluate", small["gt"], str(out), "--json", str(evaluated)]) == 0
    assert json.loads(evaluated.read_text())["pooled"] == lveval.evaluate(small["gt"], want).pooled


def test_cli_bench_writes_json(small, tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["calibrate", "bench", "--gt", small["gt"], "--results", small["test"], "--kfold", "2",
                 "--methods", "platt,histogram", "--no-oracle", "--json", str(out), "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "Platt scaling" in text and "Histogram binning" in text
    d = json.loads(out.read_text())
    assert set(d) == {"uncalibrated", "platt", "histogram", "settings"}


def test_cli_errors_exit_2(small, tmp_path, capsys):
    assert main(["calibrate", "bench", "--gt", small["gt"], "--results", small["test"]]) == 2
    assert main(["calibrate", "fit", "--gt", small["gt"], "--results", small["train"], "--method", "svm",
                 "--out", str(tmp_path / "m.json")]) == 2
    assert not (tmp_path / "m.json").exists()
    assert main(["calibrate", "apply", small["gt"], small["test"], "--out", str(tmp_path / "c.json")]) == 2
    assert not (tmp_path / "c.json").exists()
    assert main(["calibrate"]) == 2
    err = capsys.readouterr().err
    assert err.count("lveval: error:") == 3


def test_method_list_splitting():
    assert split_method_list(["histogram,bbq:binning=uniform,prune=elbow,platt", "beta"]) == [
        "histogram", "bbq:binning=uniform,prune=elbow", "platt", "beta"]
