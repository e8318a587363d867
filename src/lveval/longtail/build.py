"""Construct any of the paper's losses by name from class statistics."""

from __future__ import annotations

from typing import Any

import torch

from .bags import BaGSLoss
from .losses import EQLLoss, FederatedLoss, LongTailLoss, SigmoidBCELoss, SoftmaxCELoss
from .stats import ClassStats

#: Loss names in the order of Dave et al. Table 5a.
LOSS_NAMES = ("softmax_ce", "sigmoid_bce", "eql", "federated", "bags")


def build_loss(name: str, stats: ClassStats, generator: torch.Generator | None = None, **kwargs: Any) -> LongTailLoss:
    """The loss ``name`` with Table 13 defaults, fed with the statistics it needs.

    EQL and Federated use the image frequency f(c); BaGS the instance counts.
    ``generator`` seeds the sampling of Federated and BaGS; ``kwargs``
    override a loss's hyper-parameters (e.g. ``lambda_``, ``num_sampled``, ``beta``).
    """
    if name == "softmax_ce":
        return SoftmaxCELoss(stats.num_classes, **kwargs)
    if name == "sigmoid_bce":
        return SigmoidBCELoss(stats.num_classes, **kwargs)
    if name == "eql":
        return EQLLoss(stats.image_frequency, **kwargs)
    if name == "federated":
        return FederatedLoss(stats.image_frequency, generator=generator, **kwargs)
    if name == "bags":
        return BaGSLoss(stats.instance_count, generator=generator, **kwargs)
    raise ValueError(f"unknown loss {name!r}; expected one of {LOSS_NAMES}")
