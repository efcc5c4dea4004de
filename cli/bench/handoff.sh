#!/usr/bin/env bash
# Whole-process timing of the CLI -> daemon hand-off, in a temp git repo:
#   warm: `spec-kitty agent tasks move-task` with a running daemon (each run a
#         real planned -> doing change, accepted by the daemon after its commit);
#   cold: the same command when no daemon runs (it spawns one: start lock,
#         spawn, READY line, connect, emit); hyperfine's untimed --prepare
#         stops the daemon first.
#
#   cargo build --release -p spec-kitty -p spec-kitty-syncd && cli/bench/handoff.sh [RUNS] [COLD_RUNS]
#
# Needs hyperfine (apt). Prints p50/p90/p99/max per case.
set -euo pipefail
RUNS=${1:-200}
COLD_RUNS=${2:-50}
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/spec-kitty}
TMP=$(mktemp -d)
export SPEC_KITTY_HOME=$TMP/home HOME=$TMP/home NO_COLOR=1
trap '"$BIN" sync stop >/dev/null 2>&1 || true; rm -rf "$TMP"' EXIT
export GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b
mkdir -p "$HOME" "$TMP/repo"
cd "$TMP/repo"
git init -q -b main && git remote add origin git@github.com:acme/bench.git
git commit -q --allow-empty -m root
"$BIN" init --here >/dev/null
"$BIN" specify bench >/dev/null
"$BIN" tasks add "Bench work package" >/dev/null
WP=$(ls kitty-specs/001-bench/tasks/WP01-*.md)
cp "$WP" "$TMP/WP01.orig"
"$BIN" sync start >/dev/null

report() {
  python3 - "$1" "$2" <<'PY'
import json, statistics, sys
t = sorted(x * 1000 for x in json.load(open(sys.argv[1]))["results"][0]["times"])
p = lambda q: t[min(len(t) - 1, int(q * len(t)))]
print(f"{sys.argv[2]}: n={len(t)} p50={statistics.median(t):.2f} ms p90={p(0.90):.2f} ms p99={p(0.99):.2f} ms max={t[-1]:.2f} ms")
PY
}

hyperfine -N --style none --warmup 10 --runs "$RUNS" \
  --prepare "cp $TMP/WP01.orig $WP" \
  --export-json "$TMP/warm.json" \
  "$BIN agent tasks move-task WP01 --to doing" >/dev/null
report "$TMP/warm.json" "warm move-task (daemon running)"

hyperfine -N --style none --warmup 2 --runs "$COLD_RUNS" \
  --prepare "sh -c '$BIN sync stop >/dev/null; cp $TMP/WP01.orig $WP'" \
  --export-json "$TMP/cold.json" \
  "$BIN agent tasks move-task WP01 --to doing" >/dev/null
report "$TMP/cold.json" "cold move-task (spawns the daemon)"

echo "spooled (should be 0): $(ls "$SPEC_KITTY_HOME/spool" 2>/dev/null | grep -c json || true)"
