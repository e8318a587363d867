"""The compiled JSON column reader against the general decoder (msgspec) and Python's float().

The reader must give bit-identical columns where it applies and step aside
(return None) everywhere else, so that the general decoder accepts or
explains the input exactly as before.
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest

from lveval.exceptions import InputError
from lveval.io import fastjson
from lveval.io.decoders import ARRAY as _ARRAY
from lveval.io.results import _columns, load_results

if not fastjson.available():
    if os.environ.get("CI"):
        pytest.fail("the compiled JSON reader was not built", pytrace=False)
    pytest.skip("the compiled JSON reader was not built (no C compiler?)", allow_module_level=True)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64).view(np.int64)   # tells -0.0 from 0.0


def _general(buf: bytes):
    d = _columns(_ARRAY.decode(buf), "<test>")
    return d.img_id, d.cat_id, d.score, d.bbox


def _fast(buf: bytes, threads: int = 1):
    start = buf.index(b"[") + 1
    end = buf.rindex(b"]")
    return fastjson.box_columns(buf, start, end, threads=threads)


def _assert_same(buf: bytes, threads: int = 1):
    fast = _fast(buf, threads)
    assert fast is not None, buf[:200]
    img, cat, score, bbox = _general(buf)
    np.testing.assert_array_equal(fast[0], img)
    np.testing.assert_array_equal(fast[1], cat)
    np.testing.assert_array_equal(_bits(fast[2]), _bits(score))
    np.testing.assert_array_equal(_bits(fast[3]).reshape(-1, 4), _bits(bbox).reshape(-1, 4))


def _record(img, cat, box, score, order=("image_id", "category_id", "bbox", "score"), ws="") -> str:
    vals = {"image_id": img, "category_id": cat, "score": score,
            "bbox": "[" + f",{ws}".join(box) + "]"}
    return "{" + f",{ws}".join(f'"{k}"{ws}:{ws}{vals[k]}' for k in order) + "}"


def _number_tokens(rng: np.random.Generator, n: int) -> list[str]:
    """JSON numbers of every shape the grammar allows, hard cases for rounding included."""
    out = []
    for _ in range(n):
        kind = rng.integers(8)
        if kind == 0:   # shortest repr of a random double
            out.append(repr(float(struct.unpack("<d", rng.bytes(8))[0])).replace("inf", "1").replace("nan", "2"))
        elif kind == 1:   # float32 scores written as doubles (what detectors write)
            out.append(repr(float(np.float32(rng.random()))))
        elif kind == 2:   # many digits, past 19 significant ones
            digits = "".join(rng.choice(list("0123456789"), rng.integers(1, 30)))
            out.append(f"{int(rng.integers(0, 1000))}.{digits}")
        elif kind == 3:   # exponents near the ends of the range (subnormals, just below overflow)
            digits = int(rng.integers(1, 18))
            e = int(rng.choice([-345, -330, -324, -320, -308, -307, 300 - digits, 307 - digits, 308 - digits]))
            out.append(f"{rng.integers(1, 10 ** digits)}e{e}")
        elif kind == 4:   # halfway cases: 2^53 + 1 and friends
            out.append(str(2 ** 53 + int(rng.integers(-3, 4))) + rng.choice(["", ".0", "e0", ".5"]))
        elif kind == 5:   # integers, zeros and signs
            out.append(rng.choice(["0", "-0", "0.0", "-0.0", "0e5", "-0e-5", "1", "-1", "1E2", "1e+2",
                                   str(int(rng.integers(-10 ** 18, 10 ** 18))), "12345678901234567890123"]))
        elif kind == 6:   # two-decimal pixel coordinates
            out.append(f"{rng.integers(0, 100000) / 100:.2f}")
        else:   # random mantissa, random exponent, upper-case E
            out.append(f"{rng.random():.{int(rng.integers(1, 20))}f}E{int(rng.integers(-40, 40))}")
    return out


def _as_python(tok: str) -> float:
    """What Python makes of a JSON number in a float field: an integer token is an int first."""
    return float(tok) if any(c in tok for c in ".eE") else float(int(tok))


@pytest.mark.parametrize("seed", range(4))
def test_numbers_round_like_the_general_decoder_and_float(seed):
    rng = np.random.default_rng(seed)
    toks = _number_tokens(rng, 20_000)
    boxes = [[toks[(i + k) % len(toks)] for k in (1, 2, 3, 4)] for i in range(len(toks))]
    buf = ("[" + ",".join(_record(i, -i, b, t) for i, (t, b) in enumerate(zip(toks, boxes))) + "]").encode()
    _assert_same(buf)
    _, _, score, bbox = _fast(buf)
    np.testing.assert_array_equal(_bits(score), _bits(np.array([_as_python(t) for t in toks])))
    np.testing.assert_array_equal(_bits(bbox), _bits(np.array([[_as_python(t) for t in b] for b in boxes])))


@pytest.mark.parametrize("threads", [1, 2, 3, 4])
def test_layouts_key_orders_and_threads(threads, monkeypatch):
    monkeypatch.setattr(fastjson, "MIN_PIECE", 1)   # split even this small file
    rng = np.random.default_rng(7)
    orders = [("image_id", "category_id", "bbox", "score"), ("score", "bbox", "category_id", "image_id"),
              ("bbox", "image_id", "score", "category_id")]
    recs = []
    for i in range(3000):
        box = [repr(float(v)) for v in rng.random(4) * 640]
        recs.append(_record(int(rng.integers(0, 2 ** 62)), int(rng.integers(1, 1204)), box,
                            repr(float(rng.random())), orders[i % 3], ws=[" ", "", "\n  ", "\t"][i % 4]))
    for sep, wrap in ((",", "[{}]"), (",\n", "[\n{}\n]"), (" , ", " [ {} ] ")):
        _assert_same(wrap.format(sep.join(recs)).encode(), threads)
    _assert_same(json.dumps([json.loads(r) for r in recs[:500]], indent=2).encode(), threads)


def test_empty_array_and_integer_edges():
    assert all(len(c) == 0 for c in _fast(b"[]"))
    assert all(len(c) == 0 for c in _fast(b"[ \n ]"))
    big = 2 ** 63 - 1
    _assert_same(f'[{_record(big, -big - 1, ["0"] * 4, "1")}, {_record(-0, 0, ["-0"] * 4, "-0")}]'.encode())


@pytest.mark.parametrize("text", [
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5,"id":7}]',          # another key
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4]}]',                              # no score
    '[{"image_id":1,"image_id":3,"category_id":2,"bbox":[1,2,3,4],"score":0.5}]',    # repeated key
    '[{"image_id":1,"category_id":2,"bbox":null,"score":0.5}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3],"score":0.5}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4,5],"score":0.5}]',
    '[{"image_id":1.0,"category_id":2,"bbox":[1,2,3,4],"score":0.5}]',
    '[{"image_id":1e2,"category_id":2,"bbox":[1,2,3,4],"score":0.5}]',
    '[{"image_id":9223372036854775808,"category_id":2,"bbox":[1,2,3,4],"score":0.5}]',
    '[{"image_id":-9223372036854775809,"category_id":2,"bbox":[1,2,3,4],"score":0.5}]',
    '[{"image_id":12345678901234567890123,"category_id":2,"bbox":[1,2,3,4],"score":0.5}]',
    '[{"image_id":"1","category_id":2,"bbox":[1,2,3,4],"score":0.5}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":01}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":.5}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":1.}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":+1}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":1e}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":NaN}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":Infinity}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":1e400}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":-}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5},]',                 # trailing comma
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5,}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5}{"image_id":1}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5} x]',
    '[{"image\\u005fid":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5}]',           # escaped key
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5,"segmentation":{"size":[2,2],"counts":"04"}}]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5}, [1]]',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5',                   # cut short
    '[{}]',
    '[1]',
])
def test_anything_else_is_left_to_the_general_decoder(text, tmp_path):
    """None from the reader, and loading the file gives what the general decoder gives."""
    buf = text.encode()
    start = buf.index(b"[") + 1
    end = buf.rindex(b"]") if buf.rstrip().endswith(b"]") else len(buf)
    assert fastjson.box_columns(buf, start, end, threads=1) is None
    p = tmp_path / "r.json"
    p.write_bytes(buf)

    def load(pure: bool):
        os.environ["LVEVAL_PURE_JSON"] = "1" if pure else "0"
        try:
            d = load_results(str(p))
            return ("ok", d.img_id.tolist(), d.cat_id.tolist(), _bits(d.score).tolist(),
                    None if d.bbox is None else _bits(d.bbox).tolist(), d.digest)
        except InputError as exc:
            return ("error", str(exc))
        finally:
            del os.environ["LVEVAL_PURE_JSON"]

    assert load(pure=False) == load(pure=True)


def test_a_split_inside_a_string_falls_back(monkeypatch):
    """A record separator inside a string value is not a record boundary; the reader must not be fooled."""
    monkeypatch.setattr(fastjson, "MIN_PIECE", 1)
    recs = [_record(i, 1, ["1", "2", "3", "4"], "0.5") for i in range(50)]
    recs[25] = recs[25][:-1] + ', "note": "a},{b"}'
    buf = ("[" + ",".join(recs) + "]").encode()
    for threads in (1, 2, 4):
        assert _fast(buf, threads) is None


def test_files_load_the_same_both_ways(tmp_path, monkeypatch):
    """End to end through load_results: columns, record numbers and the file digest."""
    monkeypatch.setattr(fastjson, "MIN_PIECE", 1)
    rng = np.random.default_rng(3)
    recs = [{"image_id": int(rng.integers(1, 50)), "category_id": int(rng.integers(1, 30)),
             "bbox": [float(v) for v in rng.random(4) * 100], "score": float(np.float32(rng.random()))}
            for _ in range(5000)]
    p = tmp_path / "r.json"
    p.write_text(json.dumps(recs))
    assert _fast(p.read_bytes(), threads=4) is not None   # the reader does take this file
    fast = load_results(str(p))
    monkeypatch.setenv("LVEVAL_PURE_JSON", "1")
    slow = load_results(str(p))
    for k in ("img_id", "cat_id", "record"):
        np.testing.assert_array_equal(getattr(fast, k), getattr(slow, k))
    np.testing.assert_array_equal(_bits(fast.score), _bits(slow.score))
    np.testing.assert_array_equal(_bits(fast.bbox), _bits(slow.bbox))
    assert fast.digest == slow.digest and fast.segm is None and slow.segm is None


def test_mutated_files_are_never_accepted_wrongly():
    """Random byte edits of a valid file: whatever the reader accepts, the general decoder accepts
    too, with the same columns; the rest the reader leaves alone."""
    import msgspec

    rng = np.random.default_rng(11)
    base = ("[" + ",".join(_record(i, 7 - i, ["1.5", "-2", "3e1", "0.25"], "0.75") for i in range(6)) + "]").encode()
    alphabet = b'{}[],:" \n-+.eE0123456789abcinrsgtuxy_\\'
    accepted = rejected = 0
    for _ in range(4000):
        b = bytearray(base)
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(b)))
            op = rng.integers(3)
            if op == 0:
                b[i] = alphabet[rng.integers(len(alphabet))]
            elif op == 1:
                del b[i]
            else:
                b.insert(i, alphabet[rng.integers(len(alphabet))])
        buf = bytes(b)
        if not (buf.startswith(b"[") and buf.endswith(b"]")):
            continue
        fast = fastjson.box_columns(buf, 1, len(buf) - 1, threads=1)
        if fast is None:
            rejected += 1
            continue
        accepted += 1
        try:
            general = _general(buf)
        except (msgspec.DecodeError, msgspec.ValidationError, InputError) as exc:
            raise AssertionError(f"accepted what the general decoder refuses ({exc}): {buf!r}") from exc
        for f, g in zip(fast, general):
            np.testing.assert_array_equal(_bits(f) if f.dtype == np.float64 else f,
                                          _bits(g) if g.dtype == np.float64 else g)
    assert accepted > 100 and rejected > 1000   # both sides were exercised


def _load_both_ways(path) -> tuple:
    """load_results with the compiled reader and without it: columns, line numbers and digest, or the error."""
    out = []
    for pure in ("0", "1"):
        os.environ["LVEVAL_PURE_JSON"] = pure
        try:
            d = load_results(str(path))
            out.append(("ok", d.img_id.tolist(), d.cat_id.tolist(), _bits(d.score).tolist(),
                        None if d.bbox is None else _bits(d.bbox).tolist(), d.record.tolist(),
                        None if d.line is None else d.line.tolist(), d.digest))
        except InputError as exc:
            out.append(("error", str(exc)))
        finally:
            del os.environ["LVEVAL_PURE_JSON"]
    return tuple(out)


@pytest.mark.parametrize("eol, blank, final", [("\n", "", "\n"), ("\r\n", "  \t", ""), ("\n", "\r", "\n\n")])
def test_json_lines_load_the_same_both_ways(tmp_path, monkeypatch, eol, blank, final):
    """Line numbers (blank lines skipped), CRLF endings, whitespace-only lines, pieces on threads."""
    monkeypatch.setattr(fastjson, "MIN_PIECE", 1)
    rng = np.random.default_rng(5)
    lines = []
    for i in range(3000):
        if i % 97 == 3:
            lines.append(blank)
        box = [repr(float(v)) for v in rng.random(4) * 500]
        lines.append(" " * (i % 3) + _record(int(rng.integers(1, 99)), int(rng.integers(1, 40)), box,
                                             repr(float(np.float32(rng.random()))), ws=" " * (i % 2)))
    p = tmp_path / "r.jsonl"
    p.write_text(eol.join(lines) + final)
    fast, pure = _load_both_ways(p)
    assert fast[0] == "ok" and fast == pure
    assert fast[6][:5] == [1, 2, 3, 5, 6]   # line 4 is blank
    parsed = fastjson.box_columns(p.read_bytes(), 0, p.stat().st_size, threads=3, lines=True)
    assert parsed[4].tolist() == fast[6]


@pytest.mark.parametrize("text", [
    '{"image_id":1,"category_id":2,\n"bbox":[1,2,3,4],"score":0.5}\n',             # a record over two lines
    '{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5} {"image_id":1}\n',
    '{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5,"id":3}\n',
    '{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5},\n',
    '[{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5}]\n',
    '\ufeff{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5}\n',
    '{"image_id":1,"category_id":2,"bbox":[1,2,3,4],"score":0.5}\n\x0c\n',
    '\n\n  \n',
    '',
])
def test_irregular_json_lines_load_as_without_the_reader(tmp_path, text):
    p = tmp_path / "r.jsonl"
    p.write_bytes(text.encode())
    fast, pure = _load_both_ways(p)
    assert fast == pure
