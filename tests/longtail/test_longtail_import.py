"""torch stays optional: only lveval.longtail (and the toolbox adapters built on torch-based toolboxes,
lveval.integrations.mmdet and lveval.integrations.torchmetrics) need it, and say how to get it.

Unlike the other modules here this one needs no torch itself (it runs its
checks in subprocesses), so it also runs -- and matters most -- without torch.
"""

import subprocess
import sys
import textwrap


def run_python(code):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_missing_torch_gives_install_hint():
    result = run_python("""
        import sys
        sys.modules["torch"] = None  # make `import torch` fail
        try:
            import lveval.longtail
        except ImportError as exc:
            print(exc)
        else:
            raise SystemExit("imported without torch")
    """)
    assert result.returncode == 0, result.stderr
    assert "pip install lveval[torch]" in result.stdout


def test_rest_of_lveval_does_not_import_torch():
    result = run_python("""
        import importlib, pkgutil, sys
        import lveval

        NEEDS_TORCH = {"lveval.longtail", "lveval.integrations.mmdet", "lveval.integrations.torchmetrics"}

        def walk(package):  # like pkgutil.walk_packages, but never enters the modules built on torch
            for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
                if info.name in NEEDS_TORCH:
                    continue
                try:
                    module = importlib.import_module(info.name)
                except Exception as exc:  # not this test's concern; torch would still be in sys.modules
                    print("skipped", info.name, type(exc).__name__, file=sys.stderr)
                    continue
                if info.ispkg:
                    walk(module)

        walk(lveval)
        print("torch" in sys.modules)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
