#!/usr/bin/env bash
# Install the browser the UI tests (tests/ui) drive: Debian's Chromium, run headless from /usr/bin/chromium by
# Playwright (a test dependency; it downloads no browser of its own). CI runs this before scripts/setup.sh;
# a user's plain set-up does not, and tests/ui then skips naming this script (outside CI, where it fails).
# Idempotent: nothing is fetched when the package is installed. Needs apt-get, and root or sudo.
set -euo pipefail
PACKAGE=chromium

if ! dpkg-query -W -f='${Status}' "$PACKAGE" 2>/dev/null | grep -q "install ok installed"; then
  SUDO=()
  [ "$(id -u)" = 0 ] || SUDO=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "$PACKAGE" >/dev/null
fi
echo "setup-browser: $(/usr/bin/chromium --version)"
