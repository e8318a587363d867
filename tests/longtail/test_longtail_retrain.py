"""Classifier retraining: only the named layer changes, after re-initialisation."""

import pytest

torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

from lveval.longtail import ClassAwareSampler, SoftmaxCELoss, freeze_all_but, retrain_classifier  # noqa: E402


class TinyDetectorHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.box_head = nn.Module()
        self.box_head.cls_score = nn.Linear(8, 4)  # K = 3 classes + background

    def forward(self, x):
        return self.box_head.cls_score(self.backbone(x))


def toy_data(n=96):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 4
    feats = torch.randn(n, 4, generator=g) + 3.0 * nn.functional.one_hot(labels, 4).float()
    samples = list(zip(feats, labels))
    coco = {"images": [{"id": i} for i in range(n)],
            "annotations": [{"id": i, "image_id": i, "category_id": int(y)} for i, y in enumerate(labels)],
            "categories": [{"id": c} for c in range(4)]}
    return samples, coco


def test_freeze_all_but():
    model = TinyDetectorHead()
    layer = freeze_all_but(model, "box_head.cls_score")
    assert layer is model.box_head.cls_score
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["box_head.cls_score.weight",
                                                                           "box_head.cls_score.bias"]


def test_retrain_changes_only_the_classifier_and_learns():
    torch.manual_seed(0)
    model = TinyDetectorHead()
    with torch.no_grad():
        model.box_head.cls_score.weight.fill_(7.0)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith("box_head")}
    running_mean = model.backbone[1].running_mean.clone()
    samples, coco = toy_data()
    sampler = ClassAwareSampler(coco, seed=0)
    history = retrain_classifier(model, "box_head.cls_score", samples, sampler, SoftmaxCELoss(3),
                                 epochs=5, batch_size=16, lr=0.1)
    assert len(history) == 5 * 6
    assert sum(history[-6:]) < sum(history[:6])  # it trains
    for n, p in model.named_parameters():
        if n in frozen:
            assert torch.equal(p, frozen[n]), n
    assert torch.equal(model.backbone[1].running_mean, running_mean)  # frozen part ran in eval mode
    assert not torch.any(model.box_head.cls_score.weight == 7.0)  # re-initialised, then trained
    assert model.training


def test_classifier_is_reinitialised():
    torch.manual_seed(0)
    model = TinyDetectorHead()
    with torch.no_grad():
        model.box_head.cls_score.weight.fill_(7.0)
    samples, coco = toy_data(16)
    retrain_classifier(model, "box_head.cls_score", samples, ClassAwareSampler(coco), SoftmaxCELoss(3), lr=0.0)
    bound = 1 / 8 ** 0.5  # nn.Linear's default initialisation range for 8 inputs
    assert model.box_head.cls_score.weight.abs().max() <= bound
