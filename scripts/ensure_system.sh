#!/usr/bin/env bash
# The system packages `make` needs: Python's venv module and Node.js/npm (for Azurite). Installed with apt
# when running as root on Debian; otherwise a clear message.
set -u
missing=()
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || missing+=(python3-venv)
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing ${missing[*]} with apt-get..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null && exit 0
fi
echo "Missing system packages: ${missing[*]}. Install them (apt-get install ${missing[*]}) and run make again." >&2
exit 1
