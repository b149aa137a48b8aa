#!/usr/bin/env bash
# When: every night from cron or a systemd timer (e.g. 02:30), on the machine holding the data.
# Chain: backup-sync run (dumps, backup, retention, check, offsite copies) -> backup-sync verify
# (a test restore of the newest snapshots, compared with the repository). Verify runs only
# after a good run. Driven by exit codes alone: 0 backed up and verified; 1 a phase failed
# (named on stderr); 2 config; 3 another run holds the lock; 4 a program (pg_dump, rclone) or
# the repository is missing.
# Usage: scripts/nightly-backup.sh [global flags for both, e.g. --json or -q]
set -euo pipefail
backup-sync run "$@"
backup-sync verify "$@"
