#!/bin/sh
# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
set -e
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium
test -x /usr/bin/chromium
