#!/usr/bin/env bash
# CI step after a deploy: run the smoke suite against the new release and keep a JUnit report.
# Exit codes pass through: 0 passed, 1 a check failed, 2 bad suite, 4 nothing answered.
# Usage: scripts/post-deploy-smoke.sh BASE_URL [SUITE.toml]
set -euo pipefail
base_url=${1:?usage: post-deploy-smoke.sh BASE_URL [SUITE.toml]}
suite=${2:-deploy/smoke.toml}
mkdir -p reports
exec smoke-test "$suite" --base-url "$base_url" --jobs 8 --retries 3 --retry-delay 1s \
  --format junit --output reports/smoke-junit.xml
