"""The command line asks numpy for ordinary pages (``cli.process.ordinary_pages``) unless the user
chose with numpy's own NUMPY_MADVISE_HUGEPAGE. Each case runs in a fresh interpreter, since numpy
reads the setting once, when it is imported."""
from __future__ import annotations

import os
import subprocess
import sys

PROBE = ("import os; from lveval.cli.process import ordinary_pages; r = ordinary_pages(); "
         "import numpy._core.multiarray as m; print(r, os.environ.get('NUMPY_MADVISE_HUGEPAGE'), "
         "m._get_madvise_hugepage())")


def probe(**env) -> list[str]:
    e = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    e.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE], env=e, capture_output=True, text=True, check=True)
    return out.stdout.split()


def test_ordinary_pages_unless_the_user_chose():
    assert probe() == ["True", "0", "False"]
    assert probe(NUMPY_MADVISE_HUGEPAGE="1") == ["False", "1", "True"]   # the user's choice wins


def test_no_effect_once_numpy_is_imported():
    code = ("import numpy, os; from lveval.cli.process import ordinary_pages; "
            "print(ordinary_pages(), os.environ.get('NUMPY_MADVISE_HUGEPAGE'))")
    e = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    out = subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "None"]
