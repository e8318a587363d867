"""Classification losses compared in Dave et al. 2021, Section 5 / Appendix B.

Every loss takes ``logits`` of shape (N, K+1) -- K foreground classes, the
last column is background -- and ``labels`` (int64, in [0, K], K meaning
background), and returns a scalar.  Sigmoid-style losses ignore the background
column (a background proposal simply has all-zero foreground targets), as in
the paper's "Sigmoid BCE", EQL and Federated implementations.  An empty batch
gives a zero that is still connected to ``logits``, so ``backward()`` works.

Each loss also knows how to turn logits into per-class scores (``scores``),
because the score rule is part of what a loss changes (paper Figure 3).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

#: Tuned defaults from Dave et al. 2021, Table 13.
EQL_LAMBDA = 1e-3
FEDERATED_NUM_CLASSES = 50
FEDERATED_FREQ_POWER = 0.5


def _as_float_tensor(values: Sequence[float] | torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(values, dtype=torch.float32).flatten().clone()


def zero_loss(logits: torch.Tensor) -> torch.Tensor:
    """A zero scalar that keeps a gradient path to ``logits`` (for empty batches)."""
    return logits.sum() * 0.0


class LongTailLoss(nn.Module):
    """Base class: checks shapes, handles empty batches, defines the score rule."""

    def __init__(self, num_classes: int):
        super().__init__()
        if num_classes < 1:
            raise ValueError("num_classes must be >= 1")
        self.num_classes = int(num_classes)

    @property
    def num_logits(self) -> int:
        """Width of the classifier output this loss expects (K+1 here)."""
        return self.num_classes + 1

    def _check(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        if logits.dim() != 2 or logits.shape[1] != self.num_logits:
            raise ValueError(f"expected logits of shape (N, {self.num_logits}), got {tuple(logits.shape)}")
        if labels.shape != logits.shape[:1]:
            raise ValueError(f"labels shape {tuple(labels.shape)} does not match {logits.shape[0]} logits")
        if labels.numel() and (labels.min() < 0 or labels.max() > self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes}]")

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, **kwargs) -> torch.Tensor:
        """Scalar loss; extra keyword arguments go to the subclass (e.g. ``gt_classes``)."""
        self._check(logits, labels)
        if logits.shape[0] == 0:
            return zero_loss(logits)
        return self._loss(logits, labels.long(), **kwargs)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def scores(self, logits: torch.Tensor) -> torch.Tensor:
        """Per-class confidence (N, K) used at test time."""
        raise NotImplementedError


class SoftmaxCELoss(LongTailLoss):
    """Softmax cross-entropy over K+1 classes, averaged over the N proposals (the baseline)."""

    def _loss(self, logits, labels):
        return F.cross_entropy(logits, labels, reduction="mean")

    def scores(self, logits):
        return logits.softmax(dim=1)[:, : self.num_classes]


class SigmoidBCELoss(LongTailLoss):
    """Sigmoid binary cross-entropy: summed over the K*N foreground terms, divided by N.

    This is the normalisation Dave et al. describe in Appendix B.  EQL and the
    Federated loss reuse it and only change which terms count (``weights``).
    """

    def _loss(self, logits, labels):
        return self._bce(logits, self._targets(labels, logits.dtype))

    def _targets(self, labels: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """One-hot foreground targets (N, K); a background proposal is all zeros."""
        return F.one_hot(labels, self.num_classes + 1)[:, : self.num_classes].to(dtype)

    def _bce(self, logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None):
        k = self.num_classes
        total = F.binary_cross_entropy_with_logits(logits[:, :k], targets, weight=weights, reduction="sum")
        return total / logits.shape[0]

    def scores(self, logits):
        return logits[:, : self.num_classes].sigmoid()


class EQLLoss(SigmoidBCELoss):
    """Equalization loss (Tan et al., "Equalization Loss for Long-Tailed Object Recognition", CVPR 2020).

    Sigmoid BCE with weight w_j = 1 - E(r) T_lambda(f_j) (1 - y_j): for a
    *foreground* proposal (E(r)=1) the negative terms of rare classes -- those
    with training image frequency f_j below ``lambda_`` -- are dropped, so
    frequent classes stop suppressing rare ones.  Background proposals keep all
    terms.  ``lambda_`` defaults to 1e-3, the value tuned in Dave et al. Table 13.
    """

    def __init__(self, class_frequency: Sequence[float] | torch.Tensor, lambda_: float = EQL_LAMBDA):
        freq = _as_float_tensor(class_frequency)
        super().__init__(len(freq))
        self.lambda_ = float(lambda_)
        self.register_buffer("rare", (freq < self.lambda_).to(torch.float32))

    def _loss(self, logits, labels):
        targets = self._targets(labels, logits.dtype)
        foreground = (labels < self.num_classes).to(logits.dtype).unsqueeze(1)
        weights = 1.0 - foreground * self.rare.to(logits.dtype).unsqueeze(0) * (1.0 - targets)
        return self._bce(logits, targets, weights)


class FederatedLoss(SigmoidBCELoss):
    """Federated loss (Zhou et al., "Probabilistic two-stage detection", 2021; CenterNet2).

    Sigmoid BCE restricted to a class set S drawn per mini-batch: every class
    present in the batch's ground truth, plus negatives sampled without
    replacement with probability proportional to ``class_frequency ** 0.5``
    until |S| = ``num_sampled`` (50, Dave et al. Table 13).  Pass a seeded
    ``torch.Generator`` for reproducible sampling.
    """

    def __init__(
        self,
        class_frequency: Sequence[float] | torch.Tensor,
        num_sampled: int = FEDERATED_NUM_CLASSES,
        freq_power: float = FEDERATED_FREQ_POWER,
        generator: torch.Generator | None = None,
    ):
        freq = _as_float_tensor(class_frequency)
        super().__init__(len(freq))
        self.num_sampled = int(num_sampled)
        self.generator = generator
        self.register_buffer("sample_weight", freq.clamp(min=0) ** freq_power)

    def sample_classes(self, labels: torch.Tensor, gt_classes: torch.Tensor | None = None) -> torch.Tensor:
        """Sorted class indices of S (``gt_classes`` defaults to the batch's foreground labels)."""
        present = labels if gt_classes is None else gt_classes.long().to(labels.device)
        present = torch.unique(present[present < self.num_classes])
        missing = self.num_sampled - present.numel()
        if missing <= 0:
            return present
        prob = self.sample_weight.clone()
        prob[present] = 0.0
        missing = min(missing, int((prob > 0).sum()))
        if missing == 0:
            return present
        extra = torch.multinomial(prob, missing, replacement=False, generator=self.generator)
        return torch.sort(torch.cat([present, extra])).values

    def _loss(self, logits, labels, gt_classes: torch.Tensor | None = None):
        targets = self._targets(labels, logits.dtype)
        mask = torch.zeros(self.num_classes, dtype=logits.dtype, device=logits.device)
        mask[self.sample_classes(labels, gt_classes)] = 1.0
        return self._bce(logits, targets, mask.unsqueeze(0).expand_as(targets))
