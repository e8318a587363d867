"""Cap and budget sweeps (paper Tables 2, 4 and 6) from one load and one matching pass.

Per-image caps and per-class budgets each keep a score-order prefix of every
(image, class) group, so the loosest cap and the loosest budget together
contain every other setting: match their union once, then accumulate each
setting from it.
"""
from __future__ import annotations

import time

import numpy as np

from .common import Session, largest, limit_json
from .results import BudgetRow, CapRow, SeparateTiming, SweepResult, SweepTiming

DEFAULT_CAPS = (100, 300, 1000, 2000, 5000, 10000)
DEFAULT_BUDGETS = (1000, 5000, 10000, 30000, 50000)


def sweep(s: Session, caps=DEFAULT_CAPS, budgets=DEFAULT_BUDGETS, pooled: bool = True) -> SweepResult:
    """AP-Old (and AP-Pool) per per-image cap, AP-Fixed (and AP-Pool) per per-class budget.

    A cap or budget of -1 means no limit (``None`` in the rows, JSON null);
    ``result.to_dict()`` is what ``lveval sweep --json`` writes.
    """
    t0 = time.perf_counter()
    caps, budgets = list(caps), list(budgets)
    union = np.zeros(len(s.dets), bool)
    if caps:
        union |= s.cap(largest(caps))
    if budgets:
        union |= s.budget(largest(budgets))
    s.ensure_matched(union)
    t_match = time.perf_counter()
    per_image, per_class = [], []
    for n in caps:
        sel = s.cap(n)
        per_image.append(CapRow(cap=limit_json(n), old=s.old(sel), pooled=s.pooled(sel) if pooled else None))
    for k in budgets:
        sel = s.budget(k)
        per_class.append(BudgetRow(k=limit_json(k), fixed=s.fixed(sel), pooled=s.pooled(sel) if pooled else None))
    t1 = time.perf_counter()
    timing = SweepTiming(load_s=s.timings.get("load"), match_s=t_match - t0, accumulate_s=t1 - t_match,
                         total_s=(s.timings.get("load") or 0.0) + (t1 - t0), settings=len(caps) + len(budgets))
    return SweepResult(dets_per_image=per_image, dets_per_class=per_class, timing=timing)


def time_separate(gt, results, caps, budgets, **eval_kwargs) -> SeparateTiming:
    """Seconds taken by one ``lveval.evaluate`` call per setting (the way a sweep costs without
    shared matching): AP-Old per cap, AP-Fixed per budget, each loading its inputs."""
    from ..metrics import evaluate

    eval_kwargs = {k: v for k, v in eval_kwargs.items() if k not in ("max_dets_per_image", "max_dets_per_class")}
    t0 = time.perf_counter()
    old = [evaluate(gt, results, protocols=("old",), max_dets_per_image=n, **eval_kwargs).old for n in caps]
    fixed = [evaluate(gt, results, protocols=("fixed",), max_dets_per_class=k, **eval_kwargs).fixed for k in budgets]
    return SeparateTiming(total_s=time.perf_counter() - t0, settings=len(caps) + len(budgets), old=old, fixed=fixed)
