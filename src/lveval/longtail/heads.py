"""Classifier-head variants of Dave et al. 2021, Table 5b / Appendix B.

* :class:`NormalizedLinear` -- f(x) = tau * <w/|w|, x/|x|> + b (paper Figure 5,
  after Wang et al., "Frustratingly Simple Few-Shot Object Detection").
* :class:`ObjectnessHead` -- a K-way classifier plus a parallel binary
  objectness predictor; at test time s'_c = s_obj * s_c.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .losses import zero_loss

#: Temperatures tuned per loss in Dave et al. Appendix B ("Normalized layer").
TEMPERATURES = {"softmax_ce": 20.0, "bags": 20.0, "sigmoid_bce": 50.0, "eql": 50.0, "federated": 50.0}


def default_temperature(loss_name: str) -> float:
    """The paper's tau for a normalised classifier trained with ``loss_name``."""
    try:
        return TEMPERATURES[loss_name]
    except KeyError:
        raise ValueError(f"unknown loss {loss_name!r}; expected one of {sorted(TEMPERATURES)}") from None


class NormalizedLinear(nn.Linear):
    """Cosine-similarity classifier: tau * <w/|w|, x/|x|> + b.

    L2-normalising both features and weights removes the weight-norm bias
    towards frequent classes; ``temperature`` (tau) restores a usable logit
    range.  A plain ``nn.Linear`` subclass, so ``reset_parameters`` works.
    """

    def __init__(self, in_features: int, out_features: int, temperature: float = 20.0, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self.temperature = float(temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.temperature * F.normalize(x, dim=1), F.normalize(self.weight, dim=1), self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, temperature={self.temperature}"


def make_linear(in_features: int, out_features: int, normalized: bool = False, temperature: float = 20.0) -> nn.Linear:
    """A plain or normalised linear layer."""
    if normalized:
        return NormalizedLinear(in_features, out_features, temperature)
    return nn.Linear(in_features, out_features)


class ObjectnessHead(nn.Module):
    """Classifier with a parallel objectness predictor (Dave et al. Appendix B).

    ``forward`` returns ``(class_logits, objectness_logits)`` of shapes
    (N, num_logits) and (N,).  When ``normalized`` is set both layers are
    normalised, as the paper does.  Train the objectness branch with
    :func:`objectness_loss`; score with :func:`objectness_scores`.
    """

    def __init__(self, in_features: int, num_logits: int, normalized: bool = False, temperature: float = 20.0):
        super().__init__()
        self.classifier = make_linear(in_features, num_logits, normalized, temperature)
        self.objectness = make_linear(in_features, 1, normalized, temperature)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.classifier(x), self.objectness(x).squeeze(1)


def objectness_loss(objectness_logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean sigmoid BCE with target 1 for proposals matched to any object (label < K), else 0."""
    if objectness_logits.numel() == 0:
        return zero_loss(objectness_logits)
    targets = (labels < num_classes).to(objectness_logits.dtype)
    return F.binary_cross_entropy_with_logits(objectness_logits, targets)


def objectness_scores(class_scores: torch.Tensor, objectness_logits: torch.Tensor) -> torch.Tensor:
    """Test-time rescoring s'_c = sigmoid(objectness) * s_c, for class scores (N, K)."""
    return objectness_logits.sigmoid().unsqueeze(1) * class_scores
