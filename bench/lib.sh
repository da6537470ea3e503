# bench/lib.sh — helpers the engine benchmarks share (sourced; they define die and log first).

# wait_answer NAME PID LOGFILE TRIES STEP CMD...: runs CMD every STEP seconds until it succeeds;
# dies (showing the end of LOGFILE) when process PID exits first or after TRIES attempts.
wait_answer() {
    local name=$1 pid=$2 logfile=$3 tries=$4 step=$5
    shift 5
    for _ in $(seq "$tries"); do
        "$@" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$logfile" >&2; die "$name exited"; }
        sleep "$step"
    done
    "$@" >/dev/null 2>&1 || { tail -n 20 "$logfile" >&2; die "$name did not answer"; }
}

# dockerd_config DIR: writes DIR/daemon.json for a private dockerd (dockerd < 23 writes
# /etc/docker/key.json unless its config file names another path).
dockerd_config() {
    local major
    major=$(dockerd --version | awk '{print $3}' | cut -d. -f1)
    if [[ "$major" -lt 23 ]]; then
        printf '{"deprecated-key-path": "%s/key.json"}\n' "$1" >"$1/daemon.json"
    else
        echo '{}' >"$1/daemon.json"
    fi
}
