"""``lveval topk --gt``: the evaluation's unknown-id policies, applied before the selection."""
from __future__ import annotations

import numpy as np

from ..exceptions import InputError


class _KnownIds:
    """The unknown-id policies of ``lveval evaluate`` applied before the selection (``topk --gt``):
    records of images or categories absent from the ground truth raise (``error``, the same message as
    the evaluation's) or are dropped and counted (``skip``), so they cannot take a place in the top K."""

    def __init__(self, gt, on_unknown_image: str = "error", on_unknown_category: str = "error"):
        from ..io.gt import load_gt
        from ..io.results import check_policy

        check_policy(on_unknown_image)
        check_policy(on_unknown_category)
        self.gt = load_gt(gt)
        self.policies = (on_unknown_image, on_unknown_category)
        self.skipped = {"image_id": 0, "category_id": 0}

    def keep(self, img, cat, base: int, path: str, line_of) -> np.ndarray | None:
        """Bool mask of the rows to keep (None: all), after raising for an unknown id under ``error``."""
        ok_i = self.gt.image_index(img)[1]
        ok_c = self.gt.category_index(cat)[1]
        keep = None
        for ok, ids, what, policy in ((ok_i, img, "image", self.policies[0]),
                                      (ok_c, cat, "category", self.policies[1])):
            if ok.all():
                continue
            if policy == "error":
                i = int(np.flatnonzero(~ok)[0])
                raise InputError(f"unknown {what}_id {int(ids[i])} (not in the ground truth; use "
                                 f"--on-unknown-{what} skip to drop such records)", path=path,
                                 record=base + i, line=line_of(i), field=f"{what}_id")
            self.skipped[f"{what}_id"] += int((~ok & (True if keep is None else keep)).sum())
            keep = ok if keep is None else keep & ok
        return keep
