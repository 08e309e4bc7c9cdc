#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests when it is missing (never a downloaded browser).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then exit 0; fi
echo "==> chromium (Debian package, for the browser tests)"
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "chromium is not installed and this user cannot apt-get it: browser tests will be skipped" >&2
fi
