#!/usr/bin/env bash
# What PostgreSQL spends per hold when holds are sent one per round trip, four per transaction,
# and four per statement: pgbench runs the bare hold and the variants in scripts/pgbench/
# (see its README) on a fresh database each, and prints holds/s and PostgreSQL's own CPU per
# hold (every server process, read from the postmaster's /proc: run as root or postgres).
#
#   scripts/bench-batching.sh            # 20 s each, two rounds
#   DURATION=10 ROUNDS=1 scripts/bench-batching.sh
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BENCH_DIR=${BENCH_DIR:-$HERE/../../shared/bench}
DURATION=${DURATION:-20}
ROUNDS=${ROUNDS:-2}
CLIENTS=${CLIENTS:-64}
# shellcheck source=scripts/lib.sh
. "$HERE/lib.sh"

[[ -f $BENCH_DIR/schema.sql && -f $BENCH_DIR/hold.sql ]] ||
    die "no schema.sql and hold.sql in $BENCH_DIR (set BENCH_DIR)"
for tool in pgbench psql createdb dropdb; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -n $(pg_ticks) ]] || die "cannot read the PostgreSQL server's /proc entries (run as root or postgres)"

DB=bench_batching_$$
trap 'dropdb --if-exists --force "$DB" 2>/dev/null || true' EXIT
TICKS=$(getconf CLK_TCK)
ERR=$(mktemp "${TMPDIR:-/tmp}/bench-batching.XXXXXX")

echo "| script | holds per transaction | transactions/s | holds/s | PostgreSQL CPU per hold |"
echo "| --- | ---: | ---: | ---: | ---: |"
for _ in $(seq "$ROUNDS"); do
    for script in "$BENCH_DIR/hold.sql" "$HERE"/pgbench/hold-*.sql; do
        per=1
        [[ $(basename "$script") == hold-four-* ]] && per=4
        createdb "$DB"
        psql -q -v ON_ERROR_STOP=1 -d "$DB" -f "$BENCH_DIR/schema.sql" >/dev/null 2>&1
        pg0=$(pg_ticks)
        out=$(pgbench -n -c "$CLIENTS" -j 2 -T "$DURATION" -f "$script" "$DB" 2>"$ERR") ||
            { cat "$ERR" >&2; die "pgbench failed on $script"; }
        pg1=$(pg_ticks)
        dropdb --force "$DB"
        tx=$(pgbench_result tx <<<"$out")
        tps=$(pgbench_result tps <<<"$out")
        [[ -n $tx && -n $tps ]] || { echo "$out" >&2; die "no result from pgbench on $script"; }
        awk -v name="$(basename "$script")" -v per="$per" -v tx="$tx" -v tps="$tps" \
            -v pg="$((pg1 - pg0))" -v ticks="$TICKS" 'BEGIN {
                printf "| %s | %d | %.0f | %.0f | %.3f ms |\n", name, per, tps, tps * per,
                    1000 * pg / ticks / (tx * per)
            }'
    done
done
rm -f "$ERR"
