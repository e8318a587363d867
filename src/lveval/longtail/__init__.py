"""Long-tail detector components studied in Dave et al. 2021, Section 5 (PyTorch).

Losses (softmax CE, sigmoid BCE, EQL, Federated, BaGS), classifier heads
(objectness, normalised linear), image samplers (uniform, class-aware,
repeat-factor), classifier retraining and class statistics.  This is the only
part of lveval that needs PyTorch: install it with ``pip install lveval[torch]``.
"""

try:
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "lveval.longtail needs PyTorch, which is not installed; install it with `pip install lveval[torch]`"
    ) from exc

from .bags import BaGSLoss, bags_groups, bags_scores
from .build import LOSS_NAMES, build_loss
from .heads import (
    NormalizedLinear,
    ObjectnessHead,
    default_temperature,
    make_linear,
    objectness_loss,
    objectness_scores,
)
from .losses import EQLLoss, FederatedLoss, LongTailLoss, SigmoidBCELoss, SoftmaxCELoss
from .retrain import freeze_all_but, reinitialize, retrain_classifier
from .samplers import (
    ClassAwareSampler,
    RepeatFactorSampler,
    UniformSampler,
    category_repeat_factors,
    image_repeat_factors,
)
from .stats import LVIS_V1_TRAIN_NUM_IMAGES, ClassStats, frequency_group

__all__ = [
    "BaGSLoss", "ClassAwareSampler", "ClassStats", "EQLLoss", "FederatedLoss", "LOSS_NAMES",
    "LVIS_V1_TRAIN_NUM_IMAGES", "LongTailLoss", "NormalizedLinear", "ObjectnessHead",
    "RepeatFactorSampler", "SigmoidBCELoss", "SoftmaxCELoss", "UniformSampler", "bags_groups",
    "bags_scores", "build_loss", "category_repeat_factors", "default_temperature",
    "freeze_all_but", "frequency_group", "image_repeat_factors", "make_linear",
    "objectness_loss", "objectness_scores", "reinitialize", "retrain_classifier",
]
