"""Drop-in replacements for lvis-api and pycocotools' evaluators, backed by lveval's engine.

    from lveval.compat import LVIS, LVISResults, LVISEval      # was: from lvis import ...
    from lveval.compat import COCOeval                           # was: from pycocotools.cocoeval import ...

Same constructors, ``params``, methods, ``eval`` arrays and summaries as the
originals (lvis-api 0.5.3, pycocotools 2.0), tested figure for figure against
them; plus ``params.max_dets_per_class`` and :class:`LVISPooledEval` (AP-Pool).
See docs/compat.md for what is and is not replicated.
"""
from .coco import COCO, COCOeval
from .lvis import LVIS, LVISEval, LVISPooledEval, LVISResults, Params

__all__ = ["LVIS", "LVISResults", "LVISEval", "LVISPooledEval", "Params", "COCO", "COCOeval"]
