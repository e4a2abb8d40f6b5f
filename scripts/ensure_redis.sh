#!/usr/bin/env bash
# Make sure a Redis answers at REDIS_URL's host:port (default 127.0.0.1:6379): start it, or install it, or say why not.
set -u
host=127.0.0.1; port=6379
if redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1; then exit 0; fi
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing redis-server with apt-get..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null
  else
    echo "Redis is not running and redis-server is not installed: install it (apt-get install redis-server) or set REDIS_URL." >&2
    exit 1
  fi
fi
mkdir -p /tmp/wedbackup-redis
redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir /tmp/wedbackup-redis \
  --logfile /tmp/wedbackup-redis/redis.log
for _ in $(seq 1 50); do
  redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1 && exit 0
  sleep 0.1
done
echo "redis-server did not answer on $host:$port; see /tmp/wedbackup-redis/redis.log" >&2
exit 1
