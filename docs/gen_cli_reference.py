"""Write docs/cli.md, the command-line reference, from lveval's argparse parser.

    python docs/gen_cli_reference.py            # rewrites docs/cli.md
    python docs/gen_cli_reference.py --check    # exit 1 if docs/cli.md is out of date

Every sub-command registered by the CLI's optional modules (topk, report,
calibrate, analysis) is included when it is importable.
"""
from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def render() -> str:
    os.environ["COLUMNS"] = "100"          # argparse wraps help to the terminal width: fix it
    from lveval import cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {c.dest: c.help for c in sub._choices_actions}
    out = ["# Command-line reference", "",
           "Generated from the parser by `python docs/gen_cli_reference.py`; do not edit by hand.", "",
           "```", parser.format_help().rstrip(), "```", ""]
    out += ["| command | what it does |", "|---|---|"]
    out += [f"| [`lveval {name}`](#lveval-{name}) | {helps.get(name) or ''} |" for name in sub.choices]
    out.append("")
    for name, p in sub.choices.items():
        out += [f"## lveval {name}", "", "```", p.format_help().rstrip(), "```", ""]
    out += ["Exit status: 0 on success, 2 for bad input (one line naming file, record and field), "
            "1 for internal errors (`--debug` shows the traceback).", ""]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only check that docs/cli.md is up to date")
    ap.add_argument("--out", default=os.path.join(HERE, "cli.md"))
    a = ap.parse_args(argv)
    text = render()
    if a.check:
        current = open(a.out, encoding="utf-8").read() if os.path.exists(a.out) else ""
        if current != text:
            print(f"{a.out} is out of date; run python docs/gen_cli_reference.py", file=sys.stderr)
            return 1
        return 0
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
