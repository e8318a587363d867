"""Score distributions by frequency group (paper Figure 3).

The paper plots the score distribution of rare, common and frequent classes
normalised so the average score of frequent classes is 1.0. A detector whose
rare-class scores are systematically lower loses rare detections to AP-Old's
per-image cap; AP-Fixed is blind to it (per-class order is all it uses) and
AP-Pool penalises it (all classes share one ranking).

Which detections: by default AP-Fixed's selection (the top K of each class over
the set, i.e. what AP-Fixed and AP-Pool evaluate), so every class contributes
its own best detections whatever the per-image competition; "old" uses
AP-Old's top N per image and "all" every detection in the file. All three are
reported.
"""
from __future__ import annotations

import numpy as np

from ..exceptions import InputError
from ..io.gt import FREQUENCIES
from .common import Session, limit_json, limit_label
from .results import GroupShare, Limits, ScoreGroup, ScoreHistogram, ScoreStats

OVER = ("fixed", "old", "all")


def _selection(s: Session, over: str) -> np.ndarray:
    if over == "fixed":
        return s.budget()
    if over == "old":
        return s.cap()
    if over == "all":
        return np.ones(len(s.dets), bool)
    raise ValueError(f"over must be one of {', '.join(OVER)}, not {over!r}")


def score_stats(s: Session, bins: int = 40) -> ScoreStats:
    """Per frequency group and selection: count, mean, median, 90th percentile, mean / mean of 'f'.

    Also the share of detections each group gets in AP-Old's per-image cap next
    to its share of classes and of ground-truth instances, and a histogram of
    scores (AP-Fixed's selection) for plotting. ``result.to_dict()`` is what
    ``lveval scores --json`` writes.
    """
    if not s.has_frequencies:
        raise InputError("score distributions by frequency need LVIS frequencies ('frequency': r/c/f)")
    freq = s.gt.cat_freq
    row_freq = freq[s.dets.cat_idx]
    score = s.dets.score
    ngt = s.num_gt()
    sels = {over: _selection(s, over) for over in OVER}
    selections = {}
    for over, sel in sels.items():
        stats = {}
        for f in FREQUENCIES:
            v = score[sel & (row_freq == f)]
            stats[f] = (int(v.size), float(v.mean()) if v.size else None, float(np.median(v)) if v.size else None,
                        float(np.percentile(v, 90)) if v.size else None)
        ref = stats["f"][1]
        selections[over] = {f: ScoreGroup(count=n, mean=m, median=med, p90=p90,
                                          normalised_mean=(m / ref) if (m is not None and ref) else None)
                            for f, (n, m, med, p90) in stats.items()}
    cap = sels["old"]
    n_cap = max(int(cap.sum()), 1)
    shares = {f: GroupShare(classes=float((freq == f).mean()),
                            gt_instances=float(ngt[freq == f].sum() / max(ngt.sum(), 1)),
                            detections_in_cap=float((cap & (row_freq == f)).sum() / n_cap))
              for f in FREQUENCIES}
    sel = sels["fixed"]
    hi = float(score[sel].max()) if sel.any() else 1.0
    edges = np.linspace(0.0, max(hi, 1e-9), bins + 1)
    hist = ScoreHistogram(edges=edges.tolist(),
                          counts={f: np.histogram(score[sel & (row_freq == f)], edges)[0].tolist() for f in FREQUENCIES})
    return ScoreStats(selections=selections, shares=shares, histogram=hist,
                      settings=Limits(max_dets_per_image=limit_json(s.params.max_dets_per_image),
                                      max_dets_per_class=limit_json(s.params.max_dets_per_class)))


def table(stats: ScoreStats) -> str:
    """Normalised mean score per group and selection, and AP-Old's slot shares."""
    lines = [f"{'detections':<34}{'r':>8}{'c':>8}{'f':>8}   (mean score / mean score of frequent classes)"]
    st = stats.settings
    desc = {"fixed": f"top {limit_label(st.max_dets_per_class)} per class (AP-Fixed)",
            "old": f"top {limit_label(st.max_dets_per_image)} per image (AP-Old)",
            "all": "all detections"}
    for over in OVER:
        g = stats.selections[over]
        cells = "".join(f"{g[f].normalised_mean:8.3f}" if g[f].normalised_mean is not None else "       -"
                        for f in FREQUENCIES)
        lines.append(f"{desc[over]:<34}{cells}")
    lines.append("")
    lines.append(f"{'share of':<34}{'r':>8}{'c':>8}{'f':>8}")
    for key, label in (("classes", "classes"), ("gt_instances", "ground-truth instances"),
                       ("detections_in_cap", "detections kept by AP-Old's cap")):
        lines.append(f"{label:<34}" + "".join(f"{100 * getattr(stats.shares[f], key):7.1f}%" for f in FREQUENCIES))
    return "\n".join(lines)
