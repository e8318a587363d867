"""Running the command line in-process with only some command groups registered."""
from __future__ import annotations


def cli_runner(monkeypatch, capsys, *groups: str):
    """``run(*args) -> (exit status, stdout, stderr)`` of ``lveval ARGS`` with only the command
    ``groups`` (modules of lveval.cli) registered besides the core commands."""
    import lveval.cli as cli

    monkeypatch.setattr(cli, "_GROUPS", tuple(groups))

    def run(*args):
        rc = cli.main([str(a) for a in args])
        out = capsys.readouterr()
        return rc, out.out, out.err
    return run
