#!/usr/bin/env bash
# The browser tests drive Debian's Chromium with Playwright (no browser download): install it when missing.
set -u
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing chromium with apt-get (for the browser tests)..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null && exit 0
fi
echo "Chromium is missing: install it (apt-get install chromium) for the browser tests." >&2
exit 1
