#!/usr/bin/env bash
# Installs what tests/test_realtime_browser.py needs: Debian's Chromium (the test drives /usr/bin/chromium, not a
# browser Playwright downloads) and the Playwright Python package, into the current Python.
#   bash scripts/install_browser.sh     # about 300 MB of packages, a minute or two
# `playwright install` is not needed and not run: the test launches the system browser by its path.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PLAYWRIGHT=playwright==1.65.2

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

started=$SECONDS
if [ -x /usr/bin/chromium ]; then
  echo "==> chromium: already installed ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
elif command -v apt-get >/dev/null; then
  echo "==> chromium (apt-get): Debian's browser, driven headless by the page test"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core \
    >/dev/null
else
  echo "==> chromium: not a Debian-like system, skipped: install Chromium as /usr/bin/chromium yourself"
fi
echo "==> $PLAYWRIGHT into $($PY -c 'import sys; print(sys.prefix)') (the system browser is used: no playwright install)"
$PY -m pip install -q "$PLAYWRIGHT"
echo "browser test tools installed in $((SECONDS - started)) s. Run: python3 -m pytest tests/test_realtime_browser.py"
