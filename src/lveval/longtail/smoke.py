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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .build import LOSS_NAMES, build_loss
from .losses import FEDERATED_NUM_CLASSES
from .stats import GROUPS, ClassStats

#: Where the LVIS v1 train statistics are looked for: $LVEVAL_LVIS_CAT_INFO,
#: else the copy bundled with lveval (lveval/data/).
CAT_INFO_ENV = "LVEVAL_LVIS_CAT_INFO"


def default_cat_info_path() -> str:
    """Path of lvis_v1_train_cat_info.json ($LVEVAL_LVIS_CAT_INFO or the bundled copy)."""
    if os.environ.get(CAT_INFO_ENV):
        return os.environ[CAT_INFO_ENV]
    from .. import data_path

    path = data_path("lvis_v1_train_cat_info.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"LVIS v1 cat-info not found at {path}; pass --cat-info or set ${CAT_INFO_ENV}")
    return path


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
    dim: int
    background_std: float = 1.0


def make_data(
    stats: ClassStats,
    dim: int = 32,
    num_supercategories: int = 6,
    test_per_class: int = 40,
    seed: int = 0,
) -> SyntheticData:
    """Gaussian class clusters grouped into supercategories; background near the origin.

    Class means are a supercategory mean (scale 3) plus a class offset (scale
    1), with unit feature noise, so classes of one supercategory are
    confusable -- as fine-grained LVIS classes are -- while background
    proposals (unit noise around 0) are easy to tell from objects.
    """
    g = torch.Generator().manual_seed(seed)
    supers = 3.0 * torch.randn(num_supercategories, dim, generator=g)
    parent = torch.randint(num_supercategories, (stats.num_classes,), generator=g)
    means = supers[parent] + torch.randn(stats.num_classes, dim, generator=g)
    train_y = torch.repeat_interleave(torch.arange(stats.num_classes), torch.as_tensor(stats.instance_count))
    train_x = means[train_y] + torch.randn(len(train_y), dim, generator=g)
    test_y = torch.arange(stats.num_classes).repeat_interleave(test_per_class)
    test_x = means[test_y] + torch.randn(len(test_y), dim, generator=g)
    return SyntheticData(stats, train_x, train_y, test_x, test_y, dim)


def scaled_federated_classes(num_classes: int, vocabulary: int) -> int:
    """Federated |S| for a K-class toy problem, keeping the paper's ratio 50 / 1203.

    With the literal |S| = 50 and K = 60, S would hold nearly every class and
    the Federated loss would reduce to sigmoid BCE.
    """
    return max(1, round(FEDERATED_NUM_CLASSES * num_classes / vocabulary))


def train_head(
    loss_name: str,
    data: SyntheticData,
    steps: int = 300,
    batch_size: int = 256,
    fg_fraction: float = 0.25,
    lr: float = 0.05,
    seed: int = 0,
    loss_kwargs: Mapping[str, Any] | None = None,
):
    """Train a linear head with ``loss_name``; return (head, loss module).

    Each step draws ``fg_fraction`` of the batch uniformly from the training
    pool (so classes appear in proportion to their LVIS instance counts) and
    the rest as background proposals; plain SGD with momentum.
    """
    g = torch.Generator().manual_seed(seed)
    loss = build_loss(loss_name, data.stats, generator=torch.Generator().manual_seed(seed + 1), **(loss_kwargs or {}))
    head = torch.nn.Linear(data.dim, loss.num_logits)
    with torch.no_grad():
        head.weight.normal_(0.0, 0.01, generator=g)
        head.bias.zero_()
    optimizer = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    num_fg = int(batch_size * fg_fraction)
    background_labels = torch.full((batch_size - num_fg,), data.stats.num_classes)
    for _ in range(steps):
        pick = torch.randint(len(data.train_y), (num_fg,), generator=g)
        background = data.background_std * torch.randn(batch_size - num_fg, data.dim, generator=g)
        x = torch.cat([data.train_x[pick], background])
        value = loss(head(x), torch.cat([data.train_y[pick], background_labels]))
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
    return head, loss


@torch.no_grad()
def group_scores(head, loss, data: SyntheticData) -> dict[str, float]:
    """Mean true-class score per r/c/f group on the balanced test set (unnormalised)."""
    scores = loss.scores(head(data.test_x))
    true_score = scores[torch.arange(len(data.test_y)), data.test_y]
    per_class = torch.zeros(data.stats.num_classes).index_add_(0, data.test_y, true_score)
    per_class /= torch.bincount(data.test_y, minlength=data.stats.num_classes)
    return {g: float(per_class[idx].mean()) for g, idx in data.stats.group_indices().items()}


def normalise(means: Mapping[str, float]) -> dict[str, float]:
    """Divide by the frequent-group mean, as in the paper's Figure 3."""
    return {g: v / means["f"] for g, v in means.items()}


def run(
    num_classes: int = 60,
    steps: int = 300,
    batch_size: int = 256,
    seed: int = 0,
    losses: Sequence[str] = LOSS_NAMES,
    dim: int = 32,
    federated_num_sampled: int | None = None,
    lvis: ClassStats | None = None,
) -> dict[str, dict[str, float]]:
    """Train one head per loss; return {loss: {group: normalised mean true-class score}}.

    ``lvis`` (the full LVIS v1 train statistics) defaults to
    :func:`default_cat_info_path`.  ``federated_num_sampled`` defaults to
    :func:`scaled_federated_classes`; the other losses use their Table 13 defaults.
    """
    if lvis is None:
        lvis = ClassStats.from_cat_info(default_cat_info_path())
    data = make_data(select_classes(lvis, num_classes), dim=dim, seed=seed)
    if federated_num_sampled is None:
        federated_num_sampled = scaled_federated_classes(num_classes, lvis.num_classes)
    results = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra threads only add overhead (10x slower on a busy CPU)
    try:
        for name in losses:
            kwargs = {"num_sampled": federated_num_sampled} if name == "federated" else None
            head, loss = train_head(name, data, steps, batch_size, seed=seed, loss_kwargs=kwargs)
            results[name] = normalise(group_scores(head, loss, data))
    finally:
        torch.set_num_threads(threads)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-classes", type=int, default=60)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--federated-num-sampled", type=int, default=None,
                        help="Federated |S| (default: 50 scaled by K/1203)")
    parser.add_argument("--cat-info", default=None,
                        help=f"LVIS v1 cat-info JSON (default: ${CAT_INFO_ENV} or the tests/ copy)")
    parser.add_argument("--losses", nargs="+", default=list(LOSS_NAMES), choices=LOSS_NAMES)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    lvis = ClassStats.from_cat_info(args.cat_info or default_cat_info_path())
    fed = args.federated_num_sampled or scaled_federated_classes(args.num_classes, lvis.num_classes)
    results = run(args.num_classes, args.steps, args.batch_size, args.seed, args.losses,
                  federated_num_sampled=fed, lvis=lvis)
    print("mean true-class score per LVIS group, normalised so frequent = 1.0")
    print(f"{'loss':<12}" + "".join(f"{g:>8}" for g in GROUPS))
    for name, row in results.items():
        print(f"{name:<12}" + "".join(f"{row[g]:8.3f}" for g in GROUPS))
    print(f"({args.num_classes} classes, {args.steps} steps, seed {args.seed}, federated |S|={fed}, "
          f"{time.perf_counter() - start:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
