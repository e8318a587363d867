"""docs/gen_cli_reference.py renders every sub-command from the parser."""
import importlib.util
import os

HERE = os.path.dirname(__file__)


def test_cli_reference_lists_every_command(tmp_path):
    path = os.path.join(HERE, "..", "..", "docs", "gen_cli_reference.py")
    spec = importlib.util.spec_from_file_location("gen_cli_reference", path)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    out = tmp_path / "cli.md"
    assert gen.main(["--out", str(out)]) == 0
    text = out.read_text()
    from lveval import cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in sub.choices:
        assert f"## lveval {name}\n" in text, name
    for name in ("evaluate", "topk", "report"):
        assert f"usage: lveval {name}" in text
    assert gen.main(["--out", str(out), "--check"]) == 0


def test_committed_cli_reference_is_up_to_date():
    """docs/cli.md must be regenerated (python docs/gen_cli_reference.py) when an option changes."""
    path = os.path.join(HERE, "..", "..", "docs", "gen_cli_reference.py")
    spec = importlib.util.spec_from_file_location("gen_cli_reference", path)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.main(["--check"]) == 0
