#!/usr/bin/env bash
# Installs every Debian package the standby tools and their tests need, on a fresh
# Debian 12 machine. Idempotent: packages already present are skipped by apt, and
# no system service is started (the tests start their own servers on loopback).
set -euo pipefail

packages=(
  # PostgreSQL 15: server (initdb, pg_ctl, pg_basebackup, pg_rewind) and client
  postgresql-15 postgresql-client-15
  # nginx with a private prefix, for blue-green and smoke-test tests
  nginx-light
  # PowerDNS authoritative with the sqlite3 backend and dig to check answers
  pdns-server pdns-backend-sqlite3 sqlite3 dnsutils
  # offsite copy and the restic anchor for backup-sync
  rclone restic
  # load generator for the deploy benchmark
  wrk
  # a clock stepped back for one run, in downtime-monitor's tests
  faketime
  # NUT's upsd and the dummy-ups driver, for the power-aware tests (no service is started)
  nut-server nut-client
  # python3 + pip for aiosmtpd (below), the real SMTP server of the email notifier's tests
  python3 python3-pip
  # the harness runs postgres as an unprivileged user (runuser) and needs these
  util-linux passwd procps ca-certificates openssl curl
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # policy-rc.d: never start a system service while installing (no init runs here anyway).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# aiosmtpd from PyPI: a real SMTP server on loopback for the email notifier's tests.
# Debian 12's Python is "externally managed" (PEP 668): pip needs --break-system-packages there.
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  echo "install-deps: installing aiosmtpd (pip)"
  python3 -m pip install --quiet aiosmtpd 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages aiosmtpd
fi

# postgres refuses to run as root: the test harness runs it as this user.
if ! id standby-test >/dev/null 2>&1; then
  useradd --create-home --shell /bin/sh standby-test
fi

for bin in nginx pdns_server dig rclone restic sqlite3 faketime /usr/lib/postgresql/15/bin/initdb \
  /lib/nut/upsd /lib/nut/dummy-ups upsc; do
  command -v "$bin" >/dev/null 2>&1 || { echo "install-deps: $bin still missing" >&2; exit 1; }
done
python3 -c 'import aiosmtpd' >/dev/null 2>&1 || { echo "install-deps: aiosmtpd still missing" >&2; exit 1; }
echo "install-deps: ok"
