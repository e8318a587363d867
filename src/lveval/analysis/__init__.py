"""The paper's analyses on top of the engine: toy example, gaming by re-ranking,
cap and budget sweeps, class subsets, score distributions, NMS sensitivity and
the audit report.

Every analysis loads its inputs once, matches the union of the selections it
needs once (``Evaluator.matching_for``) and accumulates each setting from that
one matching pass; nothing here re-implements matching or accumulation.
"""
from .common import Session

__all__ = ["Session"]
