#!/usr/bin/env bash
# Bench-only dependencies (CI does not need them): the tools standby is measured against.
# Idempotent. Run after scripts/install-deps.sh.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
need=()
for p in libcurl4-openssl-dev libxml2-dev libclang-dev pkg-config curl hyperfine \
         prometheus prometheus-blackbox-exporter wrk; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Hurl is not packaged by Debian; 8.1 needs a newer rustc than 1.95.
if ! command -v hurl >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/hurl" ]; then
  cargo install hurl --version 8.0.1 --locked
fi
echo "install-bench-deps: ok"
