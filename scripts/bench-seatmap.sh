#!/usr/bin/env bash
# The seat-map read path of one release `boxoffice serve`: full answers of
# GET /api/v1/showtimes/{id}/seats, revalidations of it (If-None-Match → 304), and /healthz as
# the floor, each under wrk, with the server's CPU time per request.
#
#   scripts/bench-seatmap.sh [sqlite|postgres]      # default sqlite
#   DURATION=5 scripts/bench-seatmap.sh postgres
#
# Environment (all optional):
#   DURATION     seconds of each measured wrk run (15)
#   WARMUP       seconds of the wrk warm-up before each run (2)
#   CONNECTIONS  wrk connections (64); wrk always runs with 2 threads (-t2)
#   PORT         the server's port (8090)
#   PGHOST PGPORT PGUSER   the PostgreSQL server (127.0.0.1 5432 postgres)
#   SKIP_BUILD   1: use the release binary already built
#
# The map: one hall of 300 seats (20 rows × 15; the back 4 rows premium), one showtime two
# days ahead, a third of the seats held by one customer in holds of up to 10 seats (default
# hold TTL, so nothing lapses during the run).
#
# The server, its database (boxoffice_seatmap_<pid> or a file under /tmp) and the work
# directory are removed on exit; the work directory (logs, wrk output) is kept when the script
# fails. Exit status 2: a run saw non-2xx/3xx answers, or a check of the answers failed.
set -euo pipefail

BACKEND=${1:-sqlite}
case $BACKEND in
    sqlite | postgres) ;;
    *)
        echo "usage: $0 [sqlite|postgres]" >&2
        exit 1
        ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$TARGET/release/boxoffice
DURATION=${DURATION:-15}
DURATION=${DURATION%s}
WARMUP=${WARMUP:-2}
WARMUP=${WARMUP%s}
CONNECTIONS=${CONNECTIONS:-64}
PORT=${PORT:-8090}

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
BASE=http://127.0.0.1:$PORT
APP_DB=boxoffice_seatmap_$$
SQLITE_FILE=/tmp/boxoffice-seatmap-$$.db


[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be whole seconds, got $DURATION"
[[ $WARMUP =~ ^[0-9]+$ ]] || die "WARMUP must be whole seconds, got $WARMUP"
[[ $CONNECTIONS =~ ^[1-9][0-9]*$ ]] || die "CONNECTIONS must be a positive number, got $CONNECTIONS"
[[ $PORT =~ ^[1-9][0-9]*$ ]] || die "PORT must be a port number, got $PORT"
for tool in curl python3 getconf; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
if [[ $BACKEND == postgres ]]; then
    for tool in createdb dropdb; do
        command -v "$tool" >/dev/null || die "$tool not found"
    done
fi
if ! command -v wrk >/dev/null; then
    log "installing wrk"
    if ! apt-get install -y wrk >/dev/null 2>&1; then
        apt-get update >/dev/null 2>&1 || true
        apt-get install -y wrk >/dev/null || die "could not install wrk (apt-get install -y wrk)"
    fi
    command -v wrk >/dev/null || die "wrk not found after installing it"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/boxoffice-seatmap.XXXXXX")
log "work directory: $WORK"

SERVER_PID=
DB_CREATED=0

# shellcheck disable=SC2317 # called by the trap
cleanup() {
    local status=$? i
    trap - EXIT INT TERM
    if [[ -n $SERVER_PID ]]; then stop_pid "$SERVER_PID"; fi
    if [[ $DB_CREATED == 1 ]]; then
        dropdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" --if-exists --force "$APP_DB" 2>/dev/null ||
            log "could not drop database $APP_DB"
    fi
    rm -f "$SQLITE_FILE" "$SQLITE_FILE-wal" "$SQLITE_FILE-shm" "$SQLITE_FILE-journal"
    if [[ $status == 0 ]]; then
        rm -rf "$WORK"
    else
        log "logs kept in $WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM


# --- build and start ------------------------------------------------------------------------
if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building the release binary"
    (cd "$ROOT" && cargo build --release -p boxoffice)
fi
[[ -x $BIN ]] || die "no release binary at $BIN"

if [[ $BACKEND == postgres ]]; then
    createdb -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" "$APP_DB"
    DB_CREATED=1
    DB_URL="postgres://$PGUSER@$PGHOST:$PGPORT/$APP_DB"
else
    DB_URL="sqlite://$SQLITE_FILE"
fi
port_free "$PORT" || die "port $PORT is in use (set PORT)"
# A hold TTL set in the caller's environment would apply; the default (10 minutes) outlasts
# the run.
BOXOFFICE_ADMIN_EMAIL=$ADMIN_EMAIL BOXOFFICE_ADMIN_PASSWORD=$ADMIN_PASSWORD RUST_LOG=warn \
    "$BIN" serve --database-url "$DB_URL" --listen "127.0.0.1:$PORT" --rate-limit off \
    >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
wait_ready "$BASE/readyz" "$SERVER_PID" "$WORK/serve.log"
log "server ($BACKEND) ready on $BASE, pid $SERVER_PID"

# --- the showtime ---------------------------------------------------------------------------
log "setting up a 300-seat hall, a showtime and the holds"
SHOWTIME_ID=$(
    BASE=$BASE ADMIN_EMAIL=$ADMIN_EMAIL ADMIN_PASSWORD=$ADMIN_PASSWORD python3 - <<'EOF'
import datetime, json, os, sys, urllib.error, urllib.request

base = os.environ["BASE"] + "/api/v1"

def call(method, path, body=None, token=None, expect=(200, 201)):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, text = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    if status not in expect:
        sys.exit(f"{method} {path}: HTTP {status}: {text[:500].decode(errors='replace')}")
    return json.loads(text) if text else None

admin = call("POST", "/auth/login",
             {"email": os.environ["ADMIN_EMAIL"], "password": os.environ["ADMIN_PASSWORD"]})["access_token"]
cinema = call("POST", "/cinemas", {"name": "Seat-map bench", "city": "Berlin",
                                   "timezone": "Europe/Berlin", "currency": "EUR"}, admin)
layout = ["s" * 15] * 16 + ["p" * 15] * 4
hall = call("POST", f"/cinemas/{cinema['id']}/halls",
            {"name": "Hall 300", "layout": layout, "buffer_minutes": 15}, admin)
movie = call("POST", "/movies", {"title": "Seat-map bench", "runtime_minutes": 120}, admin)
start = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)).replace(
    minute=0, second=0, microsecond=0)
showtime = call("POST", "/showtimes", {"movie_id": movie["id"], "hall_id": hall["id"],
                                       "starts_at": start.isoformat(), "format": "2D",
                                       "prices": {"standard": 1200, "premium": 1500}}, admin)
sid = showtime["id"]

customer = call("POST", "/auth/register", {"email": f"seatmap-{os.getpid()}@boxoffice.test",
                                           "password": "bench-password-1",
                                           "name": "Seat-map customer"})["access_token"]
seats = call("GET", f"/showtimes/{sid}/seats")["seats"]
if len(seats) != 300:
    sys.exit(f"the map has {len(seats)} seats, expected 300")
# Every third seat in hall order (spread over all rows), in holds of 2 to 10 seats.
picked = [s["id"] for s in sorted(seats, key=lambda s: (s["row"], s["number"]))][::3]
sizes, i, k = [10, 7, 4, 9, 2, 6, 10, 3, 8, 5], 0, 0
holds = 0
while i < len(picked):
    chunk = picked[i:i + sizes[k % len(sizes)]]
    i, k = i + len(chunk), k + 1
    booking = call("POST", "/bookings",
                   {"showtime_id": sid, "seats": [{"seat_id": s} for s in chunk]}, customer)
    if booking.get("status") != "held":
        sys.exit(f"booking {booking.get('id')} is {booking.get('status')}, expected held")
    holds += 1
states = {}
for s in call("GET", f"/showtimes/{sid}/seats")["seats"]:
    states[s["state"]] = states.get(s["state"], 0) + 1
print(f"{holds} holds; seat states: {json.dumps(states, sort_keys=True)}", file=sys.stderr)
print(sid)
EOF
) || die "setting up the showtime failed"
SEATS_URL=$BASE/api/v1/showtimes/$SHOWTIME_ID/seats
log "showtime $SHOWTIME_ID"

# The full map as wrk gets it (no Accept-Encoding), and its tag.
read -r MAP_STATUS MAP_BYTES < <(curl -sS -D "$WORK/map.headers" -o "$WORK/map.json" \
    -w '%{http_code} %{size_download}\n' "$SEATS_URL")
[[ $MAP_STATUS == 200 ]] || die "GET $SEATS_URL answered $MAP_STATUS"
ETAG=$(sed -n 's/^[Ee][Tt][Aa][Gg]: *\(.*\)\r$/\1/p' "$WORK/map.headers")
[[ -n $ETAG ]] || die "the seat map has no ETag"
REVAL_STATUS=$(curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$SEATS_URL")
CHECKS_FAILED=0
if [[ $REVAL_STATUS != 304 ]]; then
    log "PROBLEM: If-None-Match: $ETAG answered $REVAL_STATUS, not 304"
    CHECKS_FAILED=1
fi
log "full map: $MAP_BYTES bytes, ETag $ETAG; revalidation answers $REVAL_STATUS"

# --- the runs -------------------------------------------------------------------------------
TICKS=$(getconf CLK_TCK)
RESULTS=$WORK/results.tsv
: >"$RESULTS"

# run NAME URL [wrk header args…]: a warm-up, then the measured run with the server's CPU.
run() {
    local name=$1 url=$2 before after
    shift 2
    log "$name: warm-up ${WARMUP}s, then ${DURATION}s with wrk -t2 -c$CONNECTIONS"
    if ((WARMUP > 0)); then
        wrk -t2 -c"$CONNECTIONS" -d"${WARMUP}s" "$@" "$url" >"$WORK/$name.warmup" 2>&1 ||
            die "wrk warm-up for $name failed: $(cat "$WORK/$name.warmup")"
    fi
    before=$(cpu_ticks "$SERVER_PID")
    wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url" >"$WORK/$name.wrk" 2>&1 ||
        die "wrk for $name failed: $(cat "$WORK/$name.wrk")"
    after=$(cpu_ticks "$SERVER_PID")
    printf '%s\t%s\t%s\t%s\n' "$name" "$WORK/$name.wrk" "$before" "$after" >>"$RESULTS"
}

run full "$SEATS_URL"
run revalidation "$SEATS_URL" -H "If-None-Match: $ETAG"
run healthz "$BASE/healthz"

# The map must not have changed under the runs (a lapsed hold would turn 304s into 200s).
ETAG_AFTER=$(curl -sS -D - -o /dev/null "$SEATS_URL" | sed -n 's/^[Ee][Tt][Aa][Gg]: *\(.*\)\r$/\1/p')
if [[ $ETAG_AFTER != "$ETAG" ]]; then
    log "PROBLEM: the ETag changed during the runs ($ETAG → $ETAG_AFTER)"
    CHECKS_FAILED=1
fi
RSS_KB=$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVER_PID/status")
kill -0 "$SERVER_PID" 2>/dev/null || die "the server died during the runs"

rc=0
python3 - "$RESULTS" "$BACKEND" "$TICKS" "$MAP_BYTES" "$RSS_KB" "$CONNECTIONS" "$DURATION" \
    "$(nproc)" <<'EOF' || rc=$?
import re, sys

results, backend, ticks, map_bytes, rss_kb, conns, duration, cores = sys.argv[1:]
ticks, map_bytes = int(ticks), int(map_bytes)

TIME = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
SIZE = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4, "PB": 1024**5}

def ms(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text)
    return float(m.group(1)) * TIME[m.group(2)] if m else float("nan")

def parse(path):
    out = open(path).read()
    r = {"p50": float("nan"), "p99": float("nan"), "non_ok": 0, "socket_errors": 0}
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+\w+), ([0-9.]+)(\w+) read", out, re.M)
    if not m:
        sys.exit(f"no request count in the wrk output {path}:\n{out}")
    r["requests"] = int(m.group(1))
    r["bytes"] = float(m.group(3)) * SIZE.get(m.group(4), float("nan"))
    m = re.search(r"^Requests/sec:\s*([0-9.]+)", out, re.M)
    r["rps"] = float(m.group(1)) if m else float("nan")
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s*{pct}(?:\.0+)?%\s+(\S+)", out, re.M)
        if m:
            r[key] = ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    if m:
        r["non_ok"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["socket_errors"] = sum(int(x) for x in m.groups())
    return r

label = {
    "full": "GET seats, full body (200)",
    "revalidation": "GET seats, If-None-Match (304)",
    "healthz": "GET /healthz (floor)",
}
backend_name = {"postgres": "PostgreSQL", "sqlite": "SQLite"}[backend]
rows, problems = [], []
for line in open(results):
    name, path, before, after = line.rstrip("\n").split("\t")
    r = parse(path)
    cpu_s = (int(after) - int(before)) / ticks
    r["cpu_s"] = cpu_s
    r["cpu_ms_per_req"] = 1000 * cpu_s / r["requests"] if r["requests"] else float("nan")
    r["bytes_per_resp"] = r["bytes"] / r["requests"] if r["requests"] else float("nan")
    if r["non_ok"]:
        problems.append(f"{name}: {r['non_ok']} answers were not 2xx/3xx (see {path})")
    # wrk counts 304 as a success; a body-sized answer means 200s instead.
    if name == "revalidation" and r["bytes_per_resp"] > map_bytes / 2:
        problems.append(f"revalidation: {r['bytes_per_resp']:.0f} bytes per answer, "
                        f"so not 304s (the full map is {map_bytes} bytes)")
    if name == "full" and r["bytes_per_resp"] < map_bytes * 0.9:
        problems.append(f"full: {r['bytes_per_resp']:.0f} bytes per answer, "
                        f"less than the {map_bytes}-byte map")
    rows.append((name, r))

print()
print(f"Seat map of a 300-seat hall, a third held; wrk -t2 -c{conns}, {duration} s per run "
      f"after a warm-up. wrk runs on the same {cores} cores as the server, so requests/s and "
      f"latency include the competition for CPU; CPU per request counts the server process only.")
print()
print("| backend | request | requests/s | p99 ms | server CPU per request (ms) |")
print("| --- | --- | ---: | ---: | ---: |")
for name, r in rows:
    print(f"| {backend_name} | {label[name]} | {r['rps']:,.0f} | {r['p99']:.2f} | "
          f"{r['cpu_ms_per_req']:.4f} |")
print()
print("| request | requests | p50 ms | bytes per answer (wrk) | server CPU s | server cores busy "
      "| non-2xx/3xx | socket errors |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for name, r in rows:
    print(f"| {label[name]} | {r['requests']:,} | {r['p50']:.2f} | {r['bytes_per_resp']:,.0f} | "
          f"{r['cpu_s']:.2f} | {r['cpu_s'] / int(duration):.2f} | {r['non_ok']} | "
          f"{r['socket_errors']} |")
print()
print(f"- full seat map body: {map_bytes:,} bytes")
print(f"- server VmRSS at the end: {int(rss_kb) / 1024:.1f} MiB ({rss_kb} kB)")
for p in problems:
    print(f"- PROBLEM: {p}")
sys.exit(2 if problems else 0)
EOF
if ((CHECKS_FAILED)); then
    rc=2
fi
if ((rc != 0)); then
    log "some checks failed (exit $rc)"
fi
exit "$rc"
