#!/usr/bin/env bash
# `make browser`: Debian's Chromium for the HTML report test (tests/integration/test_report_html.py),
# driven by Playwright for Python from the virtualenv. Idempotent: a Chromium that runs is kept.
# Playwright's own browser builds are never downloaded; the test launches /usr/bin/chromium.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [[ -x $CHROMIUM ]] && version=$("$CHROMIUM" --version 2>/dev/null); then
  echo "[browser] $version ($CHROMIUM)"
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  SUDO=(sudo)
fi

echo "[browser] installing Debian's chromium (once; about a minute)"
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
echo "[browser] $("$CHROMIUM" --version) ($CHROMIUM)"
