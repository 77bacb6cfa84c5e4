#!/usr/bin/env bash
# Make sure a Docker engine is reachable. Never touches an engine that already runs.
# On a Debian host with none, as root: install docker.io from apt and start dockerd.
set -euo pipefail

reachable() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && reachable; then
  exit 0
fi
if [ -n "${DOCKER_HOST:-}" ]; then
  echo "envscaler-runtime engine ensure: DOCKER_HOST=$DOCKER_HOST is set but no engine answers there" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "envscaler-runtime engine ensure: no Docker engine is reachable; start one (this script can only install it as root on Debian)" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v mmdebstrap >/dev/null 2>&1; then
  echo "==> installing docker.io and mmdebstrap from apt" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq docker.io mmdebstrap >/dev/null
fi
if [ -S /var/run/docker.sock ] && ! reachable && ! pgrep -x dockerd >/dev/null; then
  rm -f /var/run/docker.sock  # left by an engine that died
fi
if ! pgrep -x dockerd >/dev/null; then
  echo "==> starting dockerd (log: /var/log/envscaler-dockerd.log)" >&2
  nohup dockerd >/var/log/envscaler-dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  reachable && exit 0
  sleep 0.5
done
echo "envscaler-runtime engine ensure: dockerd did not come up in 30 s; see /var/log/envscaler-dockerd.log" >&2
exit 1
