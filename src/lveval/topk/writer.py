"""Output of ``lveval topk``: selected records as JSON bytes, JSON Lines or Parquet."""
from __future__ import annotations

import numpy as np

from ..exceptions import InputError
from ..io.decoders import ARRAY as _FULL_DECODER  # the loader's own record decoder
from ..io.parquet import ParquetStream, results_table


class _Writer:
    """Streaming writer of selected records: raw JSON bytes, or columns for Parquet."""

    def __init__(self, f, fmt: str):
        self.f, self.fmt = f, fmt
        self.n = 0
        self._pq = ParquetStream(f) if fmt == "parquet" else None
        if fmt == "json":
            f.write(b"[")

    def raw(self, records: list) -> None:
        """Records as JSON bytes (one object each)."""
        if not records:
            return
        if self.fmt == "json":
            if self.n:
                self.f.write(b",")
            self.f.write(b",".join(records))
        elif self.fmt == "jsonl":
            import orjson

            out = []
            for r in records:
                if b"\n" in r or b"\r" in r:
                    r = orjson.dumps(orjson.loads(r))
                out.append(r)
            self.f.write(b"\n".join(out) + b"\n")
        else:
            dets = _FULL_DECODER.decode(b"[" + b",".join(records) + b"]")
            self.table(_table_from_structs(dets))
        self.n += len(records)

    def table(self, table) -> None:
        """An Arrow table of selected rows (Parquet output) or its records (JSON output)."""
        if self._pq is not None:
            self._pq.write(table)
        else:
            import orjson

            from ..io.results import from_table

            recs = [orjson.dumps(r) for r in from_table(table, "<parquet>").to_records()]
            self.raw(recs)
            return
        self.n += table.num_rows

    def abort(self) -> None:
        """Close a Parquet writer after a failure (the temporary output is then removed)."""
        if self._pq is not None:
            self._pq.abort()

    def close(self, empty_schema=None) -> None:
        if self.fmt == "json":
            self.f.write(b"]\n")
        elif self._pq is not None:
            self._pq.close(empty_schema)   # an empty output gets the input's schema, or the results layout


def _table_from_structs(dets: list):
    """Arrow table in the layout of :func:`lveval.io.write_results` (bbox as fixed-size lists)."""
    n = len(dets)
    boxes = []
    for d in dets:
        b = d.bbox
        if b is None:
            if d.segmentation is None:
                raise InputError("record has neither bbox nor segmentation", field="bbox")
            from pycocotools import mask as mask_utils

            seg = d.segmentation
            if isinstance(seg, dict) and isinstance(seg.get("counts"), str):
                seg = dict(seg, counts=seg["counts"].encode())
            b = mask_utils.toBbox(seg).tolist()
        boxes.extend(b)
    segm = {}
    if n and any(d.segmentation is not None for d in dets):
        segs = [d.segmentation for d in dets]
        if not all(isinstance(s, dict) and "counts" in s and "size" in s for s in segs):
            raise InputError("Parquet output needs RLE segmentations ({size, counts}) on every record",
                             field="segmentation")
        segm = {"segm_counts": [s["counts"] if isinstance(s["counts"], str) else
                                (s["counts"].decode() if isinstance(s["counts"], bytes) else _rle_string(s))
                                for s in segs],
                "segm_h": [int(s["size"][0]) for s in segs], "segm_w": [int(s["size"][1]) for s in segs]}
    return results_table([d.image_id for d in dets], [d.category_id for d in dets], [d.score for d in dets],
                         np.asarray(boxes, np.float64), **segm)


def _rle_string(s: dict) -> str:
    from pycocotools import mask as mask_utils

    h, w = int(s["size"][0]), int(s["size"][1])
    return mask_utils.frPyObjects(s, h, w)["counts"].decode()
