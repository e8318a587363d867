"""The paper's analyses on top of the engine: toy example, gaming by re-ranking,
cap and budget sweeps, class subsets, score distributions, NMS sensitivity and
the audit report.

Every analysis loads its inputs once, matches the union of the selections it
needs once (``Evaluator.matching_for``) and accumulates each setting from that
one matching pass; nothing here re-implements matching or accumulation.

Each analysis returns a typed result (:mod:`lveval.analysis.results`, exported
here) whose ``to_dict()`` is what its ``--json`` option writes.
"""
from .common import Session
from .results import (
    AuditCounts,
    AuditResult,
    AuditSettings,
    BudgetRow,
    CapRow,
    GroupShare,
    Limits,
    NmsResult,
    NmsRow,
    NmsSettings,
    NmsTiming,
    OldFixed,
    RerankResult,
    RerankRow,
    RerankSettings,
    ScoreGroup,
    ScoreHistogram,
    ScoreStats,
    SeparateTiming,
    SubsetRow,
    SubsetsResult,
    SweepResult,
    SweepTiming,
    ToyResult,
)

__all__ = ["AuditCounts", "AuditResult", "AuditSettings", "BudgetRow", "CapRow", "GroupShare", "Limits",
           "NmsResult", "NmsRow", "NmsSettings", "NmsTiming", "OldFixed", "RerankResult", "RerankRow",
           "RerankSettings", "ScoreGroup", "ScoreHistogram", "ScoreStats", "SeparateTiming", "Session",
           "SubsetRow", "SubsetsResult", "SweepResult", "SweepTiming", "ToyResult"]
