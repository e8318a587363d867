"""lveval inside training and inference code: detectron2 and PyTorch loops.

Nothing here imports torch or detectron2; tensors are accepted wherever arrays are.

* :class:`TopKPerClassCollector` keeps the top K detections per class while inference runs.
* :class:`FixedAPMetric` is a torchmetrics-style metric (``update``/``compute``/``reset``/``merge``)
  giving AP-Fixed, AP-Old and AP-Pool.
* :class:`LVEvalEvaluator` is a detectron2 ``DatasetEvaluator`` for the three protocols.
"""
from .detectron2 import LVEvalEvaluator
from .metric import FixedAPMetric, TopKPerClassCollector, encode_masks, flat_figures

__all__ = ["TopKPerClassCollector", "FixedAPMetric", "LVEvalEvaluator", "encode_masks", "flat_figures"]
