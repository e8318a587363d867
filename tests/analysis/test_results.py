"""Typed analysis results: ``to_dict()`` gives the JSON the CLI wrote before (the golden files),
fields have their documented types, and dict-style reading still works."""
import dataclasses
import json
import os
import types
import typing

import pytest

from lveval import analysis
from lveval.analysis import toy
from lveval.analysis.audit import run_audit
from lveval.analysis.nms import nms_sensitivity
from lveval.analysis.rerank import grid_for, rerank, rerank_grid
from lveval.analysis.scores import score_stats
from lveval.analysis.subsets import subsets
from lveval.analysis.sweep import sweep, time_separate
from lveval.output import json_bytes
from tests.golden.cases import strip_timing
from tests.support.gen import make_dataset

GOLDEN = os.path.join(os.path.dirname(os.path.dirname(__file__)), "golden", "data")


def _golden(case: str, name: str):
    with open(os.path.join(GOLDEN, case + ".json")) as f:
        return json.load(f)[name]


def _written(result) -> dict:
    """What write_json writes for the result, parsed back, timing aside (as the golden test)."""
    return strip_timing(json.loads(json_bytes(result.to_dict())))


def conforms(value, hint) -> bool:
    """``value`` has the type ``hint`` (dataclasses checked field by field)."""
    if hint is typing.Any:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(conforms(value, a) for a in args)
    if hint is type(None):
        return value is None
    if origin is list:
        return isinstance(value, list) and all(conforms(v, args[0]) for v in value) if args else isinstance(value, list)
    if origin is dict:
        return isinstance(value, dict) and all(conforms(k, args[0]) and conforms(v, args[1]) for k, v in value.items())
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, float)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, hint) and fields_conform(value)
    return isinstance(value, hint)


def fields_conform(obj) -> bool:
    hints = typing.get_type_hints(type(obj))
    bad = [f.name for f in dataclasses.fields(obj) if not conforms(getattr(obj, f.name), hints[f.name])]
    assert not bad, f"{type(obj).__name__}: fields {bad} do not have their declared types"
    return True


@pytest.fixture(scope="module")
def demo_results(demo):
    """The analyses of the golden cases, run in process on the same inputs (the bundled demo)."""
    _, _, s = demo
    return {"rerank": rerank(s, per_class=100, max_dets_per_image=300),
            "sweep": sweep(s, caps=[100, 300, -1], budgets=[50, 1000]),
            "subsets": subsets(s),
            "scores": score_stats(s),
            "nms": nms_sensitivity(s, [0.5, 0.7]),
            "toy": toy.run()}


@pytest.mark.parametrize("case", ["rerank", "sweep", "subsets", "scores", "nms", "toy"])
def test_to_dict_is_the_golden_json(demo_results, case):
    assert _written(demo_results[case]) == _golden(case, f"{case}.json")


def test_audit_to_dict_is_the_golden_figures(demo):
    _, _, s = demo
    fig = run_audit(s)
    want = _golden("audit", "audit/figures.json")
    assert fig.files == [] and "files" not in fig.to_dict()
    assert _written(dataclasses.replace(fig, files=want["files"])) == want


def test_fields_have_their_types(demo_results, demo):
    _, _, s = demo
    for res in demo_results.values():
        assert fields_conform(res)
    assert all(fields_conform(r) for r in rerank_grid(s, grid_for(s)))
    assert fields_conform(run_audit(s))


def test_types_without_frequencies_and_pools():
    """COCO rules: no score or subset sections; a sweep without AP-Pool leaves its rows' ``pooled`` None."""
    gt, res = make_dataset(2, kind="coco", n_images=4, n_cats=4, max_gt=6, max_dets=20, score_levels=6)
    s = analysis.Session.load(gt, res)
    sw = sweep(s, caps=[3, -1], budgets=[5], pooled=False)
    assert fields_conform(sw) and all(r.pooled is None for r in sw.dets_per_image + sw.dets_per_class)
    assert all("pooled" not in r for r in sw.to_dict()["dets_per_image"])
    fig = run_audit(s)
    assert fields_conform(fig) and fig.scores is None and fig.subsets is None
    assert fig.counts.classes_with_gt_by_frequency is None
    assert {"scores", "subsets"}.isdisjoint(fig.to_dict()) and "classes_with_gt_by_frequency" not in fig.to_dict()["counts"]
    sep = time_separate(gt, res, [3], [5])
    assert fields_conform(sep) and sep.to_dict()["figures"] == {"old": sep.old, "fixed": sep.fixed}


def test_results_are_frozen(demo_results):
    with pytest.raises(dataclasses.FrozenInstanceError):
        demo_results["rerank"].before = None


def test_dict_style_reading_still_works(demo_results):
    """Deprecated, kept for existing users: ``result["key"]`` reads what ``to_dict()["key"]`` holds."""
    r, sw, sc, nm = (demo_results[k] for k in ("rerank", "sweep", "scores", "nms"))
    assert r["after"]["old"]["AP"] == r.after.old["AP"]
    assert r["settings"]["num_detections"] == {"before": r.settings.num_detections_before,
                                               "after": r.settings.num_detections_after}
    assert sw["dets_per_image"][0]["cap"] == 100 and "pooled" in sw["dets_per_image"][0]
    assert sw["timing"]["settings"] == 5 and sw["timing"].get("separate_evaluations_s") is None
    assert "separate_evaluations_s" not in sw["timing"]
    assert sc["selections"]["fixed"]["f"]["normalised_mean"] == 1.0
    assert sc["histogram"]["r"] == sc.histogram.counts["r"] and sc["histogram"]["edges"] == sc.histogram.edges
    assert nm["rows"][0]["threshold"] == 0.5
    assert set(r.keys()) == {"before", "after", "settings"}
    for bad in ("to_dict", "missing", 0):
        with pytest.raises(KeyError):
            r[bad]
    with pytest.raises(KeyError):
        r.settings["num_detections_before"]   # an attribute, not a key of the JSON


def test_exported_from_the_package():
    from lveval.analysis import results

    for name in results.__all__:
        assert getattr(analysis, name) is getattr(results, name)
        cls = getattr(results, name)
        assert dataclasses.is_dataclass(cls) and cls.__doc__ and hasattr(cls, "to_dict")
