"""Parquet output in one place: the results layout and a streaming writer.

The layout is what :func:`lveval.io.load_results` reads back: ``image_id``,
``category_id`` (int64), ``score`` (float64), ``bbox`` (fixed-size lists of 4
float64, xywh) and, for masks, ``segm_counts`` (compressed-RLE strings) with
``segm_h`` / ``segm_w`` (int32), in that order. ``write_results``, ``lveval
topk`` and the class partitions of ``lveval.distributed`` all write through
:func:`results_table` / :class:`ParquetStream`, so their files agree.
pyarrow is imported on first use.
"""
from __future__ import annotations

import numpy as np


def results_schema(with_segm: bool):
    """The results layout's schema (boxes; with ``with_segm`` the three mask columns too)."""
    import pyarrow as pa

    fields = [("image_id", pa.int64()), ("category_id", pa.int64()), ("score", pa.float64()),
              ("bbox", pa.list_(pa.float64(), 4))]
    if with_segm:
        fields += [("segm_counts", pa.string()), ("segm_h", pa.int32()), ("segm_w", pa.int32())]
    return pa.schema(fields)


def string_column(data: np.ndarray, offsets: np.ndarray):
    """Arrow strings ``data[offsets[i]:offsets[i + 1]]`` without copying the bytes (large strings
    past 2 GB); ``data`` must be valid UTF-8 (ASCII RLE strings are)."""
    import pyarrow as pa

    off = offsets - offsets[0]
    buf = pa.py_buffer(data[offsets[0]:offsets[-1]])
    if off[-1] < 2 ** 31:
        return pa.StringArray.from_buffers(len(off) - 1, pa.py_buffer(off.astype(np.int32)), buf)
    return pa.LargeStringArray.from_buffers(len(off) - 1, pa.py_buffer(off), buf)


def results_table(image_id, category_id, score, bbox=None, segm_counts=None, segm_h=None, segm_w=None):
    """An Arrow table in the results layout from columns (numpy arrays or lists; ``segm_counts``:
    strings or an Arrow string array, e.g. from :func:`string_column`)."""
    import pyarrow as pa

    cols = {"image_id": pa.array(image_id, pa.int64()), "category_id": pa.array(category_id, pa.int64()),
            "score": pa.array(score, pa.float64())}
    if bbox is not None:
        flat = np.asarray(bbox, np.float64).reshape(-1)
        cols["bbox"] = pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float64()), 4)
    if segm_counts is not None:
        cols["segm_counts"] = segm_counts if isinstance(segm_counts, pa.Array) else pa.array(segm_counts, pa.string())
        for name, v in (("segm_h", segm_h), ("segm_w", segm_w)):
            cols[name] = pa.array(v.astype(np.int32) if isinstance(v, np.ndarray) else v, pa.int32())
    return pa.table(cols)


class ParquetStream:
    """Tables appended to one Parquet file as they come (bounded memory).

    ``f``: a path or binary file object; ``schema``: the file's, or None to
    take the first table's. :meth:`close` writes the footer (an empty file
    gets ``schema``, or the one given to ``close``); :meth:`abort` closes
    quietly after a failure. Closing twice is harmless.
    """

    def __init__(self, f, schema=None):
        self.f, self.schema = f, schema
        self._w = None
        self.rows = 0

    def _open(self, schema):
        import pyarrow.parquet as pq

        self._w = pq.ParquetWriter(self.f, schema)
        return self._w

    def write(self, table) -> None:
        """Append a table (or record batch list already made a table) to the file."""
        w = self._w or self._open(self.schema if self.schema is not None else table.schema)
        w.write_table(table)
        self.rows += table.num_rows

    def close(self, schema=None) -> None:
        if self._w is None:
            self._open(schema if schema is not None else self.schema if self.schema is not None
                       else results_schema(False))
        self._w.close()

    def abort(self) -> None:
        if self._w is not None:
            try:
                self._w.close()
            except Exception:   # noqa: BLE001 - the failure being unwound is what is reported
                pass


def write_table(table, f) -> None:
    """One whole table to a Parquet file (what :class:`ParquetStream` writes for a single table)."""
    s = ParquetStream(f, table.schema)
    try:
        s.write(table)
    except BaseException:
        s.abort()
        raise
    s.close()
