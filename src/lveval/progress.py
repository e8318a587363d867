"""Progress on stderr for long runs: on only in a terminal and without --quiet."""
from __future__ import annotations

import sys


class Stages:
    """A bar that advances one step per pipeline stage, naming the current one."""

    def __init__(self, names: list, enabled: bool = False):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=len(names), file=sys.stderr, unit="stage", leave=False,
                            bar_format="{desc:<28} {bar} {n_fmt}/{total_fmt} [{elapsed}]")

    def start(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_description_str(name)

    def done(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def auto_enabled(quiet: bool) -> bool:
    """Progress is shown only when stderr is a terminal and the user did not ask for quiet."""
    return not quiet and sys.stderr.isatty()
