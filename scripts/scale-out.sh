#!/usr/bin/env bash
# The hold storm (spread mode) through nginx against 1, 2, 3 … `boxoffice serve` processes on
# one PostgreSQL database, then a run in which one process is killed (kill -9) and restarted
# during the storm. Prints a markdown table; exits non-zero if a run failed or an invariant
# check failed.
#
#   scripts/scale-out.sh                       # PROCS="1 2 3", DURATION=20s
#   DURATION=10s PROCS="1 2" scripts/scale-out.sh
#
# Environment (all optional):
#   PROCS          process counts to run, in order ("1 2 3")
#   DURATION       measured storm time per run, `<n>s` or `<n>m` (20s)
#   WARMUP         storm warm-up (3s)
#   CLIENTS        concurrent clients (64)
#   KILL_RUN       1: do the kill run with the largest count if it is at least 2; 0: skip (1)
#   RESTART_AFTER  seconds between the kill and the restart (3)
#   LB_PORT        nginx's port (8080); BASE_PORT: the first process's port (8081)
#   PGHOST PGPORT PGUSER   the PostgreSQL server (127.0.0.1 5432 postgres)
#   NGINX          the nginx binary (nginx, else /usr/sbin/nginx)
#   SKIP_BUILD     1: use the release binaries already built
#
# One database (boxoffice_scale_<pid>) serves every run; it is dropped on exit. Every run
# creates its own cinema and accounts, so later runs see larger tables than earlier ones.
# Logs and the JSON reports stay in the directory printed at the start.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release
NGINX_CONF_SRC=$ROOT/deploy/nginx/boxoffice.conf

PROCS=${PROCS:-"1 2 3"}
DURATION=${DURATION:-20s}
WARMUP=${WARMUP:-3s}
CLIENTS=${CLIENTS:-64}
KILL_RUN=${KILL_RUN:-1}
RESTART_AFTER=${RESTART_AFTER:-3}
LB_PORT=${LB_PORT:-8080}
BASE_PORT=${BASE_PORT:-8081}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
DB=boxoffice_scale_$$
DB_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB"


# Seconds in a duration of the form the load generator takes, limited to `<n>s` and `<n>m`.
seconds() {
    case $1 in
        *ms) die "use whole seconds for $2 ($1)" ;;
        *s) echo "${1%s}" ;;
        *m) echo $((${1%m} * 60)) ;;
        *[!0-9]* | '') die "$2 must look like 20s or 2m, not $1" ;;
        *) echo "$1" ;;
    esac
}
DURATION_S=$(seconds "$DURATION" DURATION)
WARMUP_S=$(seconds "$WARMUP" WARMUP)

for tool in "$NGINX" curl psql createdb dropdb python3; do
    command -v "$tool" >/dev/null || die "$tool not found (nginx: apt-get install -y nginx)"
done
[[ -f $NGINX_CONF_SRC ]] || die "$NGINX_CONF_SRC is missing"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/boxoffice-scale.XXXXXX")
# nginx started as root runs its workers as `nobody`, which must reach its temp directory.
chmod 755 "$WORK"
log "logs and reports: $WORK"

declare -A SERVE_PID=() # port -> pid of `boxoffice serve`
NGINX_PID=
STORM_PID=
DB_CREATED=

stop_servers() {
    local port
    for port in "${!SERVE_PID[@]}"; do
        stop_pid "${SERVE_PID[$port]}"
        unset "SERVE_PID[$port]"
    done
}

stop_nginx() {
    if [[ -n $NGINX_PID ]]; then
        stop_pid "$NGINX_PID"
        NGINX_PID=
    fi
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [[ -n $STORM_PID ]]; then stop_pid "$STORM_PID"; fi
    stop_nginx
    stop_servers
    if [[ -n $DB_CREATED ]]; then
        dropdb --if-exists --force "$DB" 2>/dev/null || log "could not drop database $DB"
    fi
    log "logs and reports: $WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

# Starts `boxoffice serve` on a port, in the background, with the benchmark's settings.
start_server() {
    local port=$1 logfile=$2
    port_free "$port" || die "port $port is in use (set BASE_PORT)"
    BOXOFFICE_HOLD_TTL=2s \
        BOXOFFICE_ADMIN_EMAIL=$ADMIN_EMAIL \
        BOXOFFICE_ADMIN_PASSWORD=$ADMIN_PASSWORD \
        RUST_LOG=warn \
        "$BIN/boxoffice" serve --database-url "$DB_URL" --listen "127.0.0.1:$port" \
        --rate-limit off >>"$logfile" 2>&1 &
    SERVE_PID[$port]=$!
}

# Writes an nginx prefix directory for the first N ports and starts nginx in the foreground
# (in the background of this script) from it.
start_nginx() {
    local n=$1 dir=$2 servers="" i port
    mkdir -p "$dir/conf" "$dir/logs" "$dir/temp"
    for ((i = 0; i < n; i++)); do
        port=$((BASE_PORT + i))
        servers+="    server 127.0.0.1:$port max_fails=1 fail_timeout=5s;"$'\n'
    done
    # The deployed server block, with this run's upstream servers, port and log directory.
    awk -v servers="$servers" '
        /# BEGIN servers/ { print; printf "%s", servers; skip = 1; next }
        /# END servers/ { skip = 0 }
        !skip { print }
    ' "$NGINX_CONF_SRC" |
        sed -e "s|listen 127\.0\.0\.1:8080;|listen 127.0.0.1:$LB_PORT;|" \
            -e "s|/var/log/nginx/|logs/|g" \
            -e "s|^\( *access_log [^;]*\);|\1 buffer=64k flush=1s;|" >"$dir/conf/boxoffice.conf"
    grep -q "listen 127.0.0.1:$LB_PORT;" "$dir/conf/boxoffice.conf" ||
        die "could not set the listen port in $dir/conf/boxoffice.conf"
    [[ $(grep -c '^ *server 127\.0\.0\.1:' "$dir/conf/boxoffice.conf") -eq $n ]] ||
        die "could not write $n upstream servers into $dir/conf/boxoffice.conf"
    # Two workers (two cores). Each proxied request needs two connections (client and
    # upstream), plus the idle upstream keepalive ones: 4096 is far more than 64 clients need.
    cat >"$dir/conf/nginx.conf" <<EOF
worker_processes 2;
worker_rlimit_nofile 16384;
pid logs/nginx.pid;
error_log logs/error.log warn;
events {
    worker_connections 4096;
}
http {
    client_body_temp_path temp/client_body;
    proxy_temp_path temp/proxy;
    fastcgi_temp_path temp/fastcgi;
    uwsgi_temp_path temp/uwsgi;
    scgi_temp_path temp/scgi;
    access_log off;
    include boxoffice.conf;
}
EOF
    port_free "$LB_PORT" || die "port $LB_PORT is in use (set LB_PORT)"
    "$NGINX" -p "$dir/" -c conf/nginx.conf -e logs/error.log -t >>"$dir/logs/nginx-t.log" 2>&1 ||
        { cat "$dir/logs/nginx-t.log" >&2; die "nginx -t failed"; }
    "$NGINX" -p "$dir/" -c conf/nginx.conf -e logs/error.log -g 'daemon off;' \
        >>"$dir/logs/nginx.out" 2>&1 &
    NGINX_PID=$!
    wait_ready "http://127.0.0.1:$LB_PORT/readyz" "$NGINX_PID" "$dir/logs/error.log"
}

# Starts N processes and nginx for a run called $2.
start_cluster() {
    local n=$1 name=$2 i port
    for ((i = 0; i < n; i++)); do
        port=$((BASE_PORT + i))
        start_server "$port" "$WORK/$name-serve-$port.log"
    done
    for ((i = 0; i < n; i++)); do
        port=$((BASE_PORT + i))
        wait_ready "http://127.0.0.1:$port/readyz" "${SERVE_PID[$port]}" \
            "$WORK/$name-serve-$port.log"
    done
    start_nginx "$n" "$WORK/$name-nginx"
    log "$name: $n process(es) ready behind nginx on 127.0.0.1:$LB_PORT"
}

loadgen() {
    BOXOFFICE_ADMIN_EMAIL=$ADMIN_EMAIL BOXOFFICE_ADMIN_PASSWORD=$ADMIN_PASSWORD \
        "$BIN/boxoffice-loadgen" --base-url "http://127.0.0.1:$LB_PORT" \
        --mode spread --showtimes 200 --rows 20 --seats-per-row 25 \
        --clients "$CLIENTS" --duration "$DURATION" --warmup "$WARMUP" \
        --overlap-tolerance 50ms --json
}

RESULTS=$WORK/results.tsv # label, processes, loadgen exit status, report path
: >"$RESULTS"

# --- build and database -------------------------------------------------------------------
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building release binaries"
    (cd "$ROOT" && cargo build --release -p boxoffice -p boxoffice-loadgen)
fi
[[ -x $BIN/boxoffice && -x $BIN/boxoffice-loadgen ]] || die "no release binaries in $BIN"

createdb "$DB"
DB_CREATED=1
log "database $DB created; migrating"
RUST_LOG=warn "$BIN/boxoffice" migrate --database-url "$DB_URL" >>"$WORK/migrate.log" 2>&1 ||
    { cat "$WORK/migrate.log" >&2; die "boxoffice migrate failed"; }

# --- one storm per process count ------------------------------------------------------------
largest=0
for n in $PROCS; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "PROCS must be whole numbers, got $n"
    if ((n > largest)); then largest=$n; fi
    name=procs-$n
    start_cluster "$n" "$name"
    log "$name: storm for $DURATION (+$WARMUP warm-up)"
    # In the background and waited for, so that a signal stops the run at once.
    loadgen >"$WORK/$name.json" 2>"$WORK/$name.loadgen.log" &
    STORM_PID=$!
    rc=0
    wait "$STORM_PID" || rc=$?
    STORM_PID=
    log "$name: load generator exit status $rc"
    printf '%s\t%s\t%s\t%s\n' "$n" "$n" "$rc" "$WORK/$name.json" >>"$RESULTS"
    stop_nginx
    stop_servers
done

# --- the kill run ---------------------------------------------------------------------------
if [[ $KILL_RUN == 1 ]] && ((largest >= 2)); then
    name=kill-$largest
    start_cluster "$largest" "$name"
    victim=$BASE_PORT
    loadgen >"$WORK/$name.json" 2>"$WORK/$name.loadgen.log" &
    STORM_PID=$!
    # The load generator registers accounts and creates showtimes first; the storm begins
    # when it prints "storming".
    for ((i = 0; i < 3000; i++)); do
        grep -q storming "$WORK/$name.loadgen.log" 2>/dev/null && break
        kill -0 "$STORM_PID" 2>/dev/null || break
        sleep 0.1
    done
    grep -q storming "$WORK/$name.loadgen.log" || die "$name: the storm did not start"
    sleep "$(python3 -c "print($WARMUP_S + $DURATION_S / 3)")"
    log "$name: kill -9 the process on port $victim (pid ${SERVE_PID[$victim]})"
    kill -KILL "${SERVE_PID[$victim]}"
    wait "${SERVE_PID[$victim]}" 2>/dev/null || true
    unset "SERVE_PID[$victim]"
    sleep "$RESTART_AFTER"
    log "$name: restarting the process on port $victim"
    start_server "$victim" "$WORK/$name-serve-$victim.log"
    wait_ready "http://127.0.0.1:$victim/readyz" "${SERVE_PID[$victim]}" \
        "$WORK/$name-serve-$victim.log"
    log "$name: port $victim ready again; waiting for the storm to end"
    rc=0
    wait "$STORM_PID" || rc=$?
    STORM_PID=
    log "$name: load generator exit status $rc"
    printf '%s\t%s\t%s\t%s\n' "$largest, kill -9 one" "$largest" "$rc" "$WORK/$name.json" \
        >>"$RESULTS"
    stop_nginx
    stop_servers
fi

# --- the table ------------------------------------------------------------------------------
python3 - "$RESULTS" <<'EOF'
import json, sys

failed = False
rows, notes = [], []
for line in open(sys.argv[1]):
    label, procs, rc, path = line.rstrip("\n").split("\t")
    rc = int(rc)
    try:
        report = json.load(open(path))
    except (OSError, ValueError):
        report = None
    if report is None:
        failed = True
        rows.append(f"| {label} | – | – | – | – | no report (exit {rc}) |")
        continue
    lat = report.get("latency_all") or {}
    inv = report["invariant"]
    verdict = "passed" if inv["passed"] and rc == 0 else f"FAILED (exit {rc})"
    if verdict != "passed":
        failed = True
    kinds = report.get("error_kinds") or {}
    errors = str(report["errors"])
    if kinds:
        errors += " (" + ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) + ")"
    if report.get("warmup_errors"):
        errors += f"; warm-up: {report['warmup_errors']}"
    rows.append(
        f"| {label} | {report['requests_per_s']:,.0f} | {report['holds_per_s']:,.0f} "
        f"| {lat.get('p99_ms', float('nan')):.1f} | {errors} | {verdict} |"
    )
    if inv["overlaps"] or inv["seat_map_problems"]:
        notes.append(f"{label}: {inv['overlaps']} overlap(s), "
                     f"{inv['seat_map_problems']} seat-map problem(s); see {path}")
    for w in report.get("warnings") or []:
        notes.append(f"{label}: {w}")

print()
print("| processes | requests/s | granted holds/s | p99 ms | errors | invariant |")
print("| --- | ---: | ---: | ---: | --- | --- |")
print("\n".join(rows))
for n in notes:
    print(f"\n- {n}", end="")
print()
sys.exit(1 if failed else 0)
EOF
