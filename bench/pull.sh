#!/usr/bin/env bash
# bench/pull.sh — `berth pull` against `docker pull` of the same realistic image (Debian
# bookworm, debootstrap --variant=minbase) from the same local registry. Prints a Markdown
# section for bench/RESULTS.md on stdout; progress goes to stderr.
#
# Setup (untimed):
#   1. debootstrap --variant=minbase bookworm ROOTFS MIRROR — MIRROR is the Debian mirror apt
#      already uses (from /etc/apt/sources.list or /etc/apt/sources.list.d/*), nothing else is
#      contacted. The rootfs tar is cached in $BERTH_BENCH_CACHE (default /var/tmp/berth-bench).
#   2. a private Debian `docker-registry` on 127.0.0.1:<free port>, storage in the work dir;
#   3. a private dockerd (all state in the work dir, no bridge, no iptables);
#   4. `docker import` of the rootfs tar, `docker push` to the registry (gzip layer, docker's
#      own manifest: what a real registry serves).
# Timed (hyperfine, one invocation: all berth runs, then all docker runs):
#   berth   `berth --data-root D pull -q IMAGE`, D removed before every iteration (--prepare)
#   docker  `docker pull -q IMAGE`, after `docker rmi -f IMAGE; docker image prune -f`
# Both download the gzip layer over loopback, verify it, decompress and unpack it to disk.
#
# Both data roots live on one fresh journaled ext4 (a sparse loop file in the work dir) by
# default: on an ext4 *without* a journal (this VM's /), the kernel skips inodes freed in the
# last 5 minutes when allocating new ones (ext4 `recently_deleted()`), so every iteration that
# follows the previous one's `rm -rf` / `docker rmi` of ~7000 files pays for it, which swamps
# what is being measured (berth's runs spread from 4.8 s to 10.9 s that way; ~2 s on the loop
# fs). BENCH_FS=host measures on the work dir's own filesystem instead.
#
# Environment:
#   BERTH_BIN=PATH       berth binary (default: build and use target/release/berth)
#   BERTH_SKIP_BUILD=1   do not run cargo; use the existing release binary
#   RUNS=5 WARMUP=1      hyperfine iterations per command
#   MIRROR=URL           Debian mirror for debootstrap (default: the one apt uses)
#   BERTH_BENCH_CACHE=DIR where the debootstrapped rootfs tar is kept between runs
#   BENCH_FS=loop|host   data roots on a fresh journaled ext4 loop mount (default) or on the
#                        work dir's filesystem
#   KEEP=1               keep the work dir (logs, hyperfine JSON) and print its path
set -euo pipefail

SELF=$(realpath "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
RUNS=${RUNS:-5}
WARMUP=${WARMUP:-1}
CACHE=${BERTH_BENCH_CACHE:-/var/tmp/berth-bench}
SUITE=bookworm

die() { echo "pull.sh: $*" >&2; exit 1; }
log() { echo "pull.sh: $*" >&2; }

[[ $(id -u) == 0 ]] || die "must run as root (debootstrap, dockerd, unpacking layers)"
BENCH_FS=${BENCH_FS:-loop}
[[ "$BENCH_FS" == loop || "$BENCH_FS" == host ]] || die "BENCH_FS must be loop or host"
for tool in hyperfine jq curl tar dockerd docker-registry python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
DOCKER_CLI=${BERTH_TEST_DOCKER_CLI:-$(command -v docker || true)}
[[ -n "$DOCKER_CLI" ]] || die "the docker CLI is not installed"

WORK=$(mktemp -d /tmp/berth-bench-pull.XXXXXX)
TOKEN=${WORK##*.}
CGROUP="berth-bench-${TOKEN,,}"
DOCKERD_PID=""
REGISTRY_PID=""

cleanup() {
    set +e
    if [[ -n "$DOCKERD_PID" ]] && kill -0 "$DOCKERD_PID" 2>/dev/null; then
        kill -TERM "$DOCKERD_PID"
        for _ in $(seq 100); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$DOCKERD_PID" 2>/dev/null
    fi
    [[ -n "$REGISTRY_PID" ]] && kill -TERM "$REGISTRY_PID" 2>/dev/null
    # Whatever still names the work dir (dockerd's containerd, shims): started by this script.
    for pid in $(grep -lsF "$WORK" /proc/[0-9]*/cmdline | cut -d/ -f3); do
        [[ "$pid" != "$$" ]] && kill -KILL "$pid" 2>/dev/null
    done
    for mnt in $(awk '$9 == "cgroup" || $9 == "cgroup2" {print $5}' /proc/self/mountinfo); do
        [[ -d "$mnt/$CGROUP" ]] || continue
        find "$mnt/$CGROUP" -depth -type d | while read -r d; do
            xargs -r kill -9 <"$d/cgroup.procs" 2>/dev/null
            rmdir "$d" 2>/dev/null
        done
    done
    # Mounts below the work dir (dockerd's overlay2, debootstrap's /proc if interrupted).
    awk -v w="$WORK" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    if [[ -n "${KEEP:-}" ]]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ----- berth -----------------------------------------------------------------------------------
if [[ -n "${BERTH_BIN:-}" ]]; then
    BERTH=$(command -v "$BERTH_BIN" || true)
    [[ -n "$BERTH" ]] || die "BERTH_BIN=$BERTH_BIN not found"
else
    if [[ -z "${BERTH_SKIP_BUILD:-}" ]]; then
        (cd "$REPO" && cargo build --release -p berth >&2) || die "cargo build --release -p berth failed"
    fi
    BERTH="${CARGO_TARGET_DIR:-$REPO/target}/release/berth"
    [[ -x "$BERTH" ]] || die "$BERTH not found (build it, or set BERTH_BIN)"
fi

# ----- the image: debootstrap minbase from apt's own mirror (cached) ---------------------------
# The first mirror apt uses for $SUITE itself (not -security / -updates), one-line or deb822.
apt_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f "$f" ]] || continue
        awk -v s="$SUITE" '$1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /^(https?|file):/ && $(i+1) == s) { print $i; exit } }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f "$f" ]] || continue
        awk -v s="$SUITE" 'BEGIN { RS = "" }
            /(^|\n)Types:[^\n]*deb([ \t]|\n|$)/ && /(^|\n)Enabled:[ \t]*no/ == 0 {
                if (match($0, /(^|\n)Suites:[^\n]*/) == 0) next
                suites = substr($0, RSTART, RLENGTH); sub(/.*Suites:/, "", suites)
                n = split(suites, a, /[ \t]+/); ok = 0
                for (i = 1; i <= n; i++) if (a[i] == s) ok = 1
                if (!ok || match($0, /(^|\n)URIs:[^\n]*/) == 0) next
                uris = substr($0, RSTART, RLENGTH); sub(/.*URIs:[ \t]*/, "", uris)
                split(uris, u, /[ \t]+/); print u[1]; exit
            }' "$f"
    done
}
ROOTFS_TAR="$CACHE/$SUITE-minbase.tar"
if [[ ! -s "$ROOTFS_TAR" ]]; then
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
    MIRROR=${MIRROR:-$(apt_mirror | head -n1)}
    [[ -n "$MIRROR" ]] || die "no Debian mirror for $SUITE found in apt's sources; set MIRROR"
    log "debootstrap --variant=minbase $SUITE from $MIRROR (cached in $ROOTFS_TAR afterwards)"
    debootstrap --variant=minbase "$SUITE" "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -n 20 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
    rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
    mkdir -p "$CACHE"
    tar --numeric-owner --xattrs -C "$WORK/rootfs" -cf "$ROOTFS_TAR.part" .
    mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
    echo "$MIRROR" >"$ROOTFS_TAR.mirror"
    rm -rf "$WORK/rootfs"
fi
MIRROR_USED=$(cat "$ROOTFS_TAR.mirror" 2>/dev/null || echo "${MIRROR:-unknown}")

# ----- the filesystem both data roots live on ---------------------------------------------------
if [[ "$BENCH_FS" == loop ]]; then
    for tool in mkfs.ext4 mount; do command -v "$tool" >/dev/null || die "$tool is not installed (or use BENCH_FS=host)"; done
    truncate -s 8G "$WORK/fs.img"
    mkfs.ext4 -q -F "$WORK/fs.img" >&2
    mkdir "$WORK/fs"
    mount -o loop "$WORK/fs.img" "$WORK/fs" || die "cannot loop-mount an ext4 image (or use BENCH_FS=host)"
    FSROOT="$WORK/fs"
    FS_DESC="a fresh journaled ext4 on a loop file (\`mkfs.ext4\` defaults)"
else
    FSROOT="$WORK"
    FS_DESC="$(findmnt -n -o FSTYPE -T "$WORK") at $(findmnt -n -o TARGET -T "$WORK") (host)"
fi

# ----- local registry --------------------------------------------------------------------------
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
for attempt in 1 2 3 4 5; do
    PORT=$(free_port)
    REG="127.0.0.1:$PORT"
    mkdir -p "$WORK/registry"
    cat >"$WORK/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $WORK/registry/storage
http:
  addr: $REG
EOF
    # level warn hides the "listening on" line; use the port answering while *our* process
    # lives (another process on the port would make ours exit at once).
    docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
    REGISTRY_PID=$!
    for _ in $(seq 100); do
        kill -0 "$REGISTRY_PID" 2>/dev/null || break
        curl -fs "http://$REG/v2/" >/dev/null && break
        sleep 0.1
    done
    sleep 0.3
    if kill -0 "$REGISTRY_PID" 2>/dev/null && curl -fs "http://$REG/v2/" >/dev/null; then break; fi
    REGISTRY_PID=""
    [[ $attempt == 5 ]] && { cat "$WORK/registry/log" >&2; die "docker-registry did not start"; }
done
log "registry on $REG"

# ----- private dockerd -------------------------------------------------------------------------
D="$FSROOT/docker"
mkdir -p "$D/data" "$D/exec" "$D/cli"
major=$(dockerd --version | awk '{print $3}' | cut -d. -f1)
if [[ "$major" -lt 23 ]]; then
    # dockerd < 23 writes /etc/docker/key.json unless told otherwise (config file only).
    printf '{"deprecated-key-path": "%s/key.json"}\n' "$D" >"$D/daemon.json"
else
    echo '{}' >"$D/daemon.json"
fi
TMPDIR="$WORK" dockerd --config-file "$D/daemon.json" -H "unix://$D/docker.sock" \
    --data-root "$D/data" --exec-root "$D/exec" --pidfile "$D/docker.pid" \
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --userland-proxy=false --exec-opt native.cgroupdriver=cgroupfs --storage-driver overlay2 \
    --shutdown-timeout 5 --cgroup-parent "/$CGROUP" >"$D/log" 2>&1 &
DOCKERD_PID=$!
docker_() { DOCKER_CONFIG="$D/cli" "$DOCKER_CLI" -H "unix://$D/docker.sock" "$@"; }
for _ in $(seq 150); do
    docker_ version >/dev/null 2>&1 && break
    kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -n 20 "$D/log" >&2; die "dockerd exited"; }
    sleep 0.2
done
docker_ version >/dev/null 2>&1 || { tail -n 20 "$D/log" >&2; die "dockerd did not answer"; }
log "dockerd $(docker_ version --format '{{.Server.Version}}') up"

IMAGE="$REG/bench/debian:$SUITE-minbase"
docker_ import "$ROOTFS_TAR" "$IMAGE" >/dev/null
docker_ push -q "$IMAGE" >&2 || docker_ push "$IMAGE" >&2
docker_ rmi -f "$IMAGE" >/dev/null
docker_ image prune -f >/dev/null

MANIFEST=$(curl -fs -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/bench/debian/manifests/$SUITE-minbase")
LAYERS=$(jq '.layers | length' <<<"$MANIFEST")
COMPRESSED=$(jq '[.layers[].size] | add' <<<"$MANIFEST")
UNCOMPRESSED=$(stat -c %s "$ROOTFS_TAR")
FILES=$(tar -tf "$ROOTFS_TAR" | wc -l)

# ----- measure -----------------------------------------------------------------------------------
BDATA="$FSROOT/berth-data"
BERTH_CMD="$BERTH --data-root $BDATA pull -q $IMAGE"
BERTH_PREP="rm -rf $BDATA"
DOCKER_CMD="DOCKER_CONFIG=$D/cli $DOCKER_CLI -H unix://$D/docker.sock pull -q $IMAGE"
DOCKER_PREP="DOCKER_CONFIG=$D/cli $DOCKER_CLI -H unix://$D/docker.sock rmi -f $IMAGE >/dev/null 2>&1; DOCKER_CONFIG=$D/cli $DOCKER_CLI -H unix://$D/docker.sock image prune -f >/dev/null"

# One untimed pass of each, so a failure is named with its stderr instead of a bare hyperfine
# error, and a check that both really unpacked the image.
sh -c "$BERTH_PREP; $BERTH_CMD" >/dev/null 2>"$WORK/berth-smoke.err" \
    || { cat "$WORK/berth-smoke.err" >&2; die "berth pull failed"; }
sh -c "$DOCKER_PREP; $DOCKER_CMD" >/dev/null 2>"$WORK/docker-smoke.err" \
    || { cat "$WORK/docker-smoke.err" >&2; die "docker pull failed"; }
BERTH_ID=$("$BERTH" --data-root "$BDATA" image inspect --format '{{.Id}}' "$IMAGE")
DOCKER_ID=$(docker_ image inspect --format '{{.Id}}' "$IMAGE")
[[ "$BERTH_ID" == "$DOCKER_ID" ]] || die "berth ($BERTH_ID) and docker ($DOCKER_ID) pulled different images"
BERTH_DISK=$(du -sb "$BDATA/snapshots" | cut -f1)

hyperfine --style basic --runs "$RUNS" --warmup "$WARMUP" --export-json "$WORK/pull.json" \
    -n berth --prepare "$BERTH_PREP" "$BERTH_CMD" \
    -n docker --prepare "$DOCKER_PREP" "$DOCKER_CMD" >&2

# ----- report -----------------------------------------------------------------------------------
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
echo
echo "## Image pull: Debian $SUITE minbase from a local registry — $(date -u +%Y-%m-%d)"
echo
echo "Host: Linux $(uname -r), $(nproc) CPUs. berth = \`$BERTH\`; docker: dockerd"\
     "$(docker_ version --format '{{.Server.Version}}') (overlay2), CLI $(docker_ version --format '{{.Client.Version}}');"\
     "registry: $(docker-registry --version | awk '{print $2, $3}') on 127.0.0.1 (plain HTTP)."
echo "Image: \`debootstrap --variant=minbase $SUITE\` from $MIRROR_USED, \`docker import\`ed and"\
     "\`docker push\`ed: $LAYERS layer, $(mb "$COMPRESSED") gzip, $(mb "$UNCOMPRESSED") tar, $FILES entries"\
     "(berth's unpacked snapshot: $(mb "$BERTH_DISK"))."
echo "Data roots (berth's and dockerd's) on $FS_DESC."
echo "$(hyperfine --version), $RUNS runs after $WARMUP warm-up each. berth: fresh \`--data-root\`"\
     "per run; docker: \`docker rmi -f\` + \`docker image prune -f\` before each run. Both print"\
     "\`-q\` output only; both end with the layer verified and unpacked on disk."
echo
echo "| command | mean (s) | σ (s) | min (s) | max (s) |"
echo "|---|---:|---:|---:|---:|"
jq -r '.results[] | "| \(.command) pull | \(.mean*1000|round/1000) | \(.stddev*1000|round/1000) | \(.min*1000|round/1000) | \(.max*1000|round/1000) |"' "$WORK/pull.json"
echo
jq -r '.results as $r | "- berth / docker = **\(($r[0].mean / $r[1].mean)*100|round/100)×** (mean), \(($r[0].min / $r[1].min)*100|round/100)× (min); goal: ≤ 0.5×"' "$WORK/pull.json"
echo
