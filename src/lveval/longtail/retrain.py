"""Classifier retraining ("Phase 2" of Dave et al. 2021, Table 5d / Appendix B).

After end-to-end training with one sampler, only the final classification
layer is re-initialised and trained again with another sampler (Kang et al.,
"Decoupling Representation and Classifier for Long-Tailed Recognition",
ICLR 2020).  Everything else stays frozen.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler


def freeze_all_but(model: nn.Module, classifier: str) -> nn.Module:
    """Freeze every parameter of ``model`` except those of submodule ``classifier`` (dotted name)."""
    layer = model.get_submodule(classifier)
    for p in model.parameters():
        p.requires_grad_(False)
    for p in layer.parameters():
        p.requires_grad_(True)
    return layer


def reinitialize(layer: nn.Module) -> None:
    """Re-draw the parameters of every submodule of ``layer`` that can reset itself."""
    for module in layer.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


def retrain_classifier(
    model: nn.Module,
    classifier: str,
    dataset: Dataset,
    sampler: Sampler[int],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    epochs: int = 1,
    batch_size: int = 16,
    lr: float = 0.02,
    momentum: float = 0.9,
    weight_decay: float = 1e-4,
) -> list[float]:
    """Re-initialise and train only ``model.<classifier>``; return the per-step losses.

    ``dataset[i]`` must give ``(inputs, labels)`` that ``model`` and ``loss_fn``
    accept after default collation.  The frozen part runs in eval mode (so
    e.g. batch-norm statistics stay fixed).  Optimiser defaults follow the
    paper's Phase 2: SGD, lr 0.02, weight decay 1e-4.  Call
    ``torch.manual_seed`` first for a reproducible re-initialisation.
    """
    layer = freeze_all_but(model, classifier)
    reinitialize(layer)
    optimizer = torch.optim.SGD(layer.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler)
    was_training = model.training
    model.eval()
    layer.train()
    history: list[float] = []
    try:
        for epoch in range(epochs):
            if hasattr(sampler, "set_epoch"):
                sampler.set_epoch(epoch)
            for inputs, labels in loader:
                loss = loss_fn(model(inputs), labels)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                history.append(float(loss.detach()))
    finally:
        model.train(was_training)
    return history
