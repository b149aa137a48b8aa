#!/usr/bin/env bash
# Power-aware switchover: turn a power cut into a *planned*, lossless switchover while the
# primary still runs on its UPS. Run by downtime-monitor's `command` notifier on the events of
# a `kind = "ups"` target:
#
#   [[notify]]
#   kind = "command"
#   command = ["/usr/local/lib/standby/power-switchover.sh"]
#   events = ["battery-low", "power-restored"]
#   tools = ["downtime-monitor"]
#
# battery-low (LB, or the runtime fell under the target's `low-runtime`):
#   1. $POWER_SWITCHOVER_CMD      (default `replica-promote switchover`: checkpoint, clean stop,
#                                   the standby replays to the end, promote, rejoin)
#   2. $POWER_DNS_CMD switch --to backup --record R, for each R in $POWER_RECORDS
#      (all records when empty)
# power-restored, after the mains have held for $POWER_RESTORE_HOLD seconds (default 600) and
# the battery is charged to $POWER_MIN_CHARGE % (default 50; checked with `upsc $POWER_UPS`):
#   1. $POWER_SWITCHBACK_CMD      (the switchover run on the *new* primary, e.g.
#                                   `ssh db-backup replica-promote switchover`; without it the
#                                   switch back is left to a person and the log says so)
#   2. $POWER_DNS_CMD switch --to primary [--record R ...]
#
# Each step by its exit code: a failed step stops the sequence (exit 1; the tools' own
# [[notify]] report what they changed). Every step and its duration goes to $POWER_LOG (and,
# with $POWER_NOTIFY_URL, is POSTed there as JSON). One sequence at a time: a flock on
# $POWER_LOCK (a second one exits 3), and $POWER_STATE remembers the side, so a flapping
# mains supply never starts two switchovers nor repeats a done one.
#
# The notifier's delivery is bounded (5 s a round), so the event detaches a background run
# (its output in $POWER_LOG) and returns at once. `power-switchover.sh run EVENT` runs in the
# foreground (by hand, or in tests).
set -euo pipefail

state_dir=${POWER_STATE_DIR:-/var/lib/standby}
POWER_LOG=${POWER_LOG:-$state_dir/power-switchover.log}
POWER_LOCK=${POWER_LOCK:-$state_dir/power-switchover.lock}
POWER_STATE=${POWER_STATE:-$state_dir/power-side}
POWER_SWITCHOVER_CMD=${POWER_SWITCHOVER_CMD:-replica-promote switchover}
POWER_SWITCHBACK_CMD=${POWER_SWITCHBACK_CMD:-}
POWER_DNS_CMD=${POWER_DNS_CMD:-dns-failover}
POWER_RECORDS=${POWER_RECORDS:-}
POWER_RESTORE_HOLD=${POWER_RESTORE_HOLD:-600}
POWER_MIN_CHARGE=${POWER_MIN_CHARGE:-50}
POWER_UPS=${POWER_UPS:-}
POWER_NOTIFY_URL=${POWER_NOTIFY_URL:-}

log() {
  local line
  line="$(date -u +%Y-%m-%dT%H:%M:%SZ) power-switchover: $*"
  echo "$line"
  if [ -n "$POWER_NOTIFY_URL" ]; then
    # The message as a JSON string (quotes and backslashes escaped); failures never stop a step.
    local msg=${line//\\/\\\\}
    msg=${msg//\"/\\\"}
    curl -fsS -m 5 -H 'Content-Type: application/json' \
      -d "{\"tool\":\"power-switchover\",\"message\":\"$msg\"}" "$POWER_NOTIFY_URL" >/dev/null 2>&1 || true
  fi
}

now_ms() { date +%s%3N; }

# step NAME CMD...: run, log its exit code and duration; return its exit code.
step() {
  local name=$1 start rc
  shift
  start=$(now_ms)
  log "step $name: $*"
  set +e
  # fd 9 (the lock) closed: a server a step starts (pg_ctl start) must not inherit the lock.
  "$@" 9>&-
  rc=$?
  set -e
  log "step $name: exit $rc in $(($(now_ms) - start)) ms"
  return "$rc"
}

side() { cat "$POWER_STATE" 2>/dev/null || echo primary; }

dns_switch() {
  local to=$1 args=()
  for r in $POWER_RECORDS; do args+=(--record "$r"); done
  # shellcheck disable=SC2086 # POWER_DNS_CMD may carry flags (--config FILE)
  step "dns-$to" $POWER_DNS_CMD switch --to "$to" "${args[@]}"
}

# upsc VAR: the UPS's variable, empty when it cannot be read.
ups_var() { [ -n "$POWER_UPS" ] && upsc "$POWER_UPS" "$1" 2>/dev/null || true; }

to_backup() {
  if [ "$(side)" = backup ]; then
    log "battery-low: already switched to the backup, nothing to do"
    return 0
  fi
  local start
  start=$(now_ms)
  log "battery-low: planned switchover to the backup"
  # shellcheck disable=SC2086
  step switchover $POWER_SWITCHOVER_CMD || { log "switchover FAILED: DNS left as it is"; return 1; }
  echo backup >"$POWER_STATE"
  dns_switch backup || { log "DNS switch FAILED after the switchover: switch it by hand"; return 1; }
  log "SWITCHED to the backup in $(($(now_ms) - start)) ms"
}

to_primary() {
  if [ "$(side)" != backup ]; then
    log "power-restored: on the primary already, nothing to do"
    return 0
  fi
  if [ -z "$POWER_SWITCHBACK_CMD" ]; then
    log "power-restored: POWER_SWITCHBACK_CMD is not set: switch back by hand"
    return 0
  fi
  log "power-restored: waiting ${POWER_RESTORE_HOLD}s of mains and ${POWER_MIN_CHARGE}% charge"
  sleep "$POWER_RESTORE_HOLD"
  if [ -n "$POWER_UPS" ]; then
    while :; do
      local status charge
      status=$(ups_var ups.status)
      charge=$(ups_var battery.charge)
      case " $status " in
        *" OL "*) ;;
        *) log "power-restored: the UPS says '${status:-nothing}' again: no switch back"; return 0 ;;
      esac
      if [ -n "$charge" ] && [ "${charge%.*}" -ge "$POWER_MIN_CHARGE" ]; then break; fi
      log "power-restored: battery at ${charge:-?}%, waiting for ${POWER_MIN_CHARGE}%"
      sleep 60
    done
  fi
  local start
  start=$(now_ms)
  # shellcheck disable=SC2086
  step switchback $POWER_SWITCHBACK_CMD || { log "switch back FAILED: DNS left on the backup"; return 1; }
  echo primary >"$POWER_STATE"
  dns_switch primary || { log "DNS switch FAILED after the switch back: switch it by hand"; return 1; }
  log "SWITCHED BACK to the primary in $(($(now_ms) - start)) ms"
}

run() {
  local event=$1
  mkdir -p "$(dirname "$POWER_LOCK")" "$(dirname "$POWER_STATE")"
  exec 9>"$POWER_LOCK"
  if ! flock -n 9; then
    log "$event: another power switchover is running: nothing done"
    exit 3
  fi
  case "$event" in
    battery-low) to_backup ;;
    power-restored) to_primary ;;
    *) log "$event: not a power event this script acts on"; ;;
  esac
}

case "${1:-}" in
  run)
    run "${2:?usage: power-switchover.sh run battery-low|power-restored}"
    ;;
  "")
    event=${STANDBY_EVENT:?power-switchover.sh: STANDBY_EVENT is not set (run it from a [[notify]] command, or use: run EVENT)}
    mkdir -p "$(dirname "$POWER_LOG")"
    # Detached: the notifier's delivery is bounded; the sequence is not.
    setsid "$0" run "$event" </dev/null >>"$POWER_LOG" 2>&1 &
    ;;
  *)
    echo "usage: power-switchover.sh [run battery-low|power-restored]" >&2
    exit 2
    ;;
esac
