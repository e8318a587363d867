"""The results digest taken in the background while the ground truth loads (``PendingDigest``) is
the sha256 the loader took before, of the file as read, for every format; when it cannot be taken
the loader hashes as it reads."""
from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from lveval.io import results as R
from lveval.io.results import write_results
from lveval.metrics import Evaluator
from tests.support.gen import make_dataset


def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


@pytest.fixture
def files(tmp_path):
    gt, res = make_dataset(4, kind="lvis", n_images=4, n_cats=4, segm=True, max_dets=20)
    from pycocotools import mask as mask_utils

    for r in res:   # compressed RLE masks, the compiled reader's records
        im = next(m for m in gt["images"] if m["id"] == r["image_id"])
        if isinstance(r["segmentation"], list):
            rle = mask_utils.merge(mask_utils.frPyObjects(r["segmentation"], im["height"], im["width"]))
            r["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode()}
    boxes = [{k: v for k, v in r.items() if k != "segmentation"} | {"bbox": [1, 2, 3, 4]} for r in res]
    out = {}
    out["masks.json"] = json.dumps(res).encode()
    out["boxes.json"] = json.dumps(boxes).encode()
    out["masks.jsonl"] = "\n".join(json.dumps(r) for r in res).encode() + b"\n"
    out["odd.json"] = json.dumps([r | {"extra": 1} for r in boxes]).encode()   # the general decoder
    paths = {}
    for name, b in out.items():
        p = tmp_path / name
        p.write_bytes(b)
        paths[name] = (p, _sha(b))
    gz = tmp_path / "boxes.json.gz"
    gz.write_bytes(gzip.compress(out["boxes.json"]))
    paths["boxes.json.gz"] = (gz, _sha(out["boxes.json"]))   # of the content as read
    pq = tmp_path / "boxes.parquet"
    write_results(R.load_results(str(paths["boxes.json"][0])), str(pq))
    paths["boxes.parquet"] = (pq, _sha(pq.read_bytes()))
    return gt, paths


@pytest.mark.parametrize("name", ["masks.json", "boxes.json", "masks.jsonl", "odd.json", "boxes.json.gz",
                                  "boxes.parquet"])
@pytest.mark.parametrize("readable", [True, False])
def test_digest_of_each_format(files, monkeypatch, name, readable):
    gt, paths = files
    path, want = paths[name]
    made = []
    real = R.PendingDigest.__init__

    def spy(self, p):
        made.append(p)
        real(self, p)
        if not readable:   # as if the background read failed: the loader hashes itself
            self._thread.join()
            self._value = None

    monkeypatch.setattr(R.PendingDigest, "__init__", spy)
    ev = Evaluator.load(gt, str(path))
    assert ev.inputs["results"] == want
    assert made == ([] if name.endswith(".gz") else [str(path)])   # never for a file read through a decompressor


def test_no_pending_digest_for_pipes_and_objects(tmp_path):
    import os

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert R.pending_digest(str(fifo)) is None
    assert R.pending_digest([{"image_id": 1}]) is None
    assert R.pending_digest(str(tmp_path / "missing.json")) is None


def test_file_sha256_equals_hashlib(tmp_path, monkeypatch):
    """Windows of a map (several, with a small window), an empty file, and a file read instead of
    mapped all give hashlib's digest of the bytes."""
    import os

    monkeypatch.setattr(R, "_DIGEST_WINDOW", 4096)
    b = os.urandom(3 * 4096 + 123)
    p = tmp_path / "f.bin"
    p.write_bytes(b)
    assert R.file_sha256(str(p)) == _sha(b)
    e = tmp_path / "e.bin"
    e.write_bytes(b"")
    assert R.file_sha256(str(e)) == _sha(b"")
    import mmap

    def no_map(*a, **k):
        raise OSError("no map here")

    monkeypatch.setattr(mmap, "mmap", no_map)
    assert R.file_sha256(str(p)) == _sha(b)
