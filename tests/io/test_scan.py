"""The JSON byte scanner (lveval.io.scan) against a byte-by-byte state machine: unescaped quotes,
top-level objects and the array element at an offset, on random text full of quotes, backslashes
and brackets, with blocks small enough that strings and backslash runs cross them."""
from __future__ import annotations

import numpy as np
import pytest

from lveval.io import scan

ALPHABET = np.frombuffer(b'"\\{}[],a :', np.uint8)


def _text(rng, n: int) -> bytes:
    return ALPHABET[rng.integers(0, len(ALPHABET), n)].tobytes()


def _ref_quotes(buf: bytes, carry: int = 0) -> list:
    out, run = [], carry
    for i, c in enumerate(buf):
        if c == 0x22 and run % 2 == 0:
            out.append(i)
        run = run + 1 if c == 0x5C else 0
    return out


def _ref_states(buf: bytes):
    """(inside a string, depth) before each byte; depth over brackets and braces or braces only."""
    q = set(_ref_quotes(buf))
    inside, d_all, d_brace = False, 0, 0
    for i, c in enumerate(buf):
        yield i, c, inside, d_all, d_brace
        if i in q:
            inside = not inside
        elif not inside:
            d_all += (c in b"[{") - (c in b"]}")
            d_brace += (c == 0x7B) - (c == 0x7D)


@pytest.mark.parametrize("seed", range(40))
def test_quotes_are_those_after_an_even_run_of_backslashes(seed):
    rng = np.random.default_rng(seed)
    buf = _text(rng, int(rng.integers(0, 200)))
    carry = int(rng.integers(0, 4))
    a = np.frombuffer(buf, np.uint8)
    assert scan.quotes(a, carry).tolist() == _ref_quotes(buf, carry)
    plain = len(buf) - len(buf.rstrip(b"\\"))
    assert scan.trailing_backslashes(a, carry) == (plain + carry if plain == len(buf) else plain)


@pytest.mark.parametrize("seed", range(40))
def test_object_spans_are_the_top_level_objects(seed):
    rng = np.random.default_rng(100 + seed)
    buf = _text(rng, int(rng.integers(0, 200)))
    starts, ends, bad = [], [], None
    for i, c, inside, _, depth in _ref_states(buf):
        if inside:
            continue
        if c == 0x7B and depth == 0:
            starts.append(i)
        elif c == 0x7D and depth == 1:
            ends.append(i)
        elif c == 0x7D and depth == 0 and bad is None:
            bad = i
            break
    a = np.frombuffer(buf, np.uint8)
    opens = [i for i, c, inside, _, _ in _ref_states(buf) if c == 0x7B and not inside]
    if bad is not None and opens:   # without any '{' there is nothing to span: the caller reports the bytes
        with pytest.raises(scan.ScanError) as e:
            scan.object_spans(a)
        assert e.value.offset == bad and str(e.value) == "unbalanced '}'"
    elif bad is None:
        s, e = scan.object_spans(a)
        assert s.tolist() == starts[:len(ends)] and e.tolist() == ends
    else:
        assert [x.tolist() for x in scan.object_spans(a)] == [[], []]


@pytest.mark.parametrize("seed", range(40))
def test_element_at_counts_depth_one_commas_outside_strings(seed):
    rng = np.random.default_rng(200 + seed)
    buf = b"[" + _text(rng, int(rng.integers(0, 300)))
    block = int(rng.choice([1, 2, 3, 5, 16, 1 << 22]))
    for offset in sorted({0, len(buf), *rng.integers(0, len(buf) + 1, 5).tolist()}):
        commas = sum(1 for i, c, inside, depth, _ in _ref_states(buf)
                     if i < offset and c == 0x2C and not inside and depth == 1)
        assert scan.element_at(buf, offset, block=block) == commas
    assert scan.element_at(buf, 11, limit=10) is None


def test_array_edges_and_record_separators():
    buf = b' \n[ {"a": 1} ,\n {"b": "},{"} ]\r\n'
    lo, hi = scan.array_edges(buf)
    assert buf[lo - 1:lo] == b"[" and buf[hi:hi + 1] == b"]" and buf[hi + 1:].strip() == b""
    assert scan.array_edges(b' {"a": 1} ') is None and scan.array_edges(b"   ") is None
    end, nxt = scan.next_record(buf, lo, hi)
    assert buf[end - 1:end] == b"}" and buf[nxt:nxt + 5] == b'{"b":'
    assert scan.next_record(buf, nxt, hi) == (buf.index(b'"},{"') + 2, buf.index(b'"},{"') + 3)  # inside a string
