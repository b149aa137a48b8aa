#!/usr/bin/env bash
# When: the CI job's deploy step, on the app server, after the release is installed.
# Chain: blue-green-deploy deploy (start the idle colour, health, smoke suite, switch nginx,
# watch, rolls back by itself on a failure) -> blue-green-deploy status (the live colour answers).
# Driven by exit codes alone: 0 deployed and healthy; 1 failed (traffic unchanged) or rolled
# back; 2 config; 3 another deploy is running; 4 nginx or a program is missing.
# Usage: scripts/deploy.sh VERSION [blue-green-deploy deploy flags]
set -euo pipefail
version=${1:?usage: deploy.sh VERSION [flags]}
shift
blue-green-deploy deploy --version "$version" "$@"
blue-green-deploy status -q
