#!/usr/bin/env bash
# When: on the standby site, every few seconds (systemd timer, a loop) or by hand on the night
# the primary dies. Chain: downtime-monitor (is anything DOWN?) -> dns-failover (records to the
# backup once its threshold is crossed) -> replica-promote (promote the local standby; it refuses
# while the old primary answers by any path). Driven by exit codes alone:
#   0  every target is up (nothing to do), or the local standby was promoted
#   1  something is down but the database cannot (yet) be promoted: it is already the primary,
#      or the old primary still answers; the tool's own line says which
#   2-4 as the tools' exit codes (config, lock, missing program or server)
# Needs `downtime-monitor watch` (or cron'd `downtime-monitor check`) keeping the history fresh.
# Usage: scripts/failover.sh [replica-promote promote flags, e.g. --json]
set -u
if downtime-monitor status -q; then
  echo "failover: every target is up; nothing to do"
  exit 0
fi
dns-failover check -q
rc=$?
# 3: a `dns-failover watch` daemon holds the lock and switches the records itself.
if [ "$rc" -ne 0 ] && [ "$rc" -ne 3 ]; then
  echo "failover: dns-failover check exited $rc" >&2
  exit "$rc"
fi
exec replica-promote promote "$@"
