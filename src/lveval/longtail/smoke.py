"""CPU smoke run: the score tilt of Dave et al. 2021, Figure 3, on synthetic features.

A linear classifier head is trained with each loss on Gaussian "proposal
features" whose classes follow the real LVIS v1 long tail: K classes are
picked from the LVIS v1 train statistics so that the r/c/f mix and the
instance counts are the real ones, and the training pool holds exactly
``instance_count`` features per class (plus background proposals, 75% of each
batch as in a Mask R-CNN RoI sampler).  On a class-balanced test set we
report the mean score of the true class per r/c/f group, normalised so that
frequent = 1.0.  The paper's finding: EQL, Federated and BaGS tilt scores
towards rare classes compared to softmax CE.

Run: ``python -m lveval.longtail.smoke [--steps N] [--seed S] [--num-classes K]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .build import LOSS_NAMES, build_loss
from .heads import default_temperature, make_linear
from .stats import GROUPS, ClassStats

#: Where the LVIS v1 train statistics are looked for: $LVEVAL_LVIS_CAT_INFO,
#: else the copy used by the test suite (tests/longtail/data/).
CAT_INFO_ENV = "LVEVAL_LVIS_CAT_INFO"


def default_cat_info_path() -> str:
    """Path of lvis_v1_train_cat_info.json ($LVEVAL_LVIS_CAT_INFO or the test-suite copy)."""
    if os.environ.get(CAT_INFO_ENV):
        return os.environ[CAT_INFO_ENV]
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 3))
    return os.path.join(root, "tests", "longtail", "data", "lvis_v1_train_cat_info.json")


def select_classes(stats: ClassStats, num_classes: int) -> ClassStats:
    """K classes with LVIS's r/c/f proportions, spread evenly over each group's instance counts."""
    groups = stats.group_indices()
    shares = np.array([len(groups[g]) for g in GROUPS], dtype=np.float64) * num_classes / stats.num_classes
    take = np.floor(shares).astype(int)
    take[np.argsort(take - shares)[: num_classes - take.sum()]] += 1  # largest remainders
    chosen = []
    for g, n in zip(GROUPS, take):
        members = groups[g][np.argsort(stats.instance_count[groups[g]], kind="stable")]
        chosen.extend(members[np.linspace(0, len(members) - 1, n).round().astype(int)])
    return stats.subset(sorted(chosen))


@dataclass
class SyntheticData:
    """Fixed long-tailed training pool and a class-balanced test set."""

    stats: ClassStats
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    background_std: float
    dim: int


def make_data(
    stats: ClassStats, dim: int = 32, noise: float = 2.0, test_per_class: int = 40, seed: int = 0
) -> SyntheticData:
    """Gaussian class clusters (unit-variance means, isotropic ``noise``), background around 0."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(stats.num_classes, dim, generator=g) * 2.0
    counts = torch.as_tensor(stats.instance_count)
    train_y = torch.repeat_interleave(torch.arange(stats.num_classes), counts)
    train_x = means[train_y] + noise * torch.randn(len(train_y), dim, generator=g)
    test_y = torch.arange(stats.num_classes).repeat_interleave(test_per_class)
    test_x = means[test_y] + noise * torch.randn(len(test_y), dim, generator=g)
    return SyntheticData(stats, train_x, train_y, test_x, test_y, background_std=noise * 1.5, dim=dim)


def train_head(
    loss_name: str,
    data: SyntheticData,
    steps: int = 300,
    batch_size: int = 256,
    fg_fraction: float = 0.25,
    lr: float = 0.05,
    normalized: bool = False,
    seed: int = 0,
):
    """Train a linear head with ``loss_name``; return (head, loss module)."""
    g = torch.Generator().manual_seed(seed)
    loss = build_loss(loss_name, data.stats, generator=torch.Generator().manual_seed(seed + 1))
    temperature = default_temperature(loss_name)
    head = make_linear(data.dim, loss.num_logits, normalized, temperature)
    with torch.no_grad():
        head.weight.normal_(0.0, 0.01, generator=g)
        head.bias.zero_()
    optimizer = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    num_fg = int(batch_size * fg_fraction)
    k = data.stats.num_classes
    for _ in range(steps):
        pick = torch.randint(len(data.train_y), (num_fg,), generator=g)
        background = data.background_std * torch.randn(batch_size - num_fg, data.dim, generator=g)
        x = torch.cat([data.train_x[pick], background])
        y = torch.cat([data.train_y[pick], torch.full((batch_size - num_fg,), k)])
        value = loss(head(x), y)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
    return head, loss


@torch.no_grad()
def group_scores(head, loss, data: SyntheticData) -> dict[str, float]:
    """Mean true-class score per r/c/f group on the balanced test set (unnormalised)."""
    scores = loss.scores(head(data.test_x))
    true_score = scores[torch.arange(len(data.test_y)), data.test_y].numpy()
    groups = data.stats.group_indices()
    cls_mean = np.array([true_score[data.test_y.numpy() == c].mean() for c in range(data.stats.num_classes)])
    return {g: float(cls_mean[groups[g]].mean()) for g in GROUPS}


def normalise(means: dict[str, float]) -> dict[str, float]:
    """Divide by the frequent-group mean, as in the paper's Figure 3."""
    return {g: v / means["f"] for g, v in means.items()}


def run(
    num_classes: int = 60,
    steps: int = 300,
    batch_size: int = 256,
    seed: int = 0,
    losses: Sequence[str] = LOSS_NAMES,
    dim: int = 32,
    normalized: bool = False,
    cat_info: str | None = None,
) -> dict[str, dict[str, float]]:
    """Train one head per loss; return {loss: {group: normalised mean true-class score}}."""
    stats = select_classes(ClassStats.from_cat_info(cat_info or default_cat_info_path()), num_classes)
    data = make_data(stats, dim=dim, seed=seed)
    results = {}
    for name in losses:
        head, loss = train_head(name, data, steps=steps, batch_size=batch_size, normalized=normalized, seed=seed)
        results[name] = normalise(group_scores(head, loss, data))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-classes", type=int, default=60)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--normalized", action="store_true", help="use the normalised linear layer")
    parser.add_argument("--cat-info", default=None, help=f"LVIS v1 cat-info JSON (default: ${CAT_INFO_ENV} or tests copy)")
    parser.add_argument("--losses", nargs="+", default=list(LOSS_NAMES), choices=LOSS_NAMES)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    results = run(args.num_classes, args.steps, args.batch_size, args.seed, args.losses,
                  normalized=args.normalized, cat_info=args.cat_info)
    print("mean true-class score per LVIS group, normalised so frequent = 1.0")
    print(f"{'loss':<12}" + "".join(f"{g:>8}" for g in GROUPS))
    for name, row in results.items():
        print(f"{name:<12}" + "".join(f"{row[g]:8.3f}" for g in GROUPS))
    print(f"({args.num_classes} classes, {args.steps} steps, seed {args.seed}, {time.perf_counter() - start:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
