#!/usr/bin/env bash
# bench/runtime.sh — berth's OCI runtime against runc and crun, side by side, on one busybox
# bundle whose process is /bin/true. Prints a Markdown section for bench/RESULTS.md.
#
# Measured (hyperfine, one invocation per table so all runtimes share the same conditions):
#   run   `RT --root DIR run --bundle B <fresh id>`           (create, start, wait, delete)
#   cycle `RT create ... && RT start ... && RT delete --force` (the verbs a shim drives)
#
# Each iteration uses a fresh id (`bench-$$`: the pid of the shell hyperfine spawns for it), so
# no state carries over; `run` deletes its container on exit and `cycle` deletes explicitly.
#
# crun 1.8.1 refuses hybrid cgroup hosts (any controller listed in
# /sys/fs/cgroup/unified/cgroup.controllers, even with --cgroup-manager=disabled). When crun
# fails on this host's view, a second table is measured for all three runtimes inside a private
# mount namespace in which /sys/fs/cgroup/unified is unmounted (a pure cgroup v1 view; the host
# itself is not changed).
#
# Environment:
#   BERTH_BIN=PATH|NAME  runtime for the "berth" column (default: build target/release/berth and
#                        call it through a `berth-runtime` symlink). A binary named `berth` is
#                        always called through such a symlink. BERTH_BIN=runc validates the script.
#   BERTH_SKIP_BUILD=1   do not run cargo; use the existing release binary.
#   VIEWS="host v1view"  which tables to measure (default: host, plus v1view when crun fails on
#                        the host's view of a hybrid host). BERTH_BIN=crun needs VIEWS=v1view here.
#   RUNS=50 WARMUP=5     hyperfine iterations per command.
#   KEEP=1               keep the work dir (JSON exports, bundle) and print its path.
set -euo pipefail

SELF=$(realpath "${BASH_SOURCE[0]}")
REPO=$(cd "$(dirname "$SELF")/.." && pwd)
RUNS=${RUNS:-50}
WARMUP=${WARMUP:-5}

die() { echo "runtime.sh: $*" >&2; exit 1; }

# ----- phase run inside the private mount namespace (re-invoked by the script itself) ---------
if [[ "${1:-}" == "__v1view" ]]; then
    umount /sys/fs/cgroup/unified || die "cannot unmount /sys/fs/cgroup/unified in the private mount namespace"
    shift
    exec "$@"
fi

[[ $(id -u) == 0 ]] || die "must run as root (containers need namespaces, mounts and cgroups)"
for tool in hyperfine jq busybox unshare; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
RUNC=$(command -v runc || true)
CRUN=$(command -v crun || true)
[[ -n "$RUNC" ]] || die "runc is not installed (needed as the reference runtime)"

WORK=$(mktemp -d /tmp/berth-bench.XXXXXX)
TOKEN=${WORK##*.}
CGROUP="berth-bench-${TOKEN,,}"

cleanup() {
    local rt root id
    for root in "$WORK"/state/*; do
        [[ -d "$root" ]] || continue
        rt=$(cat "$root.rt" 2>/dev/null || true)
        [[ -n "$rt" ]] || continue
        for id in "$root"/*; do
            [[ -d "$id" ]] && "$rt" --root "$root" delete --force "${id##*/}" >/dev/null 2>&1 || true
        done
    done
    for mnt in $(awk '$9 == "cgroup" || $9 == "cgroup2" {print $5}' /proc/self/mountinfo); do
        local dir="$mnt/$CGROUP"
        [[ -d "$dir" ]] || continue
        # children first; any process still inside was started by this script
        find "$dir" -depth -type d | while read -r d; do
            xargs -r kill -9 <"$d/cgroup.procs" 2>/dev/null || true
            rmdir "$d" 2>/dev/null || true
        done
    done
    if [[ -n "${KEEP:-}" ]]; then echo "work dir kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# ----- the runtime under test ----------------------------------------------------------------
mkdir -p "$WORK/bin" "$WORK/state"
if [[ -n "${BERTH_BIN:-}" ]]; then
    bin=$(command -v "$BERTH_BIN" || true)
    [[ -n "$bin" ]] || die "BERTH_BIN=$BERTH_BIN not found"
    BERTH_LABEL="berth (BERTH_BIN=$BERTH_BIN)"
else
    if [[ -z "${BERTH_SKIP_BUILD:-}" ]]; then
        (cd "$REPO" && cargo build --release -p berth >&2) || die "cargo build --release -p berth failed"
    fi
    bin="${CARGO_TARGET_DIR:-$REPO/target}/release/berth"
    [[ -x "$bin" ]] || die "$bin not found (build it, or set BERTH_BIN)"
    BERTH_LABEL="berth"
fi
if [[ "$(basename "$bin")" == "berth" ]]; then
    ln -s "$bin" "$WORK/bin/berth-runtime"
    BERTH="$WORK/bin/berth-runtime"
else
    BERTH="$bin"
fi

# ----- bundle: static busybox rootfs, /bin/true, no terminal ----------------------------------
BUNDLE="$WORK/bundle"
mkdir -p "$BUNDLE/rootfs"/{bin,dev,etc,proc,sys,tmp,root}
cp "$(command -v busybox)" "$BUNDLE/rootfs/bin/busybox"
for applet in $(busybox --list); do
    [[ "$applet" == busybox ]] || ln -sf busybox "$BUNDLE/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$BUNDLE/rootfs/etc/passwd"
echo 'root:x:0:' >"$BUNDLE/rootfs/etc/group"
(cd "$BUNDLE" && "$RUNC" spec)   # runc's default spec: the common denominator of all three
jq --arg cg "/$CGROUP" '.process.args = ["/bin/true"] | .process.terminal = false
    | .linux.cgroupsPath = $cg' "$BUNDLE/config.json" >"$BUNDLE/config.json.new"
mv "$BUNDLE/config.json.new" "$BUNDLE/config.json"

# run_cmd NAME RT: the `run` command line for hyperfine (its shell expands $$ per iteration).
run_cmd() {
    local root="$WORK/state/$1"
    mkdir -p "$root" && echo "$2" >"$root.rt"
    echo "$2 --root $root run --bundle $BUNDLE bench-\$\$"
}
cycle_cmd() {
    local root="$WORK/state/$1"
    mkdir -p "$root" && echo "$2" >"$root.rt"
    local rt="$2 --root $root"
    echo "$rt create --bundle $BUNDLE cyc-\$\$ && $rt start cyc-\$\$ && $rt delete --force cyc-\$\$"
}

# bench OUT_PREFIX [namespace-wrapper...] -- NAME RT [NAME RT ...]
bench() {
    local out=$1; shift
    local wrap=()
    while [[ "$1" != "--" ]]; do wrap+=("$1"); shift; done
    shift
    local run_args=() cycle_args=()
    while [[ $# -gt 0 ]]; do
        run_args+=(-n "$1" "$(run_cmd "$out-$1" "$2")")
        cycle_args+=(-n "$1" "$(cycle_cmd "$out-$1-cycle" "$2")")
        shift 2
    done
    # One untimed pass of every command first, so a failing runtime is named with its stderr.
    local i
    for ((i = 0; i < ${#run_args[@]}; i += 3)); do
        for cmd in "${run_args[i + 2]}" "${cycle_args[i + 2]}"; do
            if ! "${wrap[@]}" sh -c "$cmd" >/dev/null 2>"$WORK/smoke.err"; then
                echo "runtime.sh: ${run_args[i + 1]} failed ($out view): $cmd" >&2
                cat "$WORK/smoke.err" >&2
                return 1
            fi
        done
    done
    "${wrap[@]}" hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" \
        --export-json "$WORK/$out-run.json" "${run_args[@]}" >&2 || return 1
    "${wrap[@]}" hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" \
        --export-json "$WORK/$out-cycle.json" "${cycle_args[@]}" >&2 || return 1
}

# table JSON: Markdown rows, then ratios of the first command (berth) to each other one; the
# ratio of minimums is the less load-sensitive one on a shared machine.
table() {
    echo "| runtime | mean (ms) | σ (ms) | min (ms) | max (ms) |"
    echo "|---|---:|---:|---:|---:|"
    jq -r '.results[] | "| \(.command) | \(.mean*1000*100|round/100) | \(.stddev*1000*100|round/100) | \(.min*1000*100|round/100) | \(.max*1000*100|round/100) |"' "$1"
    echo
    jq -r '.results as $r | $r[1:][] | "- berth / \(.command) = **\(($r[0].mean / .mean)*100|round/100)×** (mean), \(($r[0].min / .min)*100|round/100)× (min)"' "$1"
    echo
}

cgroup_mode() {
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then echo "v2 (unified)"
    elif mountpoint -q /sys/fs/cgroup/unified 2>/dev/null; then echo "hybrid (v1 controllers + cgroup2 at /sys/fs/cgroup/unified)"
    else echo "v1"; fi
}

# Does crun work on this host's own view?
CRUN_HOST=""
if [[ -n "$CRUN" ]]; then
    probe="$WORK/state/crun-probe"; mkdir -p "$probe"; echo "$CRUN" >"$probe.rt"
    if "$CRUN" --root "$probe" run --bundle "$BUNDLE" probe >/dev/null 2>"$WORK/crun-probe.err"; then
        CRUN_HOST=1
    fi
fi

HYBRID=""
mountpoint -q /sys/fs/cgroup/unified 2>/dev/null && HYBRID=1
if [[ -z "${VIEWS:-}" ]]; then
    VIEWS=host
    [[ -z "$CRUN_HOST" && -n "$CRUN" && -n "$HYBRID" ]] && VIEWS="host v1view"
fi
echo "berth runtime: $BERTH ($BERTH_LABEL); views: $VIEWS" >&2
HOSTVIEW=""
V1VIEW=""
for view in $VIEWS; do
    case "$view" in
    host)
        HOSTVIEW=1
        host_set=(berth "$BERTH" runc "$RUNC")
        [[ -n "$CRUN_HOST" ]] && host_set+=(crun "$CRUN")
        bench host -- "${host_set[@]}" || die "a runtime failed on the host's cgroup view (see above)"
        ;;
    v1view)
        [[ -n "$HYBRID" ]] || die "VIEWS=v1view needs a hybrid host (/sys/fs/cgroup/unified mounted)"
        V1VIEW=1
        v1_set=(berth "$BERTH" runc "$RUNC")
        [[ -n "$CRUN" ]] && v1_set+=(crun "$CRUN")
        bench v1view unshare --mount --propagation private "$BASH" "$SELF" __v1view -- "${v1_set[@]}" \
            || die "a runtime failed on the pure cgroup v1 view (see above)"
        ;;
    *) die "unknown view '$view' in VIEWS (host, v1view)" ;;
    esac
done

# ----- report ---------------------------------------------------------------------------------
version() { "$@" --version 2>/dev/null | head -n1 || echo "unknown"; }
echo
echo "## OCI runtime: busybox \`/bin/true\` bundle — $(date -u +%Y-%m-%d)"
echo
echo "Host: Linux $(uname -r), $(nproc) CPUs, cgroups $(cgroup_mode)."
echo "Runtimes: $BERTH_LABEL = \`$bin\` ($(version "$BERTH")); runc: $(version "$RUNC");"\
     "crun: $( [[ -n "$CRUN" ]] && version "$CRUN" || echo "not installed")."
echo "$(hyperfine --version), $RUNS runs after $WARMUP warm-ups each; bundle: \`runc spec\` with"\
     "args \`/bin/true\`, terminal off, cgroupsPath \`/$CGROUP\`; fresh container id per iteration."
echo
if [[ -n "$HOSTVIEW" ]]; then
    echo "### \`run\` (create, start, wait, delete) — host's own cgroup view"
    echo
    table "$WORK/host-run.json"
    echo "### \`create\` + \`start\` + \`delete --force\` — host's own cgroup view"
    echo
    table "$WORK/host-cycle.json"
    if [[ -z "$CRUN_HOST" ]]; then
        if [[ -z "$CRUN" ]]; then
            echo "crun is not installed."
        else
            echo "crun is absent from the tables above: on this host it fails with \`$(tail -n1 "$WORK/crun-probe.err")\`."
        fi
        echo
    fi
fi
if [[ -n "$V1VIEW" ]]; then
    echo "### \`run\` — pure cgroup v1 view (private mount namespace, /sys/fs/cgroup/unified unmounted, so crun runs)"
    echo
    table "$WORK/v1view-run.json"
    echo "### \`create\` + \`start\` + \`delete --force\` — pure cgroup v1 view"
    echo
    table "$WORK/v1view-cycle.json"
fi
