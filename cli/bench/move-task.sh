#!/usr/bin/env bash
# Whole-process timing of `spec-kitty agent tasks move-task` with no daemon
# running (events go to the spool), in a temp git repository.
#
#   cargo build --release -p spec-kitty && cli/bench/move-task.sh [RUNS]
#
# Each timed run is a real lane change (planned → doing): hyperfine's
# --prepare (untimed) restores the WP file first. Needs hyperfine (apt).
set -euo pipefail
RUNS=${1:-200}
BIN=${BIN:-$(cd "$(dirname "$0")/../.." && pwd)/target/release/spec-kitty}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
export SPEC_KITTY_HOME=$TMP/home HOME=$TMP/home NO_COLOR=1
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
hyperfine -N --warmup 10 --runs "$RUNS" \
  --prepare "cp $TMP/WP01.orig $WP" \
  --export-json "$TMP/result.json" \
  "$BIN agent tasks move-task WP01 --to doing"
python3 - "$TMP/result.json" <<'PY'
import json, statistics, sys
t = sorted(x * 1000 for x in json.load(open(sys.argv[1]))["results"][0]["times"])
p = lambda q: t[min(len(t) - 1, int(q * len(t)))]
print(f"move-task: n={len(t)} median={statistics.median(t):.2f} ms p90={p(0.90):.2f} ms p99={p(0.99):.2f} ms max={t[-1]:.2f} ms")
PY
echo "events spooled: $(ls "$SPEC_KITTY_HOME/spool" | wc -l)"
