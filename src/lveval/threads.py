"""Work split over the machine's two (or more) cores for compiled routines that release the interpreter."""
from __future__ import annotations

import os
from collections.abc import Callable


def halves(n: int, fn: Callable[[int, int], None], parallel: bool) -> None:
    """``fn(0, n)``; or, when ``parallel`` and there are two cores, ``fn(0, n // 2)`` and
    ``fn(n // 2, n)`` on two threads (``fn`` must write disjoint outputs for disjoint ranges)."""
    if not parallel or n < 2 or (os.cpu_count() or 1) < 2:
        fn(0, n)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(fn, 0, n // 2), pool.submit(fn, n // 2, n)]:
            f.result()
