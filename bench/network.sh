#!/usr/bin/env bash
# bench/network.sh — networking end to end: berth's daemon against a private dockerd, in one run,
# on the same busybox image. Prints a Markdown section for bench/RESULTS.md on stdout; progress
# on stderr.
#
# Setup (untimed): a busybox-static rootfs tar (busybox + sh/true/sleep/echo/cat/ls/nc/dd/time
# links, /etc/passwd, /etc/group) imported into both engines with CMD ["sh"]:
#   berth   `berth import` into the daemon's data root, then `berth daemon` on its own socket,
#           data root and exec root, with its own default bridge (`--bridge-name bebr<token>`),
#           hence its own nft table (`berth_bebr<token>`); it picks the bridge's subnet itself
#   docker  a private dockerd (own --data-root, --exec-root, -H socket, pidfile, cgroupfs under
#           a private cgroup parent) on a bridge this script makes (`dkbr<token>`, a free
#           10.237.X.0/24), with --iptables=false --ip6tables=false --ip-masq=false
#           --ip-forward=false (dockerd never touches the host's firewall or sysctls) and the
#           userland proxy (default), which is what carries 127.0.0.1 traffic to a published
#           port; `docker import` of the same tar
# Timed:
#   1. `run --rm IMAGE true` with the default bridge network (no --network flag), hyperfine -N:
#      docker CLI against berth's daemon, the berth CLI against berth's daemon, docker; and
#      both docker-CLI rows with `--network none` as the reference without networking
#   2. the same with `-p 127.0.0.1:PORT:80`; then both (docker CLI rows only) again while a
#      detached container keeps each engine's default bridge busy (berth makes its bridge and
#      nft table on first use and removes them when its last container stops)
#   3. throughput, REPS rounds of SIZE_MB MiB each: from the host (a python3 sender, 1 MiB
#      writes) to 127.0.0.1:PORT published (`-p 127.0.0.1:PORT:5000`) to a container running
#      busybox `nc -l -p 5000 -e sh -c 'dd of=/dev/null bs=1M iflag=fullblock 2>&1'`, which
#      answers with dd's record count (checked); the same sender and receiver on the loopback of
#      a private network namespace as the baseline; and (CTC=1) container to container on the
#      engine's default bridge (client `nc IP 5000 -e dd if=/dev/zero ...`, timed inside the
#      client container with busybox `time -p`)
#   4. after every container is removed and the daemon got SIGTERM: whether berth left its
#      bridge, its nft table or veths behind
#
# Environment:
#   BERTH_BIN=PATH       berth binary (default: build and use target/release/berth)
#   BERTH_SKIP_BUILD=1   do not run cargo; use the existing release binary
#   RUNS=20 WARMUP=3     hyperfine iterations for `run --rm`
#   SIZE_MB=1024 REPS=3  transfer size (MiB) and repetitions for the throughput rows
#   CTC=1                also container to container (CTC=0: skip)
#   KEEP=1               keep the work dir (logs, hyperfine JSON) and print its path
set -Eeuo pipefail
shopt -s inherit_errexit
# A failing command names its line (also inside functions and $(…)).
trap 'echo "network.sh: line $LINENO: \"$BASH_COMMAND\" failed ($?)" >&2' ERR

SELF=$(realpath "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
SIZE_MB=${SIZE_MB:-1024}
REPS=${REPS:-3}
CTC=${CTC:-1}
BYTES=$((SIZE_MB * 1024 * 1024))
IMAGE=bench-busybox:latest

die() { echo "network.sh: $*" >&2; exit 1; }
log() { echo "network.sh: $*" >&2; }
# shellcheck source=lib.sh
. "$(dirname "$SELF")/lib.sh"

[[ $(id -u) == 0 ]] || die "must run as root (daemons, bridges, nftables, cgroups)"
for tool in hyperfine jq tar python3 dockerd containerd docker-proxy busybox ip nft ss unshare timeout; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
DOCKER_CLI=${BERTH_TEST_DOCKER_CLI:-$(command -v docker || true)}
[[ -n "$DOCKER_CLI" ]] || die "the docker CLI is not installed"
BUSYBOX=$(command -v busybox)
file -L "$BUSYBOX" 2>/dev/null | grep -q "statically linked" || [[ -x /bin/busybox ]] || die "need a static busybox"

WORK=$(mktemp -d /tmp/berth-bench-net.XXXXXX)
TOKEN=${WORK##*.}
TOKEN=${TOKEN,,}
CGROUP="berth-bench-$TOKEN"
BBR="bebr$TOKEN"          # berth's default bridge
BTABLE="berth_$BBR"       # berth's nft table (named after its default bridge)
DBR="dkbr$TOKEN"          # docker's bridge, made here
DSUBNET=""                # docker's subnet prefix, e.g. 10.237.7 (set below)
BERTHD_PID=""
DOCKERD_PID=""
DBR_MADE=""

# ----- cleanup (also on failure) -----------------------------------------------------------------
stop_pid() { # pid seconds: SIGTERM, wait, SIGKILL
    local pid=$1 n=$(($2 * 5))
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq "$n"); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null
    return 0
}
cleanup() {
    set +e
    trap - ERR
    log "cleaning up"
    if [[ -n "$BERTHD_PID" ]] && kill -0 "$BERTHD_PID" 2>/dev/null; then
        ids=$(bd ps -aq 2>/dev/null)
        [[ -n "$ids" ]] && bd rm -f $ids >/dev/null 2>&1
        stop_pid "$BERTHD_PID" 10
    fi
    if [[ -n "$DOCKERD_PID" ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        ids=$(dk ps -aq 2>/dev/null)
        [[ -n "$ids" ]] && dk rm -f $ids >/dev/null 2>&1
        stop_pid "$DOCKERD_PID" 20
    fi
    # Whatever still names the work dir (shims, containerd), and docker-proxy processes of
    # docker's private subnet (their command lines name the container's address).
    for pid in $(grep -lsF "$WORK" /proc/[0-9]*/cmdline | cut -d/ -f3); do
        [[ "$pid" != "$$" ]] && kill -KILL "$pid" 2>/dev/null
    done
    if [[ -n "$DSUBNET" ]]; then
        for pid in $(grep -lsF -- "$DSUBNET." /proc/[0-9]*/cmdline | cut -d/ -f3); do
            { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null | grep -q '^docker-proxy \|/docker-proxy ' &&
                kill -KILL "$pid" 2>/dev/null
        done
    fi
    sleep 0.3
    for mnt in $(awk '$9 == "cgroup" || $9 == "cgroup2" {print $5}' /proc/self/mountinfo); do
        [[ -d "$mnt/$CGROUP" ]] || continue
        find "$mnt/$CGROUP" -depth -type d | while read -r d; do
            xargs -r kill -9 <"$d/cgroup.procs" 2>/dev/null
            rmdir "$d" 2>/dev/null
        done
    done
    awk -v w="$WORK" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    # Links and rules named with this run's token (berth should have removed its own already:
    # section 4 reports whether it did).
    for l in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -F "$TOKEN"); do
        ip link del "$l" 2>/dev/null
    done
    [[ -n "$DBR_MADE" ]] && ip link del "$DBR" 2>/dev/null
    nft list table ip "$BTABLE" >/dev/null 2>&1 && nft delete table ip "$BTABLE"
    if [[ -n "${KEEP:-}" ]]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)

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
BUILD="${BERTH_BUILD:-}"
if [[ -z "$BUILD" ]]; then
    case "$BERTH" in
        */release/*) BUILD=release ;;
        */debug/*) BUILD="debug (unoptimized)" ;;
        *) BUILD=unknown ;;
    esac
fi

# ----- helpers -----------------------------------------------------------------------------------
# A TCP port nothing listens on (ephemeral-range-free, tried at random).
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 12000))
        [[ -z "$(ss -Htan "sport = :$p")" ]] && { echo "$p"; return; }
    done
    die "no free TCP port found"
}
# Waits until a process's network namespace has a TCP socket listening on PORT (busybox nc
# listens on [::] when the kernel has IPv6).
wait_listen() { # pid port
    local hex
    hex=$(printf '%04X' "$2")
    for _ in $(seq 200); do
        cat "/proc/$1/net/tcp" "/proc/$1/net/tcp6" 2>/dev/null |
            awk -v p=":$hex" '$2 ~ p"$" && $4 == "0A" {f = 1} END {exit !f}' && return 0
        sleep 0.05
    done
    return 1
}
now_us() { echo $(($(date +%s%N) / 1000)); }

# ----- the image ---------------------------------------------------------------------------------
mkdir -p "$WORK/rootfs/bin" "$WORK/rootfs/etc"
cp "$BUSYBOX" "$WORK/rootfs/bin/busybox"
for a in sh true sleep echo cat ls nc dd time; do ln -s busybox "$WORK/rootfs/bin/$a"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$WORK/rootfs/etc/passwd"
echo 'root:x:0:' >"$WORK/rootfs/etc/group"
TAR="$WORK/busybox.tar"
tar --numeric-owner -C "$WORK/rootfs" -cf "$TAR" .

# ----- docker's bridge: a free 10.237.X.0/24 -----------------------------------------------------
for x in $(seq 0 255); do
    net="10.237.$x.0/24"
    # Free: no route inside it, and none covering it but the default route.
    [[ -z "$(ip -4 route show root "$net")" ]] || continue
    [[ -z "$(ip -4 route show match "$net" | grep -v '^default')" ]] || continue
    DSUBNET="10.237.$x"
    break
done
[[ -n "$DSUBNET" ]] || die "no free subnet in 10.237.0.0/16"
ip link add "$DBR" type bridge
DBR_MADE=1
ip addr add "$DSUBNET.1/24" dev "$DBR"
ip link set "$DBR" up
log "docker's bridge $DBR on $DSUBNET.0/24"

# ----- berth daemon ------------------------------------------------------------------------------
B="$WORK/berth"
mkdir -p "$B/cli"
export DOCKER_CONFIG="$B/cli" # the docker CLI's config for both daemons (nothing is stored)
echo '{}' >"$B/cli/config.json"
bd() { "$DOCKER_CLI" -H "unix://$B/berth.sock" "$@"; }
# `timeout SECONDS bd|dk ARGS…` (timeout cannot run a shell function).
tmo() { # seconds engine-fn args...
    local s=$1 f=$2 sock
    shift 2
    [[ "$f" == bd ]] && sock="$B/berth.sock" || sock="$D/docker.sock"
    timeout "$s" "$DOCKER_CLI" -H "unix://$sock" "$@"
}
"$BERTH" --data-root "$B/data" import -c 'CMD ["sh"]' "$TAR" "$IMAGE" >/dev/null
"$BERTH" daemon -H "unix://$B/berth.sock" --data-root "$B/data" --exec-root "$B/exec" \
    --bridge-name "$BBR" >"$B/daemon.log" 2>&1 &
BERTHD_PID=$!
wait_answer "berth daemon" "$BERTHD_PID" "$B/daemon.log" 100 0.1 bd version
log "berth daemon up ($BUILD build), default bridge $BBR"

# ----- private dockerd ---------------------------------------------------------------------------
D="$WORK/docker"
mkdir -p "$D/data" "$D/exec"
dockerd_config "$D"
dk() { "$DOCKER_CLI" -H "unix://$D/docker.sock" "$@"; }
TMPDIR="$WORK" dockerd --config-file "$D/daemon.json" -H "unix://$D/docker.sock" \
    --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/docker.pid" \
    --bridge="$DBR" --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --userland-proxy=true --exec-opt native.cgroupdriver=cgroupfs --storage-driver overlay2 \
    --shutdown-timeout 5 --cgroup-parent "/$CGROUP" >"$D/log" 2>&1 &
DOCKERD_PID=$!
wait_answer dockerd "$DOCKERD_PID" "$D/log" 150 0.2 dk version
dk import -c 'CMD ["sh"]' "$TAR" "$IMAGE" >/dev/null
DVER=$(dk version --format '{{.Server.Version}}')
CLIVER=$(bd version --format '{{.Client.Version}}')
log "dockerd $DVER up"

# ----- 1 and 2. run --rm IMAGE true, default bridge, without and with -p -------------------------
BPORT=$(free_port)
DPORT=$(free_port)
while [[ "$DPORT" == "$BPORT" ]]; do DPORT=$(free_port); done
CPORT=$(free_port)
while [[ "$CPORT" == "$BPORT" || "$CPORT" == "$DPORT" ]]; do CPORT=$(free_port); done
BERTHD_RUN=("$DOCKER_CLI" -H "unix://$B/berth.sock" run --rm --pull never "$IMAGE" true)
BERTHCLI_RUN=("$BERTH" -H "unix://$B/berth.sock" run --rm --pull never "$IMAGE" true)
DOCKER_RUN=("$DOCKER_CLI" -H "unix://$D/docker.sock" run --rm --pull never "$IMAGE" true)
BERTHD_RUNP=("$DOCKER_CLI" -H "unix://$B/berth.sock" run --rm --pull never -p "127.0.0.1:$BPORT:80" "$IMAGE" true)
BERTHCLI_RUNP=("$BERTH" -H "unix://$B/berth.sock" run --rm --pull never -p "127.0.0.1:$CPORT:80" "$IMAGE" true)
DOCKER_RUNP=("$DOCKER_CLI" -H "unix://$D/docker.sock" run --rm --pull never -p "127.0.0.1:$DPORT:80" "$IMAGE" true)
# Every command runs once untimed first: a failure is named with its stderr.
for c in BERTHD_RUN BERTHCLI_RUN DOCKER_RUN BERTHD_RUNP BERTHCLI_RUNP DOCKER_RUNP; do
    declare -n cmd=$c
    "${cmd[@]}" >/dev/null 2>"$WORK/smoke.err" || { cat "$WORK/smoke.err" >&2; die "${cmd[*]} failed"; }
    unset -n cmd
done
BSUBNET=$(bd network inspect bridge -f '{{range .IPAM.Config}}{{.Subnet}}{{end}}')
log "berth's default bridge network: $BSUBNET"
q() { printf '%q ' "$@"; }
log "timing run --rm (default bridge)"
hyperfine -N --style basic --runs "$RUNS" --warmup "$WARMUP" --export-json "$WORK/run.json" \
    -n "berth daemon + docker CLI" "$(q "${BERTHD_RUN[@]}")" \
    -n "berth daemon + berth CLI" "$(q "${BERTHCLI_RUN[@]}")" \
    -n "docker (dockerd + containerd)" "$(q "${DOCKER_RUN[@]}")" \
    -n "berth daemon + docker CLI, --network none" "$(q "${BERTHD_RUN[@]:0:4}" --network none "${BERTHD_RUN[@]:4}")" \
    -n "docker (dockerd + containerd), --network none" "$(q "${DOCKER_RUN[@]:0:4}" --network none "${DOCKER_RUN[@]:4}")" >&2
log "timing run --rm -p 127.0.0.1:PORT:80"
hyperfine -N --style basic --runs "$RUNS" --warmup "$WARMUP" --export-json "$WORK/runp.json" \
    -n "berth daemon + docker CLI, -p" "$(q "${BERTHD_RUNP[@]}")" \
    -n "berth daemon + berth CLI, -p" "$(q "${BERTHCLI_RUNP[@]}")" \
    -n "docker (dockerd + containerd), -p" "$(q "${DOCKER_RUNP[@]}")" >&2
# The same two commands while another container runs on each default bridge: berth then
# keeps its bridge and nft table between runs, as docker always keeps its bridge.
bd run -d --pull never --name resident "$IMAGE" sleep 100000 >/dev/null
dk run -d --pull never --name resident "$IMAGE" sleep 100000 >/dev/null
log "timing run --rm with a resident container on each bridge"
hyperfine -N --style basic --runs "$RUNS" --warmup "$WARMUP" --export-json "$WORK/resident.json" \
    -n "berth daemon + docker CLI" "$(q "${BERTHD_RUN[@]}")" \
    -n "docker (dockerd + containerd)" "$(q "${DOCKER_RUN[@]}")" \
    -n "berth daemon + docker CLI, -p" "$(q "${BERTHD_RUNP[@]}")" \
    -n "docker (dockerd + containerd), -p" "$(q "${DOCKER_RUNP[@]}")" >&2
bd rm -f resident >/dev/null
dk rm -f resident >/dev/null

# ----- 3. throughput -----------------------------------------------------------------------------
# The receiver everywhere: busybox `nc -l -p 5000 -e sh -c 'dd of=/dev/null bs=1M
# iflag=fullblock 2>&1'`, so dd reads the connection in 1 MiB blocks and, at EOF, answers with
# its record counts on the same connection. (busybox nc's own copy loop moves 1 KiB per
# select(): ~70 MB/s here whatever the network path, so it would measure nc, not the engine.)
RECV='dd of=/dev/null bs=1M iflag=fullblock 2>&1'
# The host's sender: connect, send BYTES in 1 MiB writes, half-close, read the receiver's
# answer until it closes; prints "µs answer".
cat >"$WORK/send.py" <<'EOF'
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
buf = memoryview(bytes(1 << 20))
t0 = time.monotonic()
s = socket.create_connection((host, port), timeout=300)
left = n
while left > 0:
    k = min(left, len(buf))
    s.sendall(buf[:k])
    left -= k
s.shutdown(socket.SHUT_WR)
reply = b""
while True:
    r = s.recv(65536)
    if not r:
        break
    reply += r
t1 = time.monotonic()
print(int((t1 - t0) * 1e6), " ".join(reply.decode(errors="replace").split()))
EOF
# Checks the receiver's answer ("N+0 records in ...") and prints the µs.
checked() { # what "µs answer"
    local us ans
    read -r us ans <<<"$2"
    [[ "$ans" == "$SIZE_MB+0 records in"* ]] || die "$1: sent $SIZE_MB MiB, the receiver answered: ${ans:-nothing}"
    echo "$us"
}
# Host 127.0.0.1 → published port → the receiver in a container; prints µs.
pub_transfer() { # engine-fn port
    local f=$1 port=$2 id pid out rc
    id=$("$f" run -d --pull never -p "127.0.0.1:$port:5000" "$IMAGE" nc -l -p 5000 -e sh -c "$RECV")
    pid=$("$f" inspect -f '{{.State.Pid}}' "$id")
    wait_listen "$pid" 5000 || die "$f: nc in $id does not listen"
    out=$(python3 "$WORK/send.py" 127.0.0.1 "$port" "$BYTES") || die "$f: the transfer to 127.0.0.1:$port failed"
    rc=$(tmo 60 "$f" wait "$id")
    "$f" rm "$id" >/dev/null
    [[ "$rc" == 0 ]] || die "$f: the receiving container exited with $rc"
    checked "$f: 127.0.0.1:$port" "$out"
}
# The same sender and receiver on the loopback of a private network namespace.
loop_transfer() {
    local out
    out=$(unshare -n bash -c '
        set -euo pipefail
        ip link set lo up
        "$1" nc -l -p 5000 -e "$1" sh -c "$2" >/dev/null &
        for _ in $(seq 100); do [[ -n "$(ss -Htln "sport = :5000")" ]] && break; sleep 0.05; done
        python3 "$3" 127.0.0.1 5000 "$4"
        wait' _ "$BUSYBOX" "$RECV" "$WORK/send.py" "$BYTES") || die "the loopback baseline failed"
    checked "loopback baseline" "$out"
}
# Container → container on the engine's default bridge: the client container runs
# `time -p nc IP 5000 -e dd if=/dev/zero bs=1M count=SIZE_MB` (busybox `time`, 10 ms
# resolution; dd's last write is queued in the socket when it exits, a few MB at most); the
# receiver container logs its record counts. Prints µs.
ctc_transfer() { # engine-fn
    local f=$1 id ip out rc real got
    id=$("$f" run -d --pull never "$IMAGE" sh -c "nc -l -p 5000 -e sh -c '${RECV% 2>&1} 2>/r'; cat /r")
    ip=$("$f" inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$id")
    wait_listen "$("$f" inspect -f '{{.State.Pid}}' "$id")" 5000 || die "$f: nc in $id does not listen"
    out=$(tmo 300 "$f" run --rm --pull never "$IMAGE" \
        time -p nc "$ip" 5000 -e dd if=/dev/zero bs=1M count="$SIZE_MB" 2>&1) ||
        { echo "$out" >&2; die "$f: container to container transfer failed"; }
    rc=$(tmo 60 "$f" wait "$id")
    got=$("$f" logs "$id" 2>&1 | tr '\n' ' ')
    "$f" rm "$id" >/dev/null
    [[ "$rc" == 0 ]] || die "$f: the receiving container exited with $rc"
    [[ "$got" == "$SIZE_MB+0 records in"* ]] || die "$f: sent $SIZE_MB MiB container to container, the receiver logged: $got"
    real=$(awk '$1 == "real" {print $2}' <<<"$out")
    [[ -n "$real" ]] || { echo "$out" >&2; die "$f: no time from the client container"; }
    awk -v r="$real" 'BEGIN { printf "%d", r * 1000000 }'
}

declare -a T_LOOP T_BPUB T_DPUB T_BCTC T_DCTC
for r in $(seq "$REPS"); do
    log "throughput, round $r/$REPS: loopback baseline"
    T_LOOP+=("$(loop_transfer)")
    log "throughput, round $r/$REPS: berth published port"
    T_BPUB+=("$(pub_transfer bd "$BPORT")")
    log "throughput, round $r/$REPS: docker published port"
    T_DPUB+=("$(pub_transfer dk "$DPORT")")
    if [[ "$CTC" == 1 ]]; then
        log "throughput, round $r/$REPS: container to container"
        T_BCTC+=("$(ctc_transfer bd)")
        T_DCTC+=("$(ctc_transfer dk)")
    fi
done

# ----- 4. does berth leave anything behind? ------------------------------------------------------
ids=$(bd ps -aq)
[[ -z "$ids" ]] || bd rm -f $ids >/dev/null
sleep 0.5
# While the daemon runs its default bridge and table stay (as docker0 does); the veths and
# namespaces of removed containers must be gone.
LEFT_RM=""
n=$({ ip -o link show master "$BBR" 2>/dev/null || true; } | wc -l)
[[ "$n" == 0 ]] || LEFT_RM+="$n links enslaved to $BBR; "
n=$(awk -v w="$B/exec" 'index($5, w) == 1' /proc/self/mountinfo | grep -c netns || true)
[[ "$n" == 0 ]] || LEFT_RM+="$n netns mounts; "
t0=$(now_us)
stop_pid "$BERTHD_PID" 10
STOP_TXT="the daemon exited in $((($(now_us) - t0) / 1000)) ms"
kill -0 "$BERTHD_PID" 2>/dev/null && STOP_TXT="the daemon did not exit within 10 s and was killed"
BERTHD_PID=""
LEFT_STOP=""
ip link show "$BBR" >/dev/null 2>&1 && LEFT_STOP+="bridge $BBR; "
nft list table ip "$BTABLE" >/dev/null 2>&1 && LEFT_STOP+="nft table $BTABLE; "
n=$({ ip -o link show master "$BBR" 2>/dev/null || true; } | wc -l)
[[ "$n" == 0 ]] || LEFT_STOP+="$n links enslaved to $BBR; "
n=$(awk -v w="$B/exec" 'index($5, w) == 1' /proc/self/mountinfo | grep -c netns || true)
[[ "$n" == 0 ]] || LEFT_STOP+="$n netns mounts; "
[[ -z "$LEFT_RM$LEFT_STOP" ]] || log "berth left behind: after rm: ${LEFT_RM:-nothing}; after SIGTERM: ${LEFT_STOP:-nothing}"

# ----- report ------------------------------------------------------------------------------------
ms() { jq -r --arg n "$2" '.results[] | select(.command == $n) | .'"$3"' * 1000 | . * 10 | round / 10' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
mbps() { awk -v b="$BYTES" -v u="$1" 'BEGIN { printf "%.0f", b / u }'; } # bytes/µs = MB/s
# "each run's MB/s" and the MB/s of the mean time
row() { # label times...
    local label=$1 sum=0 each="" t
    shift
    for t in "$@"; do sum=$((sum + t)); each+="$(mbps "$t"), "; done
    local mean=$((sum / $#))
    echo "| $label | ${each%, } | $(awk -v u="$mean" 'BEGIN { printf "%.2f", u / 1e6 }') | **$(mbps "$mean")** |"
}
mean_of() { local s=0 t; for t in "$@"; do s=$((s + t)); done; echo $((s / $#)); }
table() {
    echo "| command | mean (ms) | σ (ms) | min (ms) | max (ms) |"
    echo "|---|---:|---:|---:|---:|"
    jq -r '.results[] | "| \(.command) | \(.mean*10000|round/10) | \((.stddev // 0)*10000|round/10) | \(.min*10000|round/10) | \(.max*10000|round/10) |"' "$1"
}
ratios() { # json suffix
    local j=$1 s=$2 BM BMIN CM CMIN DM DMIN
    BM=$(ms "$j" "berth daemon + docker CLI$s" mean); BMIN=$(ms "$j" "berth daemon + docker CLI$s" min)
    CM=$(ms "$j" "berth daemon + berth CLI$s" mean); CMIN=$(ms "$j" "berth daemon + berth CLI$s" min)
    DM=$(ms "$j" "docker (dockerd + containerd)$s" mean); DMIN=$(ms "$j" "docker (dockerd + containerd)$s" min)
    echo "- berth daemon + docker CLI / docker = **$(ratio "$BM" "$DM")×** (mean), $(ratio "$BMIN" "$DMIN")× (min); goal < 0.1×"
    echo "- berth daemon + berth CLI / docker = **$(ratio "$CM" "$DM")×** (mean), $(ratio "$CMIN" "$DMIN")× (min)"
}
echo
echo "## Networking: \`run --rm\` on the default bridge, with \`-p\`, throughput through a published port — $(date -u +%Y-%m-%d)"
echo
echo "Host: Linux $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GB", $2/1048576}' /proc/meminfo)"\
     "(a shared machine: other work may have run during the measurement; compare the ratios within this run;"\
     "load average $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end, $(($(date +%s) - T_START)) s in all)."\
     "berth: \`$BERTH\` (**$BUILD build**), its daemon on a private socket/data root/exec root with its own default"\
     "bridge \`--bridge-name $BBR\` (subnet $BSUBNET, picked by berth) and nft table \`$BTABLE\`;"\
     "published ports are nftables DNAT (prerouting + output) with \`route_localnet\` on the bridge."\
     "docker: dockerd $DVER with containerd $(containerd --version | awk '{print $3}') and runc $(runc --version | awk 'NR==1 {print $3}'),"\
     "private daemon (own data/exec root and socket, cgroupfs) on its own bridge (\`--bridge=$DBR\`, $DSUBNET.0/24)"\
     "with \`--iptables=false --ip6tables=false --ip-masq=false --ip-forward=false\` and the **userland proxy**"\
     "(\`docker-proxy\`), which is dockerd's path for traffic to a port published on 127.0.0.1 anyway:"\
     "with the userland proxy on (the default), its own iptables rules leave 127.0.0.0/8 destinations to docker-proxy."\
     "docker CLI $CLIVER. $(hyperfine --version)."
echo "Image: a busybox-static rootfs tar (busybox + links, /etc/passwd, /etc/group) imported into both"\
     "engines. No \`--network\` flag: every container is on the engine's default bridge network."
echo
echo "### \`run --rm IMAGE true\` on the default bridge ($RUNS runs after $WARMUP warm-up, hyperfine -N)"
echo
table "$WORK/run.json"
echo
ratios "$WORK/run.json" ""
NB=$(ms "$WORK/run.json" "berth daemon + docker CLI, --network none" mean)
ND=$(ms "$WORK/run.json" "docker (dockerd + containerd), --network none" mean)
echo "- what the default bridge adds to a \`run --rm\` (mean, against \`--network none\` in the same run):"\
     "berth $(awk -v a="$(ms "$WORK/run.json" "berth daemon + docker CLI" mean)" -v b="$NB" 'BEGIN { printf "%+.1f", a - b }') ms,"\
     "docker $(awk -v a="$(ms "$WORK/run.json" "docker (dockerd + containerd)" mean)" -v b="$ND" 'BEGIN { printf "%+.1f", a - b }') ms;"\
     "with \`--network none\` berth / docker = $(ratio "$NB" "$ND")×"
echo
echo "### \`run --rm -p 127.0.0.1:PORT:80 IMAGE true\` ($RUNS runs after $WARMUP warm-up, hyperfine -N)"
echo
table "$WORK/runp.json"
echo
ratios "$WORK/runp.json" ", -p"
echo
echo "### The same with one other container running on each engine's default bridge ($RUNS runs after $WARMUP warm-up)"
echo
echo "A detached \`sleep\` container stays up on each engine during these runs, so berth's default bridge and"\
     "nft table exist before each run and stay after it (berth makes its default bridge on first use and removes it"\
     "when its last container stops; docker's bridge always exists)."
echo
table "$WORK/resident.json"
echo
for s in "" ", -p"; do
    BM=$(ms "$WORK/resident.json" "berth daemon + docker CLI$s" mean); BMIN=$(ms "$WORK/resident.json" "berth daemon + docker CLI$s" min)
    DM=$(ms "$WORK/resident.json" "docker (dockerd + containerd)$s" mean); DMIN=$(ms "$WORK/resident.json" "docker (dockerd + containerd)$s" min)
    echo "- ${s:+with -p: }berth daemon + docker CLI / docker = **$(ratio "$BM" "$DM")×** (mean), $(ratio "$BMIN" "$DMIN")× (min)"
done
echo
echo "### Throughput: $SIZE_MB MiB through busybox \`nc\` ($REPS rounds)"
echo
echo "Receiver: a container running busybox \`nc -l -p 5000 -e sh -c 'dd of=/dev/null bs=1M iflag=fullblock 2>&1'\`"\
     "(dd reads the connection in 1 MiB blocks and answers with its record count, checked every round)."\
     "Sender on the host: python3, 1 MiB \`sendall\`s, half-close, then read until the receiver closes;"\
     "the time runs from connect to that close. The rounds interleave the rows. MB = 10⁶ bytes."\
     "busybox nc's own copy loop (1 KiB per \`select\`) tops out near 70 MB/s on this machine whatever the path,"\
     "which is why the data goes to dd rather than through \`nc >/dev/null\`."
echo
echo "| path | MB/s per round | mean time (s) | MB/s (mean time) |"
echo "|---|---|---:|---:|"
row "baseline: same sender and receiver on a private netns's loopback, no engine" "${T_LOOP[@]}"
row "berth: host 127.0.0.1 → published port (nft DNAT)" "${T_BPUB[@]}"
row "docker: host 127.0.0.1 → published port (docker-proxy)" "${T_DPUB[@]}"
if [[ "$CTC" == 1 ]]; then
    row "berth: container → container on the default bridge" "${T_BCTC[@]}"
    row "docker: container → container on its bridge" "${T_DCTC[@]}"
fi
echo
BP=$(mean_of "${T_BPUB[@]}"); DP=$(mean_of "${T_DPUB[@]}"); LP=$(mean_of "${T_LOOP[@]}")
echo "- published port: berth / docker throughput = **$(ratio "$DP" "$BP")×**; berth reaches $(ratio "$LP" "$BP")× of the baseline, docker $(ratio "$LP" "$DP")×"
if [[ "$CTC" == 1 ]]; then
    BC=$(mean_of "${T_BCTC[@]}"); DC=$(mean_of "${T_DCTC[@]}")
    echo "- container to container: berth / docker throughput = **$(ratio "$DC" "$BC")×** (timed inside the client container by busybox \`time -p\`, 10 ms resolution)"
fi
echo
echo "### Leftovers"
echo
[[ -n "$LEFT_RM" ]] || LEFT_RM="no veth on berth's bridge and no netns mount is left (the default bridge and its table stay while the daemon runs, as docker0 does)"
[[ -n "$LEFT_STOP" ]] || LEFT_STOP="no bridge, nft table, enslaved link or netns mount of berth's is left"
echo "After \`rm -f\` of every container: ${LEFT_RM%; }. After SIGTERM ($STOP_TXT): ${LEFT_STOP%; }."
echo
