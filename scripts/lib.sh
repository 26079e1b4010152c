# Helpers the benchmark scripts share; sourced, not run.
# shellcheck shell=bash

# shellcheck disable=SC2034 # used by the scripts that source this
ADMIN_EMAIL=bench@boxoffice.test
# shellcheck disable=SC2034
ADMIN_PASSWORD=bench-password-1

# The PostgreSQL server every benchmark uses, unless the environment names another.
export PGHOST=${PGHOST:-127.0.0.1}
export PGPORT=${PGPORT:-5432}
export PGUSER=${PGUSER:-postgres}

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Whether nothing listens on 127.0.0.1:$1.
port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Stops a process: SIGTERM, then SIGKILL after 10 s.
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# Waits until a URL answers 2xx (at most 60 s) while the process $2 is alive; shows the end of
# its log $3 when it is not.
wait_ready() {
    local url=$1 pid=$2 logfile=$3 i
    for ((i = 0; i < 600; i++)); do
        if curl -fsS -m 2 -o /dev/null "$url" 2>/dev/null; then return 0; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$logfile" >&2 || true
            die "the process for $url exited"
        fi
        sleep 0.1
    done
    tail -n 20 "$logfile" >&2 || true
    die "$url did not answer within 60 s"
}

# The machine's busy and total CPU ticks so far, as "busy,total" (from /proc/stat: busy is all
# but idle and iowait).
machine_ticks() {
    local _ user nice system idle iowait irq softirq steal
    read -r _ user nice system idle iowait irq softirq steal _ </proc/stat
    echo "$((user + nice + system + irq + softirq + steal)),$((user + nice + system + idle + iowait + irq + softirq + steal))"
}

# utime + stime of a process (all its threads), in clock ticks: fields 14 and 15 of
# /proc/<pid>/stat. With `reaped` as the second argument, also cutime + cstime (16 and 17):
# what its children that ended and were waited for used. Fails if the process is gone.
cpu_ticks() {
    local stat with_reaped=${2:-}
    stat=$(<"/proc/$1/stat") || return 1
    # Fields after the command name (in parentheses, may contain spaces) start at field 3.
    stat=${stat##*) }
    # shellcheck disable=SC2086 # split into fields on purpose
    set -- $stat
    if [[ $with_reaped == reaped ]]; then
        echo $((${12} + ${13} + ${14} + ${15}))
    else
        echo $((${12} + ${13}))
    fi
}

# CPU ticks of the whole local PostgreSQL server so far: the postmaster's own and those of the
# backends that ended (it reaps them), plus the processes still running. The difference of two
# readings is what PostgreSQL spent in between. Needs to read the postmaster's /proc entries
# (root or the postgres user); prints nothing if it cannot.
pg_ticks() {
    local pm total pid ticks
    pm=$(pgrep -o -x postgres) || return 0
    total=$(cpu_ticks "$pm" reaped 2>/dev/null) || return 0
    for pid in $(pgrep -P "$pm"); do
        # Gone since pgrep listed it: its ticks show up in the postmaster's reaped ones from
        # the next reading on, so a reading may miss a few ticks of a backend ending just then.
        ticks=$(cpu_ticks "$pid" 2>/dev/null) || continue
        total=$((total + ticks))
    done
    echo "$total"
}

# A number from pgbench's report on standard input: `tps` (without the initial connection
# time) or `tx` (the transactions processed).
pgbench_result() {
    case $1 in
        tps) sed -n 's/^tps = \([0-9.]*\) (without initial connection time)$/\1/p' ;;
        tx) sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' ;;
        *) die "pgbench_result: tps or tx, not $1" ;;
    esac
}
