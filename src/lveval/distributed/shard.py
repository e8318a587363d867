"""Splitting results by class: shard plans, what a worker reads, and class-partitioned Parquet.

A *shard* is a set of classes with all their detections. Every ground-truth
class belongs to exactly one shard, and so does every category id found in
the results (unknown ids too, so that ``bind`` sees them and applies the
``on_unknown_category`` policy). Rows keep their *record*: their index in
the full results file. Inside a shard rows stay in record order, so every
tie the engine breaks by row order is broken the same way as on the full set.

Three kinds of input:

* results in memory (a list of dicts, columns, ``Detections``, or a JSON
  file loaded by the driver): the driver splits them and ships each shard
  with its task;
* one Parquet file: each worker scans it row group by row group and keeps
  the rows of its classes (bounded memory, but every shard scans the file);
* a class-partitioned directory written by :func:`partition`: one Parquet
  file per shard with a ``record`` column; each worker reads only its file.
"""
from __future__ import annotations

import contextlib
import heapq
import json
import os
from dataclasses import dataclass, field, replace

import numpy as np

from ..exceptions import InputError, Notices
from ..io.results import Detections, from_table, load_results, write_results

MANIFEST = "manifest.json"
FORMAT = "lveval-partition"
BATCH_ROWS = 1 << 20


# ---------------------------------------------------------------------------------- planning

def plan(cat_ids: np.ndarray, counts: np.ndarray, num_shards: int) -> list:
    """Category ids of each shard: largest classes first, each to the least loaded shard.

    Balancing by detection count keeps the shards' work and memory alike;
    the plan is deterministic (ties go to the lower category id and shard).
    """
    num_shards = max(1, int(num_shards))
    order = np.lexsort((cat_ids, -counts))
    heap = [(0, s) for s in range(num_shards)]
    out = [[] for _ in range(num_shards)]
    for i in order:
        load, s = heapq.heappop(heap)
        out[s].append(int(cat_ids[i]))
        heapq.heappush(heap, (load + int(counts[i]), s))
    return [np.array(sorted(c), dtype=np.int64) for c in out]


def assign_gt(gt, shard_cat_ids: list) -> list:
    """Ground-truth class indices of each shard: those whose rows it holds, the rest round robin."""
    S = len(shard_cat_ids)
    owner = np.full(gt.num_categories, -1, np.int64)
    for s, ids in enumerate(shard_cat_ids):
        idx, ok = gt.category_index(ids)
        owner[idx[ok]] = s
    free = np.flatnonzero(owner < 0)
    owner[free] = np.arange(len(free)) % S
    return [np.flatnonzero(owner == s) for s in range(S)]


def ids_of(column) -> np.ndarray:
    """An Arrow id column as int64 (nulls become an arbitrary id: the engine rejects them later,
    naming the record, in whichever shard the row lands)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(column.to_numpy(zero_copy_only=False)).astype(np.int64)


def count_ids(values) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ids and their counts over an iterable of integer arrays."""
    ids, counts = np.zeros(0, np.int64), np.zeros(0, np.int64)
    for v in values:
        u, c = np.unique(np.asarray(v).astype(np.int64, copy=False), return_counts=True)
        ids, inv = np.unique(np.r_[ids, u], return_inverse=True)
        counts = np.bincount(inv, weights=np.r_[counts, c], minlength=len(ids)).astype(np.int64)
    return ids, counts


# ---------------------------------------------------------------------------- shard sources

@dataclass
class CapColumns:
    """What AP-Old's first pass needs of a chunk of rows: ids, score and record, in record order."""

    img_id: np.ndarray
    cat_id: np.ndarray
    score: np.ndarray
    record: np.ndarray

    def read(self) -> CapColumns:
        return self


@dataclass
class MemoryShard:
    """Rows already in memory (shipped with the task)."""

    dets: Detections

    def read(self) -> Detections:
        return self.dets

    def cap_columns(self) -> CapColumns:
        d = self.dets
        return CapColumns(d.img_id, d.cat_id, d.score, d.record)


def _open_parquet(path: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"not a readable Parquet file ({str(exc).splitlines()[0]})", path=path) from None


def _to_detections(table, record: np.ndarray, display: str) -> Detections:
    """Engine conversion of an Arrow table, with record numbers of the full file in errors."""
    try:
        d = from_table(table, display)
    except InputError as exc:
        if exc.record is None or exc.record >= len(record):
            raise
        raise InputError(exc.reason, path=exc.path, record=int(record[exc.record]), field=exc.field) from None
    return replace(d, record=np.asarray(record, np.int64))


def check_schema(pf, display: str) -> None:
    """The engine's column checks on an empty table of the file's schema (fail before any work)."""
    from_table(pf.schema_arrow.empty_table(), display)


@dataclass
class ParquetRowGroups:
    """Consecutive row groups of one Parquet file (starting at record ``first_record[0]``):
    a chunk of AP-Old's first pass."""

    path: str
    row_groups: list
    first_record: list

    def read(self) -> CapColumns:
        pf = _open_parquet(self.path)
        parts = []
        r0 = self.first_record[0] if self.first_record else 0
        for b in pf.iter_batches(batch_size=BATCH_ROWS, row_groups=self.row_groups,
                                 columns=["image_id", "category_id", "score"]):
            parts.append((b, r0))
            r0 += b.num_rows
        return _cap_from_tables(parts)


def _cap_from_tables(parts) -> CapColumns:
    cols = {k: [] for k in ("image_id", "category_id", "score")}
    rec = []
    for t, r0 in parts:
        for k in cols:
            cols[k].append(np.asarray(t.column(k).to_numpy(zero_copy_only=False)))   # nulls: rejected in pass 2
        rec.append(np.arange(r0, r0 + t.num_rows, dtype=np.int64) if np.isscalar(r0) else r0)
    def cat(a, dt):
        with np.errstate(invalid="ignore"):
            return np.concatenate(a).astype(dt, copy=False) if a else np.zeros(0, dt)

    return CapColumns(cat(cols["image_id"], np.int64), cat(cols["category_id"], np.int64),
                      cat(cols["score"], np.float64), cat(rec, np.int64))


@dataclass
class ParquetScanShard:
    """The rows of some category ids in one Parquet file, read batch by batch."""

    path: str
    cat_ids: np.ndarray
    display: str
    batch_rows: int = BATCH_ROWS

    def read(self) -> Detections:
        import pyarrow as pa

        pf = _open_parquet(self.path)
        tables, records = [], []
        r0 = 0
        for b in pf.iter_batches(batch_size=self.batch_rows):   # memory: one batch plus the kept rows
            cat = ids_of(b.column(b.schema.get_field_index("category_id")))
            hit = np.flatnonzero(np.isin(cat, self.cat_ids))
            if len(hit):
                tables.append(pa.Table.from_batches([b.take(pa.array(hit))]))
                records.append(hit + r0)
            r0 += b.num_rows
        table = pa.concat_tables(tables) if tables else pf.schema_arrow.empty_table()
        rec = np.concatenate(records) if records else np.zeros(0, np.int64)
        return _to_detections(table, rec, self.display)


@dataclass
class PartFile:
    """One file of a class-partitioned directory (all its rows belong to the shard)."""

    path: str
    display: str

    def read(self) -> Detections:
        pf = _open_parquet(self.path)
        table = pf.read()
        rec = table.column("record").to_numpy().astype(np.int64, copy=False)
        return _to_detections(table.drop_columns(["record"]), rec, self.display)

    def cap_columns(self) -> CapColumns:
        pf = _open_parquet(self.path)
        t = pf.read(columns=["image_id", "category_id", "score", "record"])
        return _cap_from_tables([(t, t.column("record").to_numpy())])


@dataclass
class PartCap:
    """AP-Old's first-pass chunk for a :class:`PartFile`."""

    part: PartFile

    def read(self) -> CapColumns:
        return self.part.cap_columns()


# ------------------------------------------------------------------------- opening inputs

@dataclass
class Sharded:
    """An input split for the workers: shard sources with their GT classes, and cap chunks."""

    shards: list                 # sources with .read() -> Detections
    gt_cats: list                # GT class indices each shard answers for
    cap_chunks: list             # sources with .read() -> CapColumns
    digest: str | None = None    # sha256 of the results file, as lveval.evaluate records it
    notices: Notices = field(default_factory=Notices)   # the loader's notices (counted once)


def is_partition(path) -> bool:
    return isinstance(path, (str, os.PathLike)) and os.path.isfile(os.path.join(str(path), MANIFEST))


def is_parquet(path) -> bool:
    return isinstance(path, (str, os.PathLike)) and str(path).lower().endswith((".parquet", ".pq"))


def open_sharded(results, gt, num_shards: int, *, chunk_rows: int = BATCH_ROWS) -> Sharded:
    """Split ``results`` by class into ``num_shards`` shards (a partition keeps its own split)."""
    from ..metrics import file_digest, input_digest

    if is_partition(results):
        return _open_partition(str(results), gt)
    if is_parquet(results):
        path = str(results)
        pf = _open_parquet(path)
        check_schema(pf, path)
        ids, counts = count_ids(ids_of(b.column(0)) for b in
                                pf.iter_batches(batch_size=BATCH_ROWS, columns=["category_id"]))
        shard_ids = plan(ids, counts, num_shards)
        shards = [ParquetScanShard(os.path.abspath(path), ids_s, path) for ids_s in shard_ids]
        # first-pass chunks: consecutive row groups of about chunk_rows rows
        chunks, cur, first, n_cur, r0 = [], [], [], 0, 0
        for rg in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(rg).num_rows
            cur.append(rg)
            first.append(r0)
            n_cur += n
            r0 += n
            if n_cur >= chunk_rows:
                chunks.append(ParquetRowGroups(os.path.abspath(path), cur, first))
                cur, first, n_cur = [], [], 0
        if cur:
            chunks.append(ParquetRowGroups(os.path.abspath(path), cur, first))
        return Sharded(shards, assign_gt(gt, shard_ids), chunks, file_digest(path))
    raw = load_results(results)
    notices = raw.notices
    raw = replace(raw, notices=Notices())   # the loader's notices are merged once, by the driver
    if raw.record is None:
        raw = replace(raw, record=np.arange(len(raw), dtype=np.int64))
    ids, inv, counts = np.unique(raw.cat_id, return_inverse=True, return_counts=True)
    shard_ids = plan(ids, counts, num_shards)
    owner = np.empty(len(ids), np.int64)
    for s, ids_s in enumerate(shard_ids):
        owner[np.searchsorted(ids, ids_s)] = s
    row_shard = owner[inv.reshape(-1)] if len(raw) else np.zeros(0, np.int64)
    order = np.argsort(row_shard, kind="stable")
    bounds = np.searchsorted(row_shard[order], np.arange(len(shard_ids) + 1))
    shards = [MemoryShard(raw.take(order[bounds[s]:bounds[s + 1]])) for s in range(len(shard_ids))]
    chunks = [sh.cap_columns() for sh in shards]
    return Sharded(shards, assign_gt(gt, shard_ids), chunks, input_digest(results, raw.digest), notices)


def read_manifest(directory: str) -> dict:
    p = os.path.join(directory, MANIFEST)
    try:
        with open(p, "rb") as f:
            m = json.loads(f.read())
    except (OSError, ValueError) as exc:
        raise InputError(f"not a readable partition manifest ({exc})", path=p) from None
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        raise InputError(f"not an lveval partition manifest (expected format '{FORMAT}')", path=p)
    return m


def _open_partition(directory: str, gt) -> Sharded:
    m = read_manifest(directory)
    display = m.get("source") or directory
    parts, shard_ids = [], []
    for p in m["parts"]:
        f = os.path.abspath(os.path.join(directory, p["file"]))
        if not os.path.isfile(f):
            raise InputError("partition file listed in the manifest is missing", path=f)
        parts.append(PartFile(f, display))
        shard_ids.append(np.asarray(p["category_ids"], np.int64))
    if not parts:   # no detections at all: one empty shard answers for every class
        empty = Detections(img_id=np.zeros(0, np.int64), cat_id=np.zeros(0, np.int64),
                           score=np.zeros(0), bbox=np.zeros((0, 4)), path=display,
                           record=np.zeros(0, np.int64))
        return Sharded([MemoryShard(empty)], assign_gt(gt, [np.zeros(0, np.int64)]), [], m.get("source_digest"))
    return Sharded(parts, assign_gt(gt, shard_ids), [PartCap(p) for p in parts], m.get("source_digest"))


# ------------------------------------------------------------------------------ partition

def partition(results, out_dir: str, num_shards: int, *, batch_rows: int = BATCH_ROWS) -> dict:
    """Write ``results`` as class-partitioned Parquet: one file per shard plus ``manifest.json``.

    Any input ``lveval.io.load_results`` reads is accepted; Parquet input is
    streamed in batches of ``batch_rows`` rows (memory bounded by a batch
    and the rows buffered per shard), other inputs are loaded once and
    converted with ``lveval.io.write_results``. Each part keeps its rows in
    file order with a ``record`` column (the row's index in ``results``).
    Returns the manifest.
    """
    import tempfile

    import pyarrow as pa

    from .. import atomic
    from ..atomic import atomic_write, check_output, output_dir
    from ..io.parquet import ParquetStream
    from ..metrics import input_digest

    output_dir(out_dir)
    check_output(os.path.join(out_dir, MANIFEST), inside=out_dir)
    tmp_src = None
    try:
        if is_parquet(results):
            src, display, digest = str(results), str(results), input_digest(results, None)
        else:
            d = load_results(results)
            display, digest = d.path, input_digest(results, d.digest)
            fd, tmp_src = tempfile.mkstemp(prefix=".source.", suffix=".parquet", dir=out_dir)
            os.close(fd)
            atomic._TEMPS.add(tmp_src)   # removed on a signal too
            write_results(d, tmp_src)
            src = tmp_src
            del d
        pf = _open_parquet(src)
        check_schema(pf, display)
        ids, counts = count_ids(ids_of(b.column(0)) for b in
                                pf.iter_batches(batch_size=batch_rows, columns=["category_id"]))
        shard_ids = [s for s in plan(ids, counts, num_shards) if len(s)]
        owner_ids = np.concatenate(shard_ids) if shard_ids else np.zeros(0, np.int64)
        owner = np.concatenate([np.full(len(s), i) for i, s in enumerate(shard_ids)]) if shard_ids else owner_ids
        o = np.argsort(owner_ids)
        owner_ids, owner = owner_ids[o], owner[o]
        schema = pf.schema_arrow.append(pa.field("record", pa.int64()))
        names = [f"part-{i:05d}.parquet" for i in range(len(shard_ids))]
        buffers = [[] for _ in shard_ids]
        buffered = np.zeros(len(shard_ids), np.int64)
        rows = np.zeros(len(shard_ids), np.int64)
        r0 = 0
        commit = contextlib.ExitStack()   # from the parts' renames to the manifest's: signals wait
        with commit:
            with contextlib.ExitStack() as stack:   # every part appears only if all were written
                handles = [stack.enter_context(atomic_write(os.path.join(out_dir, n), "wb", inside=out_dir))
                           for n in names]
                writers = [ParquetStream(h, schema) for h in handles]
                stack.callback(_close_all, writers)   # on failure too: no writer left to complain at exit

                def flush(s):
                    if buffers[s]:
                        writers[s].write(pa.Table.from_batches(buffers[s], schema))
                        rows[s] += buffered[s]
                        buffers[s], buffered[s] = [], 0

                for batch in pf.iter_batches(batch_size=batch_rows):
                    n = batch.num_rows
                    cat = ids_of(batch.column(batch.schema.get_field_index("category_id")))
                    s_of = owner[np.searchsorted(owner_ids, cat)]
                    o = np.argsort(s_of, kind="stable")
                    b = np.searchsorted(s_of[o], np.arange(len(shard_ids) + 1))
                    full = pa.RecordBatch.from_arrays(
                        batch.columns + [pa.array(np.arange(r0, r0 + n, dtype=np.int64))], schema=schema)
                    for s in range(len(shard_ids)):
                        if b[s + 1] > b[s]:
                            buffers[s].append(full.take(pa.array(o[b[s]:b[s + 1]])))
                            buffered[s] += b[s + 1] - b[s]
                            if buffered[s] >= batch_rows:
                                flush(s)
                    r0 += n
                for s in range(len(shard_ids)):
                    flush(s)
                    writers[s].close()
                commit.enter_context(atomic.deferred_signals())
            manifest = {"format": FORMAT, "version": 1, "source": display, "source_digest": digest,
                        "num_rows": int(r0),
                        "parts": [{"file": n, "rows": int(r), "category_ids": s.tolist()}
                                  for n, r, s in zip(names, rows, shard_ids)]}
            with atomic_write(os.path.join(out_dir, MANIFEST), "w", inside=out_dir) as f:
                json.dump(manifest, f, indent=1, sort_keys=True)
            _remove_stale_parts(out_dir, names)
        return manifest
    finally:
        if tmp_src and os.path.exists(tmp_src):
            os.unlink(tmp_src)
        atomic._TEMPS.discard(tmp_src)


def _close_all(writers) -> None:
    for w in writers:   # closing after a failure (or again after success): the failure is what is reported
        w.abort()


def _remove_stale_parts(out_dir: str, names: list) -> None:
    """Part files of an earlier run with more shards (not in the new manifest) are removed."""
    import re

    keep = set(names)
    for n in os.listdir(out_dir):
        if re.fullmatch(r"part-\d{5}\.parquet", n) and n not in keep:
            p = os.path.join(out_dir, n)
            if os.path.isfile(p) and not os.path.islink(p):
                os.unlink(p)
