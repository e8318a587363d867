"""lveval inside training and inference code: detectron2 and PyTorch loops.

Nothing here imports torch or detectron2; tensors are accepted wherever arrays are.

* :class:`TopKPerClassCollector` keeps the top K detections per class while inference runs.
* :class:`FixedAPMetric` is a torchmetrics-style metric (``update``/``compute``/``reset``/``merge``)
  giving AP-Fixed, AP-Old and AP-Pool.
* :class:`LVEvalEvaluator` is a detectron2 ``DatasetEvaluator`` for the three protocols.

Toolbox adapters, each importing its toolbox only when imported itself
(docs/integrations.md):

* ``lveval.integrations.mmdet.LVEvalMetric``: mmengine / mmdetection 3.x metric (extra ``mmdet``).
* ``lveval.integrations.torchmetrics.LVISMeanAveragePrecision``: a ``torchmetrics.Metric``
  (extra ``torchmetrics``).
* ``lveval.integrations.huggingface``: transformers' post-processed outputs (no import of transformers).
* ``lveval.integrations.ultralytics``: an ultralytics ``predictions.json``.
* ``lveval.integrations.labels``: category names and LVIS synonyms to ids.
"""
from .detectron2 import LVEvalEvaluator
from .metric import FixedAPMetric, TopKPerClassCollector, encode_masks, flat_figures

__all__ = ["TopKPerClassCollector", "FixedAPMetric", "LVEvalEvaluator", "encode_masks", "flat_figures"]
