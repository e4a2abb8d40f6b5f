#!/usr/bin/env bash
# For CI and tests: make sure the machine's PostgreSQL answers on 127.0.0.1:5432.
set -u
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi
for _ in $(seq 1 100); do
  pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && exit 0
  sleep 0.1
done
echo "PostgreSQL is not answering on 127.0.0.1:5432; set DATABASE_URL to a reachable server." >&2
exit 1
