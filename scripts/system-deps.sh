#!/usr/bin/env bash
# Install the OS packages that tests start for real: Debian's Chromium (driven by Playwright
# for Python; never `playwright install`, which downloads) and redis-server; plus wrk, the load generator of benchmarks/bench_api.py.
# Idempotent: does nothing when everything is present.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v wrk >/dev/null 2>&1 || need+=(wrk)  # HTTP load generator of benchmarks/bench_api.py
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: missing ${need[*]} and cannot apt-get here (need root on Debian); tests that need them will skip." >&2
  exit 0
fi
echo "system-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
