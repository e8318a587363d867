#!/usr/bin/env bash
# Install lveval with its test extras into .venv and run the whole test suite.
#
# In CI (CI=true, running as root on a Debian-like machine) it first installs
# Debian's chromium, which the HTML report test renders pages with; elsewhere
# that one test is skipped when chromium is missing. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! command -v chromium >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "note: chromium could not be installed; the report rendering test will be skipped"
fi
python3 -m venv .venv
.venv/bin/pip install -q -e ".[test]" -c constraints.txt
exec .venv/bin/python -m pytest -q "$@"
