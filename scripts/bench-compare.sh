#!/usr/bin/env bash
# The repeatable comparison: what PostgreSQL itself does with the bare hold transaction
# (pgbench, ../shared/bench), then right after the spread hold storm against one
# `boxoffice serve` (the BENCHMARKS.md command), and the ratio of the two.
#
#   scripts/bench-compare.sh [postgres|sqlite]      # default postgres
#   DURATION=10 scripts/bench-compare.sh sqlite
#
# Environment (all optional):
#   DURATION   seconds of pgbench and of the measured storm (20)
#   WARMUP     storm warm-up in seconds (3)
#   CLIENTS    pgbench clients and storm clients (64)
#   PORT       the server's port (8080)
#   BENCH_DIR  where schema.sql and hold.sql are (<repo>/../shared/bench)
#   PGHOST PGPORT PGUSER   the PostgreSQL server (127.0.0.1 5432 postgres)
#   SKIP_BUILD 1: use the release binaries already built
#
# Databases (bench_limit_<pid>, boxoffice_cmp_<pid>) and the server are removed on exit; logs
# stay in the directory printed at the start. Exit status: the load generator's (2: an
# invariant check failed).
set -euo pipefail

BACKEND=${1:-postgres}
case $BACKEND in
    postgres | sqlite) ;;
    *)
        echo "usage: $0 [postgres|sqlite]" >&2
        exit 1
        ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release
BENCH_DIR=${BENCH_DIR:-$(dirname "$0")/../../shared/bench}
DURATION=${DURATION:-20}
DURATION=${DURATION%s}
WARMUP=${WARMUP:-3}
WARMUP=${WARMUP%s}
CLIENTS=${CLIENTS:-64}
PORT=${PORT:-8080}

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
LIMIT_DB=bench_limit_$$
APP_DB=boxoffice_cmp_$$


[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be whole seconds, got $DURATION"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be whole seconds, got $WARMUP"
for tool in pgbench psql createdb dropdb curl python3; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
[[ -f $BENCH_DIR/schema.sql && -f $BENCH_DIR/hold.sql ]] ||
    die "no schema.sql and hold.sql in $BENCH_DIR (set BENCH_DIR)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/boxoffice-compare.XXXXXX")
log "logs: $WORK"

SERVER_PID=
STORM_PID=
DBS=()

# shellcheck disable=SC2317 # called by the trap
cleanup() {
    local status=$? pid db i
    trap - EXIT INT TERM
    for pid in $STORM_PID $SERVER_PID; do
        stop_pid "$pid"
    done
    for db in "${DBS[@]}"; do
        dropdb --if-exists --force "$db" 2>/dev/null || log "could not drop database $db"
    done
    log "logs: $WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM


if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building release binaries"
    (cd "$ROOT" && cargo build --release -p boxoffice -p boxoffice-loadgen)
fi
[[ -x $BIN/boxoffice && -x $BIN/boxoffice-loadgen ]] || die "no release binaries in $BIN"

# --- the database's own limit ---------------------------------------------------------------
createdb "$LIMIT_DB"
DBS+=("$LIMIT_DB")
psql -q -v ON_ERROR_STOP=1 -d "$LIMIT_DB" -f "$BENCH_DIR/schema.sql" >>"$WORK/pgbench.log" 2>&1
log "pgbench: bare hold transaction, -c $CLIENTS -j 2 -T $DURATION"
PGB_PG_START=$(pg_ticks)
PGB_MACHINE_START=$(machine_ticks)
pgbench -n -c "$CLIENTS" -j 2 -T "$DURATION" -f "$BENCH_DIR/hold.sql" "$LIMIT_DB" \
    >"$WORK/pgbench.out" 2>>"$WORK/pgbench.log" ||
    { cat "$WORK/pgbench.out" "$WORK/pgbench.log" >&2; die "pgbench failed"; }
PGB_PG_END=$(pg_ticks)
PGB_MACHINE_END=$(machine_ticks)
PGB_TX=$(pgbench_result tx <"$WORK/pgbench.out")
PG_TPS=$(pgbench_result tps <"$WORK/pgbench.out")
[[ -n $PG_TPS ]] || { cat "$WORK/pgbench.out" >&2; die "no tps in the pgbench output"; }
dropdb --force "$LIMIT_DB"
log "pgbench: $PG_TPS tx/s"

# --- the server -----------------------------------------------------------------------------
if [[ $BACKEND == postgres ]]; then
    createdb "$APP_DB"
    DBS+=("$APP_DB")
    DB_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$APP_DB"
else
    DB_URL="sqlite://$WORK/bench.db"
fi
port_free "$PORT" || die "port $PORT is in use (set PORT)"
BOXOFFICE_HOLD_TTL=2s BOXOFFICE_ADMIN_EMAIL=$ADMIN_EMAIL BOXOFFICE_ADMIN_PASSWORD=$ADMIN_PASSWORD \
    RUST_LOG=warn "$BIN/boxoffice" serve --database-url "$DB_URL" --listen "127.0.0.1:$PORT" \
    --rate-limit off >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
wait_ready "http://127.0.0.1:$PORT/readyz" "$SERVER_PID" "$WORK/serve.log"
log "server ($BACKEND) ready on 127.0.0.1:$PORT, pid $SERVER_PID"

BOXOFFICE_ADMIN_EMAIL=$ADMIN_EMAIL BOXOFFICE_ADMIN_PASSWORD=$ADMIN_PASSWORD \
    "$BIN/boxoffice-loadgen" --base-url "http://127.0.0.1:$PORT" \
    --mode spread --showtimes 200 --rows 20 --seats-per-row 25 --clients "$CLIENTS" \
    --duration "${DURATION}s" --warmup "${WARMUP}s" --overlap-tolerance 50ms --json \
    >"$WORK/storm.json" 2>"$WORK/storm.log" &
STORM_PID=$!

# The server's CPU time over the measured window: from the end of the warm-up (the load
# generator prints "storming" when the warm-up starts) to the end of the storm ("storm over"),
# both found by polling its log every 50 ms.
until grep -q storming "$WORK/storm.log" 2>/dev/null; do
    kill -0 "$STORM_PID" 2>/dev/null || break
    sleep 0.05
done
grep -q storming "$WORK/storm.log" || { cat "$WORK/storm.log" >&2; die "the storm did not start"; }
sleep "$WARMUP"
CPU_START=$(cpu_ticks "$SERVER_PID")
LG_START=$(cpu_ticks "$STORM_PID")
PG_START=$(pg_ticks)
MACHINE_START=$(machine_ticks)
until grep -q "storm over" "$WORK/storm.log" 2>/dev/null; do
    kill -0 "$STORM_PID" 2>/dev/null || break
    sleep 0.05
done
CPU_END=$(cpu_ticks "$SERVER_PID")
LG_END=$(cpu_ticks "$STORM_PID")
PG_END=$(pg_ticks)
MACHINE_END=$(machine_ticks)
rc=0
wait "$STORM_PID" || rc=$?
STORM_PID=
# VmRSS, and its anonymous (heap, stacks) and file-backed parts (on SQLite mostly the database
# file, which every connection maps: see MMAP_BYTES in boxoffice-store-sqlite).
RSS_KB=$(awk '/^(VmRSS|RssAnon|RssFile):/ { printf "%s%s", sep, $2; sep = "," }' \
    "/proc/$SERVER_PID/status")
TICKS=$(getconf CLK_TCK)

python3 - "$WORK/storm.json" "$BACKEND" "$PG_TPS" "$CPU_START" "$CPU_END" "$TICKS" "$RSS_KB" "$rc" \
    "$LG_START" "$LG_END" "$MACHINE_START" "$MACHINE_END" "${PG_START:-}" "${PG_END:-}" \
    "${PGB_PG_START:-}" "${PGB_PG_END:-}" "$PGB_MACHINE_START" "$PGB_MACHINE_END" "${PGB_TX:-}" <<'EOF'
import json, sys

(path, backend, pg_tps, cpu0, cpu1, ticks, rss_kb, rc, lg0, lg1, m0, m1,
 pg0, pg1, pgb_pg0, pgb_pg1, pgb_m0, pgb_m1, pgb_tx) = sys.argv[1:]
lg_s = (int(lg1) - int(lg0)) / int(ticks)
busy0, all0 = map(int, m0.split(","))
busy1, all1 = map(int, m1.split(","))
machine_busy = 100 * (busy1 - busy0) / max(all1 - all0, 1)
pgb_busy0, pgb_all0 = map(int, pgb_m0.split(","))
pgb_busy1, pgb_all1 = map(int, pgb_m1.split(","))
pgb_machine_busy = 100 * (pgb_busy1 - pgb_busy0) / max(pgb_all1 - pgb_all0, 1)
rss, anon, mapped = (int(kb) / 1024 for kb in rss_kb.split(","))
pg_tps, ticks, rc = float(pg_tps), int(ticks), int(rc)
cpu_s = (int(cpu1) - int(cpu0)) / ticks
# PostgreSQL's own CPU (every server process) per pgbench transaction and per hold request:
# what the database spends on each, whatever the rest of the machine does.
pgb_pg_ms = (1000 * (int(pgb_pg1) - int(pgb_pg0)) / ticks / int(pgb_tx)
             if pgb_pg0 and pgb_pg1 and pgb_tx and int(pgb_tx) else None)
pg_s = (int(pg1) - int(pg0)) / ticks if pg0 and pg1 else None
try:
    r = json.load(open(path))
except (OSError, ValueError):
    print(f"no storm report (load generator exit {rc}); see {path} and the logs")
    sys.exit(1)
lat = r.get("latency_all") or {}
ratio = 100 * r["requests_per_s"] / pg_tps if pg_tps else float("nan")
backend_name = {"postgres": "PostgreSQL", "sqlite": "SQLite"}[backend]
verdict = "passed" if r["invariant"]["passed"] and rc == 0 else f"FAILED (exit {rc})"
kinds = ", ".join(f"{k}: {v}" for k, v in sorted((r.get("error_kinds") or {}).items()))
rows = [
    ("backend", backend_name),
    ("pgbench bare hold transaction, tx/s", f"{pg_tps:,.0f}"),
    ("hold requests/s", f"{r['requests_per_s']:,.0f}"),
    ("granted holds/s", f"{r['holds_per_s']:,.0f}"),
    ("p99 ms (all hold requests)", f"{lat.get('p99_ms', float('nan')):.1f}"),
    ("requests/s ÷ pgbench tx/s" + (" (PostgreSQL's limit; on SQLite only the machine's reference)"
                                    if backend == "sqlite" else ""), f"{ratio:.0f} %"),
    ("server CPU per request, measured window (end of warm-up to end of storm)",
     f"{1000 * cpu_s / r['requests']:.3f} ms ({cpu_s:.1f} s CPU / {r['requests']:,} requests)"
     if r["requests"] else "–"),
    ("load generator CPU per request, same window",
     f"{1000 * lg_s / r['requests']:.3f} ms" if r["requests"] else "–"),
    ("the machine's CPUs busy, same window (all processes)", f"{machine_busy:.0f} %"),
    ("the machine's CPUs busy during pgbench", f"{pgb_machine_busy:.0f} %"),
    ("PostgreSQL CPU per pgbench transaction",
     f"{pgb_pg_ms:.3f} ms" if pgb_pg_ms is not None else "– (cannot read the server's /proc)"),
]
if backend == "postgres":
    rows.append(("PostgreSQL CPU per hold request, measured window",
                 f"{1000 * pg_s / r['requests']:.3f} ms" if pg_s is not None and r["requests"]
                 else "– (cannot read the server's /proc)"))
rows += [
    ("server VmRSS after the storm", f"{rss:.0f} MiB (anonymous {anon:.0f} MiB, "
                                     f"file-backed {mapped:.0f} MiB)"),
    ("errors", f"{r['errors']}" + (f" ({kinds})" if kinds else "")),
    ("invariant", verdict),
]
print()
print("| measure | value |")
print("| --- | ---: |")
for k, v in rows:
    print(f"| {k} | {v} |")
for w in r.get("warnings") or []:
    print(f"\n- {w}", end="")
print()
EOF
exit "$rc"
