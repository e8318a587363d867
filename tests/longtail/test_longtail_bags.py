"""Balanced Group Softmax: groups, targets, others-subsampling, scores, by hand."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lveval.longtail import BaGSLoss, bags_groups, bags_scores  # noqa: E402

# K = 6 classes.  Instance counts put classes {0, 4} in [0,10), {1, 5} in
# [10,100), {2} in [100,1000) and {3} in [1000,inf).  Logit columns:
# 0..5 classes, 6 background, 7 others of group 0, 8..11 others of groups 1..4.
COUNTS = [5, 50, 500, 5000, 3, 20]
K, BG = 6, 6
GROUP_COLS = {0: [6, 7], 1: [0, 4, 8], 2: [1, 5, 9], 3: [2, 10], 4: [3, 11]}


def target_col(group, label):
    cols = GROUP_COLS[group]
    if group == 0:
        return 6 if label == BG else 7
    return label if label in cols[:-1] else cols[-1]


def bags_by_hand(rows, labels, kept=None):
    """Value and gradient: sum over groups of the mean CE over the kept rows of each group."""
    value, grad = 0.0, [[0.0] * 12 for _ in rows]
    for group, cols in GROUP_COLS.items():
        has_positive = any(target_col(group, lab) != cols[-1] for lab in labels)
        if group > 0 and not has_positive:
            continue
        rows_used = [i for i in range(len(rows)) if kept is None or i in kept[group]]
        for i in rows_used:
            z = sum(math.exp(rows[i][c]) for c in cols)
            t = target_col(group, labels[i])
            value += -math.log(math.exp(rows[i][t]) / z) / len(rows_used)
            for c in cols:
                grad[i][c] += (math.exp(rows[i][c]) / z - (c == t)) / len(rows_used)
    return value, torch.tensor(grad, dtype=torch.float64)


def random_rows(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 12, generator=g, dtype=torch.float64).tolist()


def test_groups_and_layout():
    loss_fn = BaGSLoss(COUNTS)
    assert [g.tolist() for g in loss_fn.groups] == [[0, 4], [1, 5], [2], [3]]
    assert loss_fn.num_groups == 5 and loss_fn.num_logits == 12 and loss_fn.beta == 16.0


def test_empty_bins_are_dropped():
    assert [g.tolist() for g in bags_groups([1, 2000, 9])] == [[0, 2], [1]]
    assert BaGSLoss([1, 2000, 9]).num_logits == 3 + 1 + 3


@pytest.mark.parametrize("labels", [
    [0, 1, BG, 3, 4],  # nothing from group 3 ({2}): that group is skipped
    [0, 5, 2, 3, 3],  # foreground only: group 0 still trains, with target ``others``
], ids=["with-background", "foreground-only"])
def test_value_and_gradient_without_subsampling(labels):
    rows = random_rows(5, 0)
    logits = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
    loss = BaGSLoss(COUNTS, beta=1000.0)(logits, torch.tensor(labels))
    loss.backward()
    value, grad = bags_by_hand(rows, labels)
    assert loss.item() == pytest.approx(value, rel=1e-12)
    torch.testing.assert_close(logits.grad, grad)
    if 2 not in labels:
        assert torch.all(logits.grad[:, [2, 10]] == 0)


def test_only_background_trains_group_zero_only():
    rows = random_rows(3, 1)
    logits = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
    loss = BaGSLoss(COUNTS)(logits, torch.full((3,), BG))
    loss.backward()
    expected = sum(-math.log(math.exp(r[6]) / (math.exp(r[6]) + math.exp(r[7]))) for r in rows) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    assert torch.all(logits.grad[:, [0, 1, 2, 3, 4, 5, 8, 9, 10, 11]] == 0)


def test_softmax_is_group_wise():
    """Shifting all logits of one group leaves the loss unchanged; gradients sum to 0 per group."""
    rows = random_rows(8, 2)
    labels = torch.tensor([0, 1, 2, 3, 4, 5, BG, BG])
    loss_fn = BaGSLoss(COUNTS, beta=1000.0)
    logits = torch.tensor(rows, dtype=torch.float64, requires_grad=True)
    base = loss_fn(logits, labels)
    base.backward()
    for cols in GROUP_COLS.values():
        torch.testing.assert_close(logits.grad[:, cols].sum(dim=1), torch.zeros(8, dtype=torch.float64))
        shifted = logits.detach().clone()
        shifted[:, cols] += 3.0
        assert loss_fn(shifted, labels).item() == pytest.approx(base.item(), rel=1e-12)
    single = logits.detach().clone()
    single[:, 0] += 3.0  # a shift inside a group, not of the whole group, does change it
    assert loss_fn(single, labels).item() != pytest.approx(base.item(), rel=1e-6)


def test_others_are_subsampled_to_beta_times_positives():
    labels = torch.tensor([0] + [BG] * 20 + [3, 3])  # group 1: 1 positive, 22 others
    logits = torch.zeros(23, 12, dtype=torch.float64, requires_grad=True)
    loss_fn = BaGSLoss(COUNTS, generator=torch.Generator().manual_seed(0))  # beta = 16
    loss_fn(logits, labels).backward()

    def rows_in(cols):  # proposals that received gradient in these columns
        return set(torch.nonzero(logits.grad[:, cols].abs().sum(dim=1)).flatten().tolist())

    assert len(rows_in(GROUP_COLS[0])) == 23  # group 0 is never subsampled
    group1 = rows_in(GROUP_COLS[1])
    assert 0 in group1 and len(group1) == 1 + 16
    assert rows_in(GROUP_COLS[4]) == set(range(23))  # 2 positives: 32 > 21 others, keep all
    assert rows_in(GROUP_COLS[2]) == set() and rows_in(GROUP_COLS[3]) == set()

    # value of the subsampled loss, by hand, over the rows actually kept
    rows = torch.randn(23, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    logits = rows.clone().requires_grad_(True)
    loss = BaGSLoss(COUNTS, generator=torch.Generator().manual_seed(0))(logits, labels)
    loss.backward()
    kept = {g: rows_in(cols) for g, cols in GROUP_COLS.items()}
    value, grad = bags_by_hand(rows.tolist(), labels.tolist(), kept)
    assert loss.item() == pytest.approx(value, rel=1e-12)
    torch.testing.assert_close(logits.grad, grad)


def test_subsampling_is_seeded():
    logits = torch.randn(40, 12, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0] * 2 + [BG] * 38)

    def run(seed):
        return BaGSLoss(COUNTS, beta=2.0, generator=torch.Generator().manual_seed(seed))(logits, labels)

    assert run(7).item() == run(7).item()
    assert any(run(7).item() != run(s).item() for s in range(8, 12))


def test_empty_batch():
    logits = torch.zeros(0, 12, requires_grad=True)
    loss = BaGSLoss(COUNTS)(logits, torch.zeros(0, dtype=torch.int64))
    loss.backward()
    assert loss.item() == 0.0 and logits.grad.shape == (0, 12)


def test_scores_by_hand():
    row = random_rows(1, 3)[0]
    scores = bags_scores(torch.tensor([row], dtype=torch.float64), BaGSLoss(COUNTS).groups, K)[0]
    e = [math.exp(v) for v in row]
    p_fg = e[7] / (e[6] + e[7])
    for _group, cols in list(GROUP_COLS.items())[1:]:
        z = sum(e[c] for c in cols)
        for c in cols[:-1]:
            assert scores[c].item() == pytest.approx(e[c] / z * p_fg, rel=1e-12)
        # in-group probabilities (classes + others) rescaled by p_fg add up to p_fg
        assert scores[cols[:-1]].sum().item() + e[cols[-1]] / z * p_fg == pytest.approx(p_fg, rel=1e-12)
    loss_fn = BaGSLoss(COUNTS)
    torch.testing.assert_close(loss_fn.scores(torch.tensor([row])), scores[None].float())


def test_groups_on_lvis_v1(lvis_stats):
    loss_fn = BaGSLoss(lvis_stats.instance_count)
    counts = lvis_stats.instance_count
    expected = [np.sum(counts < 10), np.sum((counts >= 10) & (counts < 100)),
                np.sum((counts >= 100) & (counts < 1000)), np.sum(counts >= 1000)]
    assert [len(g) for g in loss_fn.groups] == expected
    assert sum(expected) == 1203 and loss_fn.num_logits == 1203 + 1 + 5
