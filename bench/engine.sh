#!/usr/bin/env bash
# bench/engine.sh — the engine end to end: berth (its daemon driven by the docker CLI, and the
# berth CLI) against a private dockerd (+ its containerd) and podman, on the same busybox image,
# in one run. Prints a Markdown section for bench/RESULTS.md on stdout; progress on stderr.
#
# Setup (untimed): a busybox-static rootfs tar (busybox + sh/true/sleep/echo links, /etc/passwd,
# /etc/group) imported into every engine with CMD ["sh"]:
#   berth   `berth import` into the daemon's data root, then `berth daemon` on its own socket,
#           data root and exec root; a second data root for the in-process `berth run`
#   docker  a private dockerd (own --data-root, --exec-root, -H socket, --bridge=none,
#           no iptables, cgroupfs under a private cgroup parent) and the containerd it starts;
#           `docker import` of the same tar
#   podman  private --root/--runroot, runc, cgroupfs, a private containers.conf
#           (default_ulimits = [], events_logger = "none"); `podman import` of the same tar
# Timed:
#   1. `run --rm IMAGE true`, end to end (hyperfine, all commands in one invocation):
#      berth CLI -> berth daemon (berth's normal path), docker CLI -> berth daemon, berth CLI
#      in-process (--data-root), docker, podman; all with --network none
#   2. 50 detached `sleep 1000` containers per engine: time to start them, then the memory of
#      the engine's own processes: berth daemon + its 50 shims vs dockerd + containerd + 50
#      containerd-shim-runc-v2 (podman: its 50 conmons) — PSS (smaps_rollup) and RSS (VmRSS)
#   3. `ps -a` and `inspect NAME` latency with those 50 containers (hyperfine), docker CLI
#      against berth's daemon vs against dockerd (podman's own CLI as a third column)
#
# Environment:
#   BERTH_BIN=PATH       berth binary (default: build and use target/release/berth)
#   BERTH_SKIP_BUILD=1   do not run cargo; use the existing release binary
#   RUNS=20 WARMUP=3     hyperfine iterations for `run --rm` (ps/inspect use 3x RUNS)
#   COUNT=50             detached containers per engine
#   NO_PODMAN=1          skip podman
#   KEEP=1               keep the work dir (logs, hyperfine JSON) and print its path
set -euo pipefail

SELF=$(realpath "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
COUNT=${COUNT:-50}
IMAGE=bench-busybox:latest

die() { echo "engine.sh: $*" >&2; exit 1; }
log() { echo "engine.sh: $*" >&2; }
# shellcheck source=lib.sh
. "$(dirname "$SELF")/lib.sh"

[[ $(id -u) == 0 ]] || die "must run as root (daemons, mounts, cgroups)"
for tool in hyperfine jq tar dockerd containerd busybox; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
DOCKER_CLI=${BERTH_TEST_DOCKER_CLI:-$(command -v docker || true)}
[[ -n "$DOCKER_CLI" ]] || die "the docker CLI is not installed"
PODMAN=""
if [[ -z "${NO_PODMAN:-}" ]] && command -v podman >/dev/null && command -v runc >/dev/null; then
    PODMAN=$(command -v podman)
fi
BUSYBOX=$(command -v busybox)
file -L "$BUSYBOX" 2>/dev/null | grep -q "statically linked" || [[ -x /bin/busybox ]] || die "need a static busybox"

WORK=$(mktemp -d /tmp/berth-bench-engine.XXXXXX)
TOKEN=${WORK##*.}
CGROUP="berth-bench-${TOKEN,,}"
BERTHD_PID=""
DOCKERD_PID=""

# ----- cleanup (also on failure) -----------------------------------------------------------------
cleanup() {
    set +e
    log "cleaning up"
    if [[ -n "$BERTHD_PID" ]] && kill -0 "$BERTHD_PID" 2>/dev/null; then
        ids=$(bd ps -aq 2>/dev/null)
        [[ -n "$ids" ]] && bd rm -f $ids >/dev/null 2>&1
        kill -KILL "$BERTHD_PID" 2>/dev/null
    fi
    if [[ -n "$DOCKERD_PID" ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        ids=$(dk ps -aq 2>/dev/null)
        [[ -n "$ids" ]] && dk rm -f $ids >/dev/null 2>&1
        kill -TERM "$DOCKERD_PID"
        for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$DOCKERD_PID" 2>/dev/null
    fi
    if [[ -n "$PODMAN" && -d "$WORK/podman" ]]; then
        pm rm -f -a -t 0 >/dev/null 2>&1
    fi
    # Whatever still names the work dir (shims, containerd, conmon, container processes).
    for pid in $(grep -lsF "$WORK" /proc/[0-9]*/cmdline | cut -d/ -f3); do
        [[ "$pid" != "$$" ]] && kill -KILL "$pid" 2>/dev/null
    done
    sleep 0.3
    # berth's containers live in /berth/<id> cgroups, which `rm -f` removed; docker's and
    # podman's under the private parent.
    for mnt in $(awk '$9 == "cgroup" || $9 == "cgroup2" {print $5}' /proc/self/mountinfo); do
        [[ -d "$mnt/$CGROUP" ]] || continue
        find "$mnt/$CGROUP" -depth -type d | while read -r d; do
            xargs -r kill -9 <"$d/cgroup.procs" 2>/dev/null
            rmdir "$d" 2>/dev/null
        done
    done
    awk -v w="$WORK" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    if [[ -n "${KEEP:-}" ]]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ----- berth binary ------------------------------------------------------------------------------
if [[ -n "${BERTH_BIN:-}" ]]; then
    BERTH=$(command -v "$BERTH_BIN" || true)
    [[ -n "$BERTH" ]] || die "BERTH_BIN=$BERTH_BIN not found"
    BERTH=$(realpath "$BERTH")
else
    if [[ -z "${BERTH_SKIP_BUILD:-}" ]]; then
        (cd "$REPO" && cargo build --release -p berth >&2) || die "cargo build --release -p berth failed"
    fi
    BERTH="${CARGO_TARGET_DIR:-$REPO/target}/release/berth"
    [[ -x "$BERTH" ]] || die "$BERTH not found (build it, or set BERTH_BIN)"
fi
case "$BERTH" in
    */release/*) BUILD=release ;;
    */debug/*) BUILD="debug (unoptimized)" ;;
    *) BUILD=unknown ;;
esac

# ----- the image ---------------------------------------------------------------------------------
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/etc"
cp "$BUSYBOX" "$WORK/rootfs/bin/busybox"
for a in sh true sleep echo cat ls; do ln -s busybox "$WORK/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$WORK/rootfs/etc/passwd"
echo 'root:x:0:' >"$WORK/rootfs/etc/group"
TAR="$WORK/busybox.tar"
tar --numeric-owner -C "$WORK/rootfs" -cf "$TAR" .

# ----- berth daemon ------------------------------------------------------------------------------
B="$WORK/berth"
mkdir -p "$B/cli"
export DOCKER_CONFIG="$B/cli" # the docker CLI's config for both daemons (nothing is stored)
echo '{}' >"$B/cli/config.json" # podman reads it too (and fails when it is missing)
bd() { "$DOCKER_CLI" -H "unix://$B/berth.sock" "$@"; }
"$BERTH" --data-root "$B/data" import -c 'CMD ["sh"]' "$TAR" "$IMAGE" >/dev/null
"$BERTH" --data-root "$B/cli-data" import -c 'CMD ["sh"]' "$TAR" "$IMAGE" >/dev/null
"$BERTH" daemon -H "unix://$B/berth.sock" --data-root "$B/data" --exec-root "$B/exec" \
    >"$B/daemon.log" 2>&1 &
BERTHD_PID=$!
wait_answer "berth daemon" "$BERTHD_PID" "$B/daemon.log" 100 0.1 bd version
log "berth daemon up ($BUILD build)"

# ----- private dockerd ---------------------------------------------------------------------------
D="$WORK/docker"
mkdir -p "$D/data" "$D/exec"
dockerd_config "$D"
dk() { "$DOCKER_CLI" -H "unix://$D/docker.sock" "$@"; }
TMPDIR="$WORK" dockerd --config-file "$D/daemon.json" -H "unix://$D/docker.sock" \
    --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/docker.pid" \
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --userland-proxy=false --exec-opt native.cgroupdriver=cgroupfs --storage-driver overlay2 \
    --shutdown-timeout 5 --cgroup-parent "/$CGROUP" >"$D/log" 2>&1 &
DOCKERD_PID=$!
wait_answer dockerd "$DOCKERD_PID" "$D/log" 150 0.2 dk version
dk import -c 'CMD ["sh"]' "$TAR" "$IMAGE" >/dev/null
log "dockerd $(dk version --format '{{.Server.Version}}') up"

# ----- podman ------------------------------------------------------------------------------------
P="$WORK/podman"
PM_BASE=("$PODMAN" --root "$P/root" --runroot "$P/run" --runtime runc --cgroup-manager cgroupfs
    --storage-driver overlay --tmpdir "$P/tmp" --events-backend none)
pm() { "${PM_BASE[@]}" "$@"; }
if [[ -n "$PODMAN" ]]; then
    mkdir -p "$P/tmp"
    cat >"$P/containers.conf" <<EOF
[containers]
default_ulimits = []
log_driver = "k8s-file"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "none"
runtime = "runc"
EOF
    export CONTAINERS_CONF="$P/containers.conf"
    if pm import -c 'CMD ["sh"]' "$TAR" "$IMAGE" >/dev/null 2>"$P/import.err" &&
        pm run --rm --network none --cgroup-parent "/$CGROUP" "$IMAGE" true 2>"$P/smoke.err"; then
        log "podman $(pm version --format '{{.Client.Version}}') ready"
    else
        cat "$P/import.err" "$P/smoke.err" >&2
        log "podman does not work here: skipping it"
        PODMAN=""
    fi
fi

# ----- 1. run --rm IMAGE true --------------------------------------------------------------------
# Every command runs once untimed first: a failure is named with its stderr.
BERTHD_RUN=("$DOCKER_CLI" -H "unix://$B/berth.sock" run --rm --network none "$IMAGE" true)
BERTHC_RUN=("$BERTH" -H "unix://$B/berth.sock" run --rm --network none "$IMAGE" true)
BERTHCLI_RUN=("$BERTH" --data-root "$B/cli-data" run --rm "$IMAGE" true)
DOCKER_RUN=("$DOCKER_CLI" -H "unix://$D/docker.sock" run --rm --network none "$IMAGE" true)
PODMAN_RUN=("${PM_BASE[@]}" run --rm --network none --cgroup-parent "/$CGROUP" "$IMAGE" true)
for c in BERTHD_RUN BERTHC_RUN BERTHCLI_RUN DOCKER_RUN PODMAN_RUN; do
    [[ $c == PODMAN_RUN && -z "$PODMAN" ]] && continue
    declare -n cmd=$c
    "${cmd[@]}" >/dev/null 2>"$WORK/smoke.err" || { cat "$WORK/smoke.err" >&2; die "${cmd[*]} failed"; }
    unset -n cmd
done
q() { printf '%q ' "$@"; }
HF=(hyperfine -N --style basic --runs "$RUNS" --warmup "$WARMUP" --export-json "$WORK/run.json"
    -n "berth daemon + berth CLI" "$(q "${BERTHC_RUN[@]}")"
    -n "berth daemon + docker CLI" "$(q "${BERTHD_RUN[@]}")"
    -n "berth CLI (in-process)" "$(q "${BERTHCLI_RUN[@]}")"
    -n "docker (dockerd + containerd)" "$(q "${DOCKER_RUN[@]}")")
[[ -n "$PODMAN" ]] && HF+=(-n "podman" "$(q "${PODMAN_RUN[@]}")")
log "timing run --rm"
"${HF[@]}" >&2

# ----- 2. COUNT detached containers: start time and memory ----------------------------------------
start_many() { # engine-function extra-args...
    local f=$1; shift
    local t0 t1
    t0=$(date +%s.%N)
    for i in $(seq "$COUNT"); do
        "$f" run -d --network none "$@" --name "bench$i" "$IMAGE" sleep 1000 >/dev/null
    done
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
# Sum of PSS and RSS (kB) over the pids given on stdin; prints "count pss rss".
mem_of() {
    local n=0 pss=0 rss=0 p v
    while read -r p; do
        [[ -r /proc/$p/smaps_rollup ]] || continue
        v=$(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup")
        pss=$((pss + ${v:-0}))
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status")
        rss=$((rss + ${v:-0}))
        n=$((n + 1))
    done
    echo "$n $pss $rss"
}
# Pids whose command line (argv, NUL-separated) matches an extended regexp and names a path.
pids_matching() { # regexp path
    local pid
    for pid in $(grep -lsF "$2" /proc/[0-9]*/cmdline | cut -d/ -f3); do
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -Eq "$1" && echo "$pid"
    done
}

log "starting $COUNT containers on berth"
BERTH_START=$(start_many bd)
log "starting $COUNT containers on docker"
DOCKER_START=$(start_many dk)
PODMAN_START=""
if [[ -n "$PODMAN" ]]; then
    log "starting $COUNT containers on podman"
    PODMAN_START=$(start_many pm --cgroup-parent "/$CGROUP")
fi
[[ $(bd ps -q | wc -l) == "$COUNT" ]] || die "berth does not show $COUNT running containers"
[[ $(dk ps -q | wc -l) == "$COUNT" ]] || die "docker does not show $COUNT running containers"
sleep 2 # let every engine settle (lazy allocations, GC)

read -r BD_N BD_PSS BD_RSS < <(echo "$BERTHD_PID" | mem_of)
read -r BS_N BS_PSS BS_RSS < <(pids_matching '(^| )shim ' "$B/exec" | mem_of)
read -r DD_N DD_PSS DD_RSS < <(echo "$DOCKERD_PID" | mem_of)
read -r CT_N CT_PSS CT_RSS < <(pids_matching '^containerd ' "$D/exec" | mem_of)
read -r CS_N CS_PSS CS_RSS < <(pids_matching 'containerd-shim' "$D/exec" | mem_of)
[[ "$BS_N" == "$COUNT" ]] || log "warning: found $BS_N berth shims for $COUNT containers"
[[ "$CS_N" == "$COUNT" ]] || log "warning: found $CS_N containerd shims for $COUNT containers"
if [[ -n "$PODMAN" ]]; then
    read -r CM_N CM_PSS CM_RSS < <(pids_matching '^/usr/bin/conmon |^conmon ' "$P/" | mem_of)
fi

# ----- 3. ps / inspect latency with COUNT containers -------------------------------------------
PSRUNS=$((RUNS * 3))
PS_HF=(hyperfine -N --style basic --runs "$PSRUNS" --warmup "$WARMUP" --export-json "$WORK/ps.json"
    -n "berth: docker ps -a" "$(q "$DOCKER_CLI" -H "unix://$B/berth.sock" ps -a)"
    -n "docker: docker ps -a" "$(q "$DOCKER_CLI" -H "unix://$D/docker.sock" ps -a)"
    -n "berth: docker inspect" "$(q "$DOCKER_CLI" -H "unix://$B/berth.sock" inspect "bench$((COUNT / 2))")"
    -n "docker: docker inspect" "$(q "$DOCKER_CLI" -H "unix://$D/docker.sock" inspect "bench$((COUNT / 2))")")
if [[ -n "$PODMAN" ]]; then
    PS_HF+=(-n "podman: podman ps -a" "$(q "${PM_BASE[@]}" ps -a)"
        -n "podman: podman inspect" "$(q "${PM_BASE[@]}" inspect "bench$((COUNT / 2))")")
fi
log "timing ps and inspect"
"${PS_HF[@]}" >&2

# ----- report ------------------------------------------------------------------------------------
ms() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .'"$3"' * 1000 | . * 10 | round / 10' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo
echo "## Engine: \`run --rm\`, $COUNT detached containers, ps/inspect — $(date -u +%Y-%m-%d)"
echo
echo "Host: Linux $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo)."\
     "berth: \`$BERTH\` (**$BUILD build**); docker: dockerd $(dk version --format '{{.Server.Version}}')"\
     "with containerd $(containerd --version | awk '{print $3}') and runc $(runc --version | awk 'NR==1 {print $3}'),"\
     "private daemon (own data/exec root and socket, \`--bridge=none\`, no iptables, cgroupfs);"\
     "${PODMAN:+podman $(pm version --format '{{.Client.Version}}') (runc, cgroupfs, private root, \`default_ulimits = []\`); }"\
     "docker CLI $(bd version --format '{{.Client.Version}}'). $(hyperfine --version)."
echo "Image: a busybox-static rootfs tar (busybox + 6 links, /etc/passwd, /etc/group) imported into each"\
     "engine (\`berth import\`, \`docker import\`, \`podman import\`). All containers run with \`--network none\`."
echo
echo "### \`run --rm IMAGE true\`, end to end ($RUNS runs after $WARMUP warm-up, hyperfine -N)"
echo
echo "| command | mean (ms) | σ (ms) | min (ms) | max (ms) |"
echo "|---|---:|---:|---:|---:|"
jq -r '.results[] | "| \(.command) | \(.mean*10000|round/10) | \(.stddev*10000|round/10) | \(.min*10000|round/10) | \(.max*10000|round/10) |"' "$WORK/run.json"
echo
BM=$(ms "$WORK/run.json" "berth daemon + docker CLI" mean); BMIN=$(ms "$WORK/run.json" "berth daemon + docker CLI" min)
BCM=$(ms "$WORK/run.json" "berth daemon + berth CLI" mean); BCMIN=$(ms "$WORK/run.json" "berth daemon + berth CLI" min)
CM=$(ms "$WORK/run.json" "berth CLI (in-process)" mean); CMIN=$(ms "$WORK/run.json" "berth CLI (in-process)" min)
DM=$(ms "$WORK/run.json" "docker (dockerd + containerd)" mean); DMIN=$(ms "$WORK/run.json" "docker (dockerd + containerd)" min)
echo "- berth daemon + berth CLI / docker = **$(ratio "$BCM" "$DM")×** (mean), $(ratio "$BCMIN" "$DMIN")× (min); goal < 0.1×"
echo "- berth daemon + docker CLI / docker = **$(ratio "$BM" "$DM")×** (mean), $(ratio "$BMIN" "$DMIN")× (min) (the docker CLI alone takes ~20 ms to start)"
echo "- berth CLI (in-process) / docker = **$(ratio "$CM" "$DM")×** (mean), $(ratio "$CMIN" "$DMIN")× (min)"
if [[ -n "$PODMAN" ]]; then
    PMM=$(ms "$WORK/run.json" "podman" mean)
    echo "- berth daemon + docker CLI / podman = $(ratio "$BM" "$PMM")× (mean); docker / podman = $(ratio "$DM" "$PMM")×"
fi
echo
echo "### $COUNT detached \`sleep 1000\` containers: memory of the engine's own processes"
echo
echo "Measured 2 s after the last start; PSS from \`/proc/PID/smaps_rollup\` (shared pages divided among"\
     "the processes sharing them), RSS from \`VmRSS\`. Container processes (\`sleep\`) are not counted."
echo
echo "| engine | processes | PSS (MB) | RSS (MB) | time to start $COUNT (s) |"
echo "|---|---:|---:|---:|---:|"
echo "| berth daemon | $BD_N | $(mb "$BD_PSS") | $(mb "$BD_RSS") | |"
echo "| berth shims | $BS_N | $(mb "$BS_PSS") | $(mb "$BS_RSS") | |"
echo "| **berth total** | $((BD_N + BS_N)) | **$(mb $((BD_PSS + BS_PSS)))** | $(mb $((BD_RSS + BS_RSS))) | $BERTH_START |"
echo "| dockerd | $DD_N | $(mb "$DD_PSS") | $(mb "$DD_RSS") | |"
echo "| containerd | $CT_N | $(mb "$CT_PSS") | $(mb "$CT_RSS") | |"
echo "| containerd-shim-runc-v2 | $CS_N | $(mb "$CS_PSS") | $(mb "$CS_RSS") | |"
echo "| **docker total** | $((DD_N + CT_N + CS_N)) | **$(mb $((DD_PSS + CT_PSS + CS_PSS)))** | $(mb $((DD_RSS + CT_RSS + CS_RSS))) | $DOCKER_START |"
if [[ -n "$PODMAN" ]]; then
    echo "| podman: conmon (no daemon) | $CM_N | $(mb "$CM_PSS") | $(mb "$CM_RSS") | $PODMAN_START |"
fi
echo
echo "- berth / docker = **$(ratio $((BD_PSS + BS_PSS)) $((DD_PSS + CT_PSS + CS_PSS)))×** by PSS,"\
     "$(ratio $((BD_RSS + BS_RSS)) $((DD_RSS + CT_RSS + CS_RSS)))× by RSS; goal < 0.2×"
echo "- per container: berth shim $(awk -v p="$BS_PSS" -v n="$BS_N" 'BEGIN { printf "%.2f", p / n / 1024 }') MB PSS,"\
     "containerd-shim $(awk -v p="$CS_PSS" -v n="$CS_N" 'BEGIN { printf "%.2f", p / n / 1024 }') MB PSS"
echo
echo "### \`ps -a\` and \`inspect\` with $COUNT containers ($PSRUNS runs after $WARMUP warm-up)"
echo
echo "| command | mean (ms) | σ (ms) | min (ms) | max (ms) |"
echo "|---|---:|---:|---:|---:|"
jq -r '.results[] | "| \(.command) | \(.mean*10000|round/10) | \(.stddev*10000|round/10) | \(.min*10000|round/10) | \(.max*10000|round/10) |"' "$WORK/ps.json"
echo
echo "- ps: berth / docker = **$(ratio "$(ms "$WORK/ps.json" "berth: docker ps -a" mean)" "$(ms "$WORK/ps.json" "docker: docker ps -a" mean)")×** (mean);"\
     "inspect: berth / docker = **$(ratio "$(ms "$WORK/ps.json" "berth: docker inspect" mean)" "$(ms "$WORK/ps.json" "docker: docker inspect" mean)")×** (mean)."\
     "Both rows include the docker CLI's own start-up (~the same for both)."
echo
