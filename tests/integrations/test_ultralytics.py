"""An ultralytics predictions.json (written here in ultralytics' format) against the LVIS and COCO subsets:
the class-index -> category mapping of the dataset yaml gives the CLI's figures on the true ids."""
import json

import numpy as np
import pytest

from lveval.integrations import ultralytics as ul
from lveval.io.gt import load_gt
from lveval.io.results import load_results
from lveval.simulate import simulate

from .cli_figures import cli_figures


def _yolo_name(cat) -> str:
    """A category as ultralytics' lvis.yaml names it: name and synonyms joined by '/', underscores and
    parentheses turned into spaces (``bow_(weapon)`` -> ``bow/bow weapon``)."""
    parts = [cat["name"]] + [s for s in cat.get("synonyms") or [] if s != cat["name"]]
    clean = [" ".join(p.replace("_", " ").replace("(", " ").replace(")", " ").split()) for p in parts]
    return "/".join(dict.fromkeys(clean))


def _records(d, cat_of_row, image_key=lambda i: int(i)):
    """ultralytics' pred_to_json records: bbox rounded to 3 decimals, score to 5."""
    return [{"image_id": image_key(i), "category_id": int(c), "bbox": [round(float(x), 3) for x in b],
             "score": round(float(s), 5)} for i, c, b, s in zip(d.img_id, cat_of_row, d.bbox, d.score)]


def _cols(recs, cat):
    return {"image_id": np.array([r["image_id"] for r in recs]), "category_id": np.asarray(cat),
            "score": np.array([r["score"] for r in recs]), "bbox": np.array([r["bbox"] for r in recs])}


def test_lvis_yaml_names_and_conventions(tmp_path, lvis_path):
    gt = load_gt(lvis_path)
    d = load_results(simulate(lvis_path, seed=12, candidates_per_image=120))
    cats = {c["id"]: c for c in gt.dataset["categories"]}
    rng = np.random.default_rng(0)
    order = rng.permutation(gt.cat_ids)                    # a model whose classes come in another order
    yaml_text = "path: ../datasets/lvis\nval: val.txt\nnames:\n" + "".join(
        f"  {i}: {_yolo_name(cats[int(c)])}\n" for i, c in enumerate(order))
    (tmp_path / "data.yaml").write_text(yaml_text)
    index_of = {int(c): i for i, c in enumerate(order)}
    idx = np.array([index_of[int(c)] for c in d.cat_id])
    exp = cli_figures(tmp_path, lvis_path, _cols(_records(d, d.cat_id), d.cat_id), "--max-dets-per-class", "30")
    for conv, written in (("index", idx), ("lvis", idx + 1)):
        path = tmp_path / f"predictions_{conv}.json"
        path.write_text(json.dumps(_records(d, written)))
        r = ul.evaluate(str(path), lvis_path, str(tmp_path / "data.yaml"), convention=conv, max_dets_per_class=30)
        assert (r.old, r.fixed, r.pooled) == (exp["old"], exp["fixed"], exp["pooled"]), conv
    # names resolve without PyYAML too
    assert ul._names_without_yaml(yaml_text) == ul.read_names(str(tmp_path / "data.yaml"))
    table, unknown = ul.names_to_categories(ul.read_names(yaml_text), gt)
    assert table.tolist() == order.tolist() and not unknown
    # no yaml, ultralytics' LVIS convention (index + 1 = the LVIS id when classes follow the id order)
    path = tmp_path / "predictions_ids.json"
    path.write_text(json.dumps(_records(d, d.cat_id)))
    r = ul.evaluate(str(path), lvis_path, max_dets_per_class=30)
    assert r.fixed == exp["fixed"]
    assert ul.main([str(path), lvis_path, "--max-dets-per-class", "30", "--json", str(tmp_path / "o.json")]) == 0
    assert json.loads((tmp_path / "o.json").read_text())["fixed"] == exp["fixed"]


def test_coco_convention_and_subset_warning(tmp_path, coco_paths):
    gt = load_gt(coco_paths["gt"])
    d = load_results(coco_paths["bbox"])
    assert len(gt.cat_ids) == 80 and (gt.cat_ids == ul.COCO80_TO_COCO91).all()
    path = tmp_path / "predictions.json"
    keep = np.isin(d.img_id, np.unique(d.img_id)[:30])
    recs = _records(d, d.cat_id)
    recs = [r for r, k in zip(recs, keep) if k]
    path.write_text(json.dumps(recs))
    r = ul.evaluate(str(path), coco_paths["gt"])                 # auto: COCO-91 ids as written
    exp = cli_figures(tmp_path, coco_paths["gt"], _cols(recs, [x["category_id"] for x in recs]))
    assert r.old == exp["old"] and r.fixed == exp["fixed"]
    assert any("detections were given for 30 of the ground truth's" in w for w in r.notices.warnings)
    # a custom yaml (val path without "coco"): ultralytics writes the bare index
    names = [c["name"] for c in sorted(gt.dataset["categories"], key=lambda c: c["id"])]
    lut = {int(c): i for i, c in enumerate(ul.COCO80_TO_COCO91)}
    idx_recs = [dict(x, category_id=lut[x["category_id"]]) for x in recs]
    idx_recs[0]["category_id"] = 0 if idx_recs[0]["category_id"] else idx_recs[0]["category_id"]
    path.write_text(json.dumps(idx_recs))
    exp2 = cli_figures(tmp_path, coco_paths["gt"], _cols(idx_recs, [ul.COCO80_TO_COCO91[x["category_id"]]
                                                                   for x in idx_recs]))
    r2 = ul.evaluate(str(path), coco_paths["gt"], {"names": dict(enumerate(names))})
    assert r2.old == exp2["old"]


def test_string_image_ids_and_unknown_names(tmp_path):
    gt = {"images": [{"id": 7, "height": 20, "width": 20, "file_name": "a_7.jpg"}],
          "annotations": [{"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 1, 5, 5], "area": 25,
                           "iscrowd": 0}],
          "categories": [{"id": 3, "name": "cat"}]}
    recs = [{"image_id": "a_7", "category_id": 0, "bbox": [1, 1, 5, 5], "score": 0.9},
            {"image_id": "a_7", "category_id": 1, "bbox": [1, 1, 5, 5], "score": 0.8}]
    r = ul.evaluate(recs, gt, ["Cat", "unicorn"], convention="index")
    assert r.old["AP"] == pytest.approx(1.0)
    w = " ".join(r.notices.warnings)
    assert "'unicorn'" in w and "1 detections of 1 category ids" in w


def test_lveval_and_cli_work_without_the_toolboxes(tmp_path, lvis_path):
    """With mmengine, torchmetrics, transformers and PyYAML unimportable: lveval, its CLI and the pure adapters
    work; the toolbox adapters raise an ImportError naming their extra."""
    import subprocess
    import sys

    res = tmp_path / "r.json"
    res.write_text(json.dumps(simulate(lvis_path, seed=1, candidates_per_image=5)))
    code = f"""
import sys
for m in ("mmengine", "torchmetrics", "transformers", "yaml", "ultralytics"):
    sys.modules[m] = None
import lveval, lveval.integrations, lveval.integrations.huggingface
from lveval.integrations import ultralytics as ul
assert ul.read_names("names:\\n  0: a b\\n  1: c\\n") == ["a b", "c"]
from lveval.cli import main
assert main(["evaluate", {lvis_path!r}, {str(res)!r}, "--quiet", "--json", {str(tmp_path / "o.json")!r}]) == 0
for mod in ("mmdet", "torchmetrics"):
    try:
        __import__("lveval.integrations." + mod)
    except ImportError as e:
        print(e)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "pip install 'lveval[mmdet]'" in out.stdout and "pip install 'lveval[torchmetrics]'" in out.stdout
    assert json.loads((tmp_path / "o.json").read_text())["fixed"]["AP"] >= 0
