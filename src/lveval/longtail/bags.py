"""Balanced Group Softmax (Li et al., "Overcoming Classifier Imbalance for
Long-tail Object Detection with Balanced Group Softmax", CVPR 2020).

Classes are split into groups of similar training instance count so that a
softmax never makes a rare class compete with a very frequent one.  Each
group gets an extra ``others`` logit; group 0 holds only background and its
``others`` (i.e. foreground).  Logit layout used here, width K+1+G:

    [0, K)         one logit per foreground class
    K              background (group 0)
    K+1+g          ``others`` of group g, for g = 0..G-1

Group g >= 1 is made of the non-empty instance-count bins in order; with the
default edges (10, 100, 1000) the bins are [0,10), [10,100), [100,1000),
[1000,inf).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .losses import LongTailLoss, zero_loss

#: Instance-count bin edges of the BaGS paper (LVIS), and the tuned
#: ``others`` sampling ratio beta = 16 from Dave et al. Table 13.
BAGS_BIN_EDGES = (10, 100, 1000)
BAGS_BETA = 16.0


def bags_groups(instance_count: Sequence[int], edges: Sequence[int] = BAGS_BIN_EDGES) -> list[np.ndarray]:
    """Class indices of each foreground group (groups 1..G-1): non-empty count bins, in order."""
    counts = np.asarray(instance_count, dtype=np.int64)
    bins = np.searchsorted(np.asarray(edges), counts, side="right")
    groups = [np.flatnonzero(bins == b) for b in range(len(edges) + 1)]
    return [g for g in groups if g.size]


def bags_scores(logits: torch.Tensor, groups: Sequence[Sequence[int]], num_classes: int) -> torch.Tensor:
    """BaGS test-time scores (N, K).

    Softmax inside each group; a class's score is its in-group probability
    times the foreground (group-0 ``others``) probability, as in the BaGS
    paper's inference rule.  The background probability is 1 - that factor.
    """
    k = num_classes
    foreground = logits[:, [k, k + 1]].softmax(dim=1)[:, 1:]
    scores = logits.new_zeros(logits.shape[0], k)
    for g, classes in enumerate(groups, start=1):
        classes = torch.as_tensor(classes, dtype=torch.long, device=logits.device)
        group_logits = torch.cat([logits[:, classes], logits[:, k + 1 + g : k + 2 + g]], dim=1)
        scores[:, classes] = group_logits.softmax(dim=1)[:, :-1] * foreground
    return scores


class BaGSLoss(LongTailLoss):
    """Balanced Group Softmax loss: one cross-entropy per group, summed over groups.

    Targets: a proposal of class c has target c in c's group and ``others`` in
    every other group; a background proposal has target background in group 0
    and ``others`` elsewhere.  Group 0 uses every proposal.  In each other
    group the ``others`` proposals are subsampled (without replacement) to at
    most ``beta`` times the group's positives -- a group with no positives in
    the batch contributes nothing -- and the cross-entropy is averaged over the
    proposals kept.  ``beta`` defaults to 16 (Dave et al. Table 13).
    """

    def __init__(
        self,
        instance_count: Sequence[int],
        edges: Sequence[int] = BAGS_BIN_EDGES,
        beta: float = BAGS_BETA,
        generator: torch.Generator | None = None,
    ):
        super().__init__(len(instance_count))
        self.beta = float(beta)
        self.generator = generator
        self.groups = bags_groups(instance_count, edges)
        k = self.num_classes
        # Per group: the logit columns (others last) and label -> in-group target.
        self._columns: list[torch.Tensor] = [torch.tensor([k, k + 1])]
        self._targets: list[torch.Tensor] = [torch.ones(k + 1, dtype=torch.long)]
        self._targets[0][k] = 0
        for g, classes in enumerate(self.groups, start=1):
            self._columns.append(torch.tensor([*classes.tolist(), k + 1 + g]))
            target = torch.full((k + 1,), len(classes), dtype=torch.long)
            target[torch.as_tensor(classes)] = torch.arange(len(classes))
            self._targets.append(target)

    @property
    def num_groups(self) -> int:
        """G, including the background group 0."""
        return len(self.groups) + 1

    @property
    def num_logits(self) -> int:
        return self.num_classes + 1 + self.num_groups

    def _keep_mask(self, positive: torch.Tensor) -> torch.Tensor:
        """Positives plus at most beta * #positives randomly chosen ``others``."""
        n_pos = int(positive.sum())
        negatives = torch.nonzero(~positive).squeeze(1)
        n_keep = min(negatives.numel(), int(self.beta * n_pos))
        keep = positive.clone()
        if n_keep < negatives.numel():
            order = torch.randperm(negatives.numel(), generator=self.generator)
            negatives = negatives[order[:n_keep].to(negatives.device)]
        keep[negatives] = True
        return keep

    def _loss(self, logits, labels):
        total = zero_loss(logits)
        for g, (columns, target_of) in enumerate(zip(self._columns, self._targets)):
            columns = columns.to(logits.device)
            targets = target_of.to(logits.device)[labels]
            group_logits = logits[:, columns]
            if g > 0:
                positive = targets < len(columns) - 1
                if not positive.any():
                    continue
                keep = self._keep_mask(positive)
                group_logits, targets = group_logits[keep], targets[keep]
            total = total + F.cross_entropy(group_logits, targets, reduction="mean")
        return total

    def scores(self, logits):
        return bags_scores(logits, self.groups, self.num_classes)
