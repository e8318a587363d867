"""Softmax CE, sigmoid BCE, EQL and Federated losses against hand computations.

Expected values are written out with ``math`` on Python floats; expected
gradients use the closed forms d/dx CE = softmax - onehot and
d/dx BCE = sigmoid - y (times the term weight, divided by N).
"""

import math

import pytest

torch = pytest.importorskip("torch")

from lveval.longtail import EQLLoss, FederatedLoss, SigmoidBCELoss, SoftmaxCELoss  # noqa: E402


def sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


def bce(x, y):
    return -(y * math.log(sigmoid(x)) + (1 - y) * math.log(1 - sigmoid(x)))


def leaf(rows):
    return torch.tensor(rows, dtype=torch.float64, requires_grad=True)


def labels_of(values):
    return torch.tensor(values, dtype=torch.int64)


def weighted_bce_by_hand(rows, labels, k, weight):
    """Value and gradient of sum_ij w_ij BCE(x_ij, y_ij) / N over the K foreground columns."""
    n = len(rows)
    value, grad = 0.0, [[0.0] * (k + 1) for _ in rows]
    for i, (row, label) in enumerate(zip(rows, labels)):
        for j in range(k):
            y = 1.0 if j == label else 0.0
            w = weight(i, j)
            value += w * bce(row[j], y)
            grad[i][j] = w * (sigmoid(row[j]) - y) / n
    return value / n, torch.tensor(grad, dtype=torch.float64)


ROWS = [[1.0, -0.5, 0.3, 0.2], [0.1, 2.0, -1.0, 0.0], [-0.3, 0.4, 0.9, 1.5], [0.7, 0.7, -2.0, -0.4]]


class TestSoftmaxCE:
    def test_value_and_gradient(self):
        rows, labels = ROWS, [0, 3, 1, 2]  # K = 3, label 3 = background
        logits = leaf(rows)
        loss = SoftmaxCELoss(3)(logits, labels_of(labels))
        loss.backward()
        value, grad = 0.0, []
        for row, label in zip(rows, labels):
            z = sum(math.exp(v) for v in row)
            value += -math.log(math.exp(row[label]) / z)
            grad.append([(math.exp(v) / z - (j == label)) / len(rows) for j, v in enumerate(row)])
        assert loss.item() == pytest.approx(value / len(rows), rel=1e-12)
        torch.testing.assert_close(logits.grad, torch.tensor(grad, dtype=torch.float64))

    def test_only_background(self):
        logits = leaf([[0.0, 1.0, 2.0], [3.0, 0.0, -1.0]])
        loss = SoftmaxCELoss(2)(logits, labels_of([2, 2]))
        first = -math.log(math.exp(2) / (1 + math.e + math.exp(2)))
        second = -math.log(math.exp(-1) / (math.exp(3) + 1 + math.exp(-1)))
        expected = (first + second) / 2
        assert loss.item() == pytest.approx(expected, rel=1e-12)

    def test_scores_are_foreground_softmax(self):
        logits = torch.tensor([[0.0, math.log(2.0), math.log(5.0)]])
        torch.testing.assert_close(SoftmaxCELoss(2).scores(logits), torch.tensor([[1 / 8, 2 / 8]]))


class TestSigmoidBCE:
    def test_sum_over_kn_terms_divided_by_n(self):
        rows, labels = ROWS, [0, 3, 1, 2]
        logits = leaf(rows)
        loss = SigmoidBCELoss(3)(logits, labels_of(labels))
        loss.backward()
        value, grad = weighted_bce_by_hand(rows, labels, 3, lambda i, j: 1.0)
        assert loss.item() == pytest.approx(value, rel=1e-12)
        torch.testing.assert_close(logits.grad, grad)
        assert torch.all(logits.grad[:, 3] == 0)  # background column is not used

    def test_only_background_has_all_zero_targets(self):
        rows = [[0.5, -1.0, 3.0], [2.0, 0.0, -3.0]]
        logits = leaf(rows)
        loss = SigmoidBCELoss(2)(logits, labels_of([2, 2]))
        assert loss.item() == pytest.approx((bce(0.5, 0) + bce(-1.0, 0) + bce(2.0, 0) + bce(0.0, 0)) / 2, rel=1e-12)

    def test_scores_are_foreground_sigmoids(self):
        logits = torch.tensor([[0.0, 2.0, 9.0]])
        torch.testing.assert_close(SigmoidBCELoss(2).scores(logits), torch.tensor([[0.5, sigmoid(2.0)]]))


# K = 4 classes; at lambda = 1e-3 classes 1 and 3 are rare for EQL.
FREQ = [0.5, 1e-4, 2e-3, 5e-4]
RARE = {1, 3}


class TestEQL:
    def test_value_and_gradient(self):
        rows = [[1.0, -0.5, 0.3, 0.2, 0.0], [0.1, 2.0, -1.0, 0.0, 1.0],
                [-0.3, 0.4, 0.9, 1.5, 2.0], [0.7, 0.7, -2.0, -0.4, 0.1]]
        labels = [0, 1, 4, 2]  # class 0, rare class 1, background, class 2
        logits = leaf(rows)
        loss = EQLLoss(FREQ)(logits, labels_of(labels))
        loss.backward()

        def weight(i, j):  # w = 1 - E(r) T(f_j) (1 - y_j)
            foreground = labels[i] < 4
            return 0.0 if foreground and j in RARE and j != labels[i] else 1.0

        value, grad = weighted_bce_by_hand(rows, labels, 4, weight)
        assert loss.item() == pytest.approx(value, rel=1e-12)
        torch.testing.assert_close(logits.grad, grad)

    def test_rare_classes_get_no_negative_gradient_from_foreground(self):
        g = torch.Generator().manual_seed(0)
        logits = torch.randn(64, 5, generator=g, dtype=torch.float64, requires_grad=True)
        labels = torch.randint(0, 5, (64,), generator=g)
        EQLLoss(FREQ)(logits, labels).backward()
        grad = logits.grad
        for i, label in enumerate(labels.tolist()):
            for j in range(4):
                if label < 4 and j in RARE and j != label:
                    assert grad[i, j] == 0  # removed negative term
                else:
                    assert grad[i, j] != 0
        # a rare class's own positive term is kept, and pushes its logit up
        rare_pos = [(i, lab) for i, lab in enumerate(labels.tolist()) if lab in RARE]
        assert rare_pos and all(grad[i, lab] < 0 for i, lab in rare_pos)

    def test_background_proposals_keep_all_terms(self):
        logits = leaf([[0.2, -0.1, 0.4, 1.0, 0.0]] * 3)
        labels = labels_of([4, 4, 4])
        torch.testing.assert_close(EQLLoss(FREQ)(logits, labels), SigmoidBCELoss(4)(logits, labels))

    def test_lambda_is_tuned_default_and_threshold_is_strict(self):
        loss = EQLLoss([1e-3, 0.99e-3, 1.01e-3])
        assert loss.lambda_ == 1e-3
        assert loss.rare.tolist() == [0.0, 1.0, 0.0]

    def test_zero_lambda_is_sigmoid_bce(self):
        logits = leaf(ROWS)
        labels = labels_of([0, 1, 2, 3])
        torch.testing.assert_close(EQLLoss(FREQ[:3], lambda_=0.0)(logits, labels), SigmoidBCELoss(3)(logits, labels))


FED_FREQ = [0.4, 0.01, 0.09, 0.0, 0.25, 0.04]  # K = 6; class 3 never occurs


class TestFederated:
    def test_value_and_gradient_over_sampled_set(self):
        rows = [[0.3, -0.2, 1.1, 0.5, -0.7, 0.2, 0.0], [1.5, 0.4, -0.3, 0.0, 0.8, -1.2, 0.6],
                [0.1, 0.1, 0.2, 0.9, -0.4, 0.3, 1.0]]
        labels = [2, 6, 0]
        logits = leaf(rows)
        loss_fn = FederatedLoss(FED_FREQ, num_sampled=4, generator=torch.Generator().manual_seed(3))
        twin = FederatedLoss(FED_FREQ, num_sampled=4, generator=torch.Generator().manual_seed(3))
        chosen = set(twin.sample_classes(labels_of(labels)).tolist())
        loss = loss_fn(logits, labels_of(labels))
        loss.backward()
        assert len(chosen) == 4 and {0, 2} <= chosen and 3 not in chosen
        value, grad = weighted_bce_by_hand(rows, labels, 6, lambda i, j: float(j in chosen))
        assert loss.item() == pytest.approx(value, rel=1e-12)
        torch.testing.assert_close(logits.grad, grad)
        assert {j for j in range(6) if logits.grad[:, j].abs().sum() > 0} == chosen

    def test_present_classes_only_when_enough(self):
        loss_fn = FederatedLoss(FED_FREQ, num_sampled=2)
        assert loss_fn.sample_classes(labels_of([5, 1, 6, 5])).tolist() == [1, 5]
        assert loss_fn.sample_classes(labels_of([6]), gt_classes=labels_of([4, 0, 6])).tolist() == [0, 4]

    def test_set_size_and_defaults(self):
        freq = torch.rand(200, generator=torch.Generator().manual_seed(0))
        loss_fn = FederatedLoss(freq, generator=torch.Generator().manual_seed(1))
        assert loss_fn.num_sampled == 50
        labels = torch.tensor([3, 3, 17, 200, 42])
        chosen = loss_fn.sample_classes(labels)
        assert len(chosen) == 50 and len(set(chosen.tolist())) == 50 and {3, 17, 42} <= set(chosen.tolist())
        # only 5 classes can ever be sampled: S is capped, not padded
        assert FederatedLoss(FED_FREQ, num_sampled=50).sample_classes(labels_of([6])).tolist() == [0, 1, 2, 4, 5]

    def test_negatives_drawn_proportional_to_sqrt_frequency(self):
        loss_fn = FederatedLoss(FED_FREQ, num_sampled=1, generator=torch.Generator().manual_seed(0))
        draws = 4000
        counts = torch.zeros(6)
        for _ in range(draws):
            counts[loss_fn.sample_classes(labels_of([6]))] += 1
        weights = torch.tensor(FED_FREQ) ** 0.5
        expected = weights / weights.sum() * draws
        assert counts[3] == 0
        # each count within 4.5 binomial standard deviations
        sd = (expected * (1 - weights / weights.sum())).sqrt()
        assert torch.all((counts - expected).abs() <= 4.5 * sd + 1e-9)

    def test_same_seed_same_loss(self):
        logits = torch.randn(20, 7, generator=torch.Generator().manual_seed(5))
        labels = torch.randint(0, 7, (20,), generator=torch.Generator().manual_seed(6))
        a = FederatedLoss(FED_FREQ, num_sampled=4, generator=torch.Generator().manual_seed(9))(logits, labels)
        b = FederatedLoss(FED_FREQ, num_sampled=4, generator=torch.Generator().manual_seed(9))(logits, labels)
        assert a.item() == b.item()


def all_losses(k=4):
    freq = [0.5, 1e-4, 2e-3, 5e-4][:k]
    return [SoftmaxCELoss(k), SigmoidBCELoss(k), EQLLoss(freq), FederatedLoss(freq, num_sampled=2)]


@pytest.mark.parametrize("loss_fn", all_losses(), ids=lambda m: type(m).__name__)
def test_empty_batch_is_zero_with_gradient_path(loss_fn):
    logits = torch.zeros(0, 5, requires_grad=True)
    loss = loss_fn(logits, torch.zeros(0, dtype=torch.int64))
    assert loss.item() == 0.0 and loss.dim() == 0 and loss.requires_grad
    loss.backward()
    assert logits.grad.shape == (0, 5)


@pytest.mark.parametrize("loss_fn", all_losses(), ids=lambda m: type(m).__name__)
def test_rejects_bad_shapes_and_labels(loss_fn):
    with pytest.raises(ValueError):
        loss_fn(torch.zeros(2, 4), labels_of([0, 1]))
    with pytest.raises(ValueError):
        loss_fn(torch.zeros(2, 5), labels_of([0, 5]))
    with pytest.raises(ValueError):
        loss_fn(torch.zeros(2, 5), labels_of([0]))
