#!/usr/bin/env bash
# Installs Debian's chromium, which the browser tests (test/browser/) and
# `npm run bench -- --browser` drive through playwright-core, when /usr/bin/chromium is
# missing. Needs root (CI runs as root). playwright-core never downloads a browser here.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-browser: /usr/bin/chromium is missing; run this as root (apt-get install chromium)" >&2
  exit 1
fi
echo "install-browser: installing Debian's chromium" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
/usr/bin/chromium --version >&2
