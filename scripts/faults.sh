#!/usr/bin/env bash
# The whole fault set (docs/faults.md): every episode of crates/secureconnect/tests/api/faults
# under load, against PostgreSQL and Redis, then one report line per episode and invariant.
#
#   scripts/faults.sh              # the whole set, long episodes, distributed backends
#   scripts/faults.sh --short      # the same episodes with the short plan of `cargo test`
#   scripts/faults.sh --embedded   # without PostgreSQL/Redis URLs (PostgreSQL episodes skip)
#
# SC_TEST_PG_URL / SC_TEST_REDIS_URL default to the local services .ci/run starts. The Redis
# episodes start their own redis-server (it must be on the PATH); the full-disk episode mounts a
# small tmpfs (root) and skips with its reason when mounting is refused.
set -euo pipefail
cd "$(dirname "$0")/.."

tier=distributed
export SC_FAULTS_FULL=1
for arg in "$@"; do
  case "$arg" in
    --short) export SC_FAULTS_FULL=0 ;;
    --embedded) tier=embedded ;;
    *) echo "usage: $0 [--short] [--embedded]" >&2; exit 2 ;;
  esac
done

if [ "$tier" = distributed ]; then
  export SC_TEST_PG_URL=${SC_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
  export SC_TEST_REDIS_URL=${SC_TEST_REDIS_URL:-redis://127.0.0.1:6379}
  # A missing backend or redis-server fails the run instead of skipping episodes.
  export SC_TEST_REQUIRE_ALL=1
else
  unset SC_TEST_PG_URL SC_TEST_REDIS_URL SC_TEST_REQUIRE_ALL
fi

report=$(mktemp /tmp/sc-faults-report.XXXXXX)
log=$(mktemp /tmp/sc-faults-log.XXXXXX)
export SC_FAULTS_REPORT=$report

started=$(date +%s)
set +e
cargo test -p secureconnect --test api faults::full_ -- --ignored --test-threads=1 >"$log" 2>&1
status=$?
set -e
took=$(( $(date +%s) - started ))

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
printf '== fault episodes at %s: %s tier, %s plan, %ss (cargo test exit %s)\n' \
  "$commit" "$tier" "$([ "$SC_FAULTS_FULL" = 1 ] && echo full || echo short)" "$took" "$status"
printf '%-20s %-18s %-9s %s\n' episode invariant result counts
cat "$report"
held=$(grep -c ' held ' "$report" || true)
violated=$(grep -c ' VIOLATED ' "$report" || true)
skipped=$(grep -c ' skipped ' "$report" || true)
printf '== %s held, %s violated, %s episodes skipped\n' "$held" "$violated" "$skipped"
if [ "$status" -ne 0 ]; then
  echo "== failures (full log: $log):"
  grep -E "^test .* FAILED|panicked at|^failures:" "$log" | head -40 || true
fi
rm -f "$report"
exit "$status"
