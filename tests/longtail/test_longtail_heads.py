"""Normalised linear layer, objectness head and per-loss temperatures."""

import math

import pytest

torch = pytest.importorskip("torch")

from lveval.longtail import (  # noqa: E402
    LOSS_NAMES,
    NormalizedLinear,
    ObjectnessHead,
    default_temperature,
    make_linear,
    objectness_loss,
    objectness_scores,
)


def test_normalized_linear_matches_formula():
    layer = NormalizedLinear(3, 2, temperature=20.0)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 0.0, 4.0], [1.0, 1.0, 1.0]]))
        layer.bias.copy_(torch.tensor([0.5, -1.0]))
    x = torch.tensor([[1.0, 2.0, 2.0]])
    out = layer(x)[0]
    # tau * <w/|w|, x/|x|> + b with |w0| = 5, |w1| = sqrt 3, |x| = 3
    assert out[0].item() == pytest.approx(20 * (3 + 8) / (5 * 3) + 0.5, rel=1e-6)
    assert out[1].item() == pytest.approx(20 * 5 / (math.sqrt(3) * 3) - 1.0, rel=1e-6)


def test_normalized_linear_is_scale_invariant_and_bounded():
    layer = NormalizedLinear(8, 5, temperature=50.0, bias=False)
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(layer(x), layer(7.5 * x))
    assert layer(x).abs().max() <= 50.0 + 1e-4
    with torch.no_grad():
        layer.weight.mul_(10.0)
    torch.testing.assert_close(layer(x), layer(7.5 * x))


def test_default_temperatures():
    assert {n: default_temperature(n) for n in LOSS_NAMES} == {
        "softmax_ce": 20.0, "bags": 20.0, "sigmoid_bce": 50.0, "eql": 50.0, "federated": 50.0}
    with pytest.raises(ValueError):
        default_temperature("focal")


def test_make_linear():
    assert type(make_linear(4, 3)) is torch.nn.Linear
    layer = make_linear(4, 3, normalized=True, temperature=50.0)
    assert isinstance(layer, NormalizedLinear) and layer.temperature == 50.0


def test_objectness_head_shapes_and_normalisation():
    head = ObjectnessHead(6, 11, normalized=True, temperature=20.0)
    cls, obj = head(torch.randn(5, 6))
    assert cls.shape == (5, 11) and obj.shape == (5,)
    assert isinstance(head.objectness, NormalizedLinear)  # normalised together, as in the paper
    assert type(ObjectnessHead(6, 11).objectness) is torch.nn.Linear


def test_objectness_rescoring():
    class_scores = torch.tensor([[0.2, 0.5], [0.9, 0.1]])
    obj = torch.tensor([0.0, math.log(3.0)])  # sigmoid: 0.5 and 0.75
    torch.testing.assert_close(objectness_scores(class_scores, obj), torch.tensor([[0.1, 0.25], [0.675, 0.075]]))


def test_objectness_loss_value_and_gradient():
    obj = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 4, 2])  # K = 4: proposals 0 and 2 are objects
    loss = objectness_loss(obj, labels, num_classes=4)
    loss.backward()

    def sig(v):
        return 1 / (1 + math.exp(-v))

    expected = -(math.log(sig(0.3)) + math.log(1 - sig(-1.0)) + math.log(sig(2.0))) / 3
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    torch.testing.assert_close(obj.grad, torch.tensor([(sig(0.3) - 1) / 3, sig(-1.0) / 3, (sig(2.0) - 1) / 3],
                                                      dtype=torch.float64))


def test_objectness_loss_empty_batch():
    obj = torch.zeros(0, requires_grad=True)
    loss = objectness_loss(obj, torch.zeros(0, dtype=torch.int64), 4)
    loss.backward()
    assert loss.item() == 0.0
