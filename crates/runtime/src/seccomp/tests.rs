//! Tests of the seccomp module: compiled programs run in the reference interpreter
//! (`bpf::interp`), Docker's default profile, and filters installed in forked children.

use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompFilterFlag};
use serde_json::json;

use super::arch::{
    Abi, Host, AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64,
    X32_SYSCALL_BIT,
};
use super::bpf::interp::{self, Data};
use super::bpf::{self, BPF_JA, BPF_JMP};
use super::{compile, compiler, install, profile, Error, Program};

const ALLOW: u32 = bpf::SECCOMP_RET_ALLOW;
const KILL_THREAD: u32 = bpf::SECCOMP_RET_KILL_THREAD;
const KILL_PROCESS: u32 = bpf::SECCOMP_RET_KILL_PROCESS;
const fn errno(e: u32) -> u32 {
    bpf::SECCOMP_RET_ERRNO | e
}
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

use super::DOCKER_DEFAULT_PROFILE as DOCKER_PROFILE;

/// Docker's default capability set.
fn docker_caps() -> Vec<String> {
    [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn spec(v: serde_json::Value) -> LinuxSeccomp {
    serde_json::from_value(v).unwrap()
}

fn build(v: serde_json::Value) -> Vec<libc::sock_filter> {
    let p = compiler::compile_for(&spec(v), Host::X86_64).unwrap();
    interp::check(&p);
    p
}

fn nr(abi: Abi, name: &str) -> u32 {
    abi.resolve(name)
        .unwrap_or_else(|| panic!("{name} unknown on {abi:?}"))
}

fn run(p: &[libc::sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    interp::run(p, &Data { nr, arch, args })
}

/// Runs syscall `name` of `abi` with `args` through `p`.
fn call(p: &[libc::sock_filter], abi: Abi, name: &str, args: &[u64]) -> u32 {
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    run(p, abi.audit_arch(), nr(abi, name), a)
}

fn x64(p: &[libc::sock_filter], name: &str, args: &[u64]) -> u32 {
    call(p, Abi::X86_64, name, args)
}

// ---------------------------------------------------------------------------------------------
// Syscall tables

#[test]
fn tables_are_sorted_and_unique() {
    for abi in [Abi::X86_64, Abi::X86, Abi::X32, Abi::Aarch64, Abi::Arm] {
        let names: Vec<&str> = [
            super::syscall_tables::X86_64,
            super::syscall_tables::X86,
            super::syscall_tables::X32,
            super::syscall_tables::AARCH64,
            super::syscall_tables::ARM,
        ][abi as usize]
            .iter()
            .map(|(n, _)| *n)
            .collect();
        assert!(
            names.len() > 300,
            "{abi:?} has only {} syscalls",
            names.len()
        );
        for w in names.windows(2) {
            assert!(w[0] < w[1], "{abi:?}: {} before {}", w[0], w[1]);
        }
        for n in &names {
            assert!(abi.resolve(n).is_some());
        }
    }
}

#[test]
fn tables_have_known_numbers() {
    assert_eq!(nr(Abi::X86_64, "read"), 0);
    assert_eq!(nr(Abi::X86_64, "getcwd"), 79);
    assert_eq!(nr(Abi::X86_64, "clone3"), 435);
    assert_eq!(nr(Abi::X86, "read"), 3);
    assert_eq!(nr(Abi::X86, "socketcall"), 102);
    assert_eq!(nr(Abi::X32, "read"), X32_SYSCALL_BIT);
    assert_eq!(nr(Abi::X32, "ioctl"), X32_SYSCALL_BIT | 514);
    assert_eq!(nr(Abi::Aarch64, "read"), 63);
    assert_eq!(nr(Abi::Arm, "read"), 3);
    assert_eq!(nr(Abi::Arm, "set_tls"), 0x0f0005);
    assert_eq!(nr(Abi::X86_64, "fchmodat2"), 452);
    assert!(Abi::X86_64.resolve("chown32").is_none());
    assert!(Abi::Aarch64.resolve("open").is_none());
    assert!(Abi::X86_64.resolve("").is_none());
}

/// The generated x86_64 table agrees with the libc crate's constants.
#[cfg(target_arch = "x86_64")]
#[test]
fn x86_64_table_matches_libc() {
    let pairs: &[(&str, libc::c_long)] = &[
        ("read", libc::SYS_read),
        ("write", libc::SYS_write),
        ("openat", libc::SYS_openat),
        ("mount", libc::SYS_mount),
        ("unshare", libc::SYS_unshare),
        ("keyctl", libc::SYS_keyctl),
        ("kexec_load", libc::SYS_kexec_load),
        ("personality", libc::SYS_personality),
        ("clone", libc::SYS_clone),
        ("clone3", libc::SYS_clone3),
        ("pidfd_open", libc::SYS_pidfd_open),
        ("close_range", libc::SYS_close_range),
        ("seccomp", libc::SYS_seccomp),
        ("getcwd", libc::SYS_getcwd),
        ("mkdir", libc::SYS_mkdir),
        ("exit_group", libc::SYS_exit_group),
        ("fchmodat2", libc::SYS_fchmodat2),
        ("mseal", libc::SYS_mseal),
    ];
    for (name, n) in pairs {
        assert_eq!(libc::c_long::from(nr(Abi::X86_64, name)), *n, "{name}");
    }
}

#[test]
fn known_syscall_and_features() {
    if Host::current() == Some(Host::X86_64) {
        assert!(super::known_syscall("read"));
        assert!(super::known_syscall("chown32")); // i386
        assert!(!super::known_syscall("cacheflush")); // arm only
        assert_eq!(
            super::supported_architectures(),
            vec!["SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"]
        );
        assert_eq!(super::docker_arch(), Some("amd64"));
    }
    assert!(!super::known_syscall("no_such_syscall"));
    assert!(!super::supported_actions().contains(&"SCMP_ACT_NOTIFY"));
    assert!(super::supported_actions().contains(&"SCMP_ACT_KILL_PROCESS"));
    assert_eq!(super::supported_operators().len(), 7);
    assert_eq!(super::supported_flags().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Architecture handling

#[test]
fn other_abis_are_killed_when_not_listed() {
    let p = build(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}));
    assert_eq!(x64(&p, "getcwd", &[]), errno(EPERM));
    assert_eq!(x64(&p, "read", &[]), ALLOW);
    // No architectures listed: only the native ABI is covered.
    assert_eq!(call(&p, Abi::X86, "read", &[]), KILL_THREAD);
    assert_eq!(run(&p, AUDIT_ARCH_AARCH64, 63, [0; 6]), KILL_THREAD);
    assert_eq!(run(&p, 0x1234_5678, 0, [0; 6]), KILL_THREAD);
    // x32 syscalls under the x86_64 token are a bad arch, except -1.
    assert_eq!(call(&p, Abi::X32, "read", &[]), KILL_THREAD);
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 79, [0; 6]),
        KILL_THREAD
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, u32::MAX - 1, [0; 6]),
        KILL_THREAD
    );
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, u32::MAX, [0; 6]), ALLOW);
    // Listing an architecture this host cannot run changes nothing.
    let q = build(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_S390X"],
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}));
    let key = |p: &[libc::sock_filter]| -> Vec<String> { p.iter().map(bpf::describe).collect() };
    assert_eq!(key(&p), key(&q));
}

#[test]
fn listed_compat_abis_use_their_own_numbers() {
    let p = build(json!({"defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [
        {"names": ["read", "chown32", "getcwd"], "action": "SCMP_ACT_ALLOW"},
    ]}));
    for abi in [Abi::X86_64, Abi::X86, Abi::X32] {
        assert_eq!(call(&p, abi, "read", &[]), ALLOW, "{abi:?}");
        assert_eq!(call(&p, abi, "getcwd", &[]), ALLOW, "{abi:?}");
        assert_eq!(call(&p, abi, "write", &[]), errno(EPERM), "{abi:?}");
    }
    assert_eq!(call(&p, Abi::X86, "chown32", &[]), ALLOW);
    // i386's read is 3, which on x86_64 is close: the arch check keeps them apart.
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 3, [0; 6]), errno(EPERM));
    assert_eq!(run(&p, AUDIT_ARCH_I386, 0, [0; 6]), errno(EPERM)); // restart_syscall on i386
    assert_eq!(run(&p, AUDIT_ARCH_ARM, 3, [0; 6]), KILL_THREAD);
}

#[test]
fn i386_socketcall_and_ipc_are_filtered_too() {
    // Like libseccomp: a rule on a socket or SysV IPC call also covers its socketcall(2) /
    // ipc(2) form on i386, where argument 0 is the sub-call number.
    let p = build(json!({"defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 7, "op": "SCMP_CMP_NE"}]},
        {"names": ["shmget", "send"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
    ]}));
    assert_eq!(call(&p, Abi::X86, "socket", &[40, 1]), errno(EPERM));
    assert_eq!(call(&p, Abi::X86, "socket", &[40, 7]), ALLOW);
    assert_eq!(call(&p, Abi::X86, "socket", &[2, 1]), ALLOW);
    // socketcall(SYS_SOCKET, args): argument 0 is the sub-call, the others are compared as
    // they are (libseccomp's behaviour).
    assert_eq!(call(&p, Abi::X86, "socketcall", &[1, 1]), errno(EPERM));
    assert_eq!(call(&p, Abi::X86, "socketcall", &[1, 7]), ALLOW);
    assert_eq!(call(&p, Abi::X86, "socketcall", &[2, 1]), ALLOW);
    // send has no direct i386 syscall, only socketcall(SYS_SEND).
    assert_eq!(call(&p, Abi::X86, "socketcall", &[9]), errno(13));
    assert_eq!(call(&p, Abi::X86, "ipc", &[23]), errno(13));
    assert_eq!(call(&p, Abi::X86, "ipc", &[21]), ALLOW);
    assert_eq!(call(&p, Abi::X86, "shmget", &[]), errno(13));
    // x86_64 has no multiplexers.
    assert_eq!(x64(&p, "socket", &[40, 1]), errno(EPERM));
    assert_eq!(x64(&p, "shmget", &[]), errno(13));
}

#[test]
fn aarch64_host_tables() {
    let s = spec(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["read", "cacheflush"], "action": "SCMP_ACT_ALLOW"}]}));
    let p = compiler::compile_for(&s, Host::Aarch64).unwrap();
    interp::check(&p);
    assert_eq!(call(&p, Abi::Aarch64, "read", &[]), ALLOW);
    assert_eq!(call(&p, Abi::Aarch64, "getcwd", &[]), errno(EPERM));
    // Above the largest syscall named (read = 63): the -ENOSYS stub.
    assert_eq!(call(&p, Abi::Aarch64, "write", &[]), errno(ENOSYS));
    assert_eq!(call(&p, Abi::Arm, "read", &[]), ALLOW);
    assert_eq!(call(&p, Abi::Arm, "cacheflush", &[]), ALLOW);
    assert_eq!(call(&p, Abi::X86_64, "read", &[]), KILL_THREAD);
}

// ---------------------------------------------------------------------------------------------
// Actions and errno values

#[test]
fn actions_map_to_seccomp_return_values() {
    let cases = [
        ("SCMP_ACT_KILL", KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", KILL_PROCESS),
        ("SCMP_ACT_TRAP", bpf::SECCOMP_RET_TRAP),
        ("SCMP_ACT_ERRNO", errno(EPERM)),
        ("SCMP_ACT_TRACE", bpf::SECCOMP_RET_TRACE | EPERM),
        ("SCMP_ACT_LOG", bpf::SECCOMP_RET_LOG),
    ];
    for (action, want) in cases {
        let p = build(json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["getcwd"], "action": action}]}));
        assert_eq!(x64(&p, "getcwd", &[]), want, "{action}");
        assert_eq!(x64(&p, "read", &[]), ALLOW, "{action}");
    }
    for (action, want) in cases {
        let p = build(json!({"defaultAction": action,
            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}));
        assert_eq!(x64(&p, "getcwd", &[]), want, "default {action}");
        assert_eq!(x64(&p, "read", &[]), ALLOW, "default {action}");
    }
}

#[test]
fn errno_values() {
    let p = build(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 95,
        "syscalls": [
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["rmdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        ]}),
    );
    assert_eq!(x64(&p, "getcwd", &[]), errno(13));
    // A rule without errnoRet gets EPERM (runc, OCI spec), not defaultErrnoRet.
    assert_eq!(x64(&p, "mkdir", &[]), errno(EPERM));
    assert_eq!(x64(&p, "rmdir", &[]), bpf::SECCOMP_RET_TRACE | 7);
    assert_eq!(x64(&p, "write", &[]), errno(95));
    assert_eq!(x64(&p, "read", &[]), ALLOW);
}

#[test]
fn invalid_specs_are_rejected_with_context() {
    let err = |v| compiler::compile_for(&spec(v), Host::X86_64).unwrap_err();
    let e = err(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(matches!(e, Error::UnsupportedAction { .. }), "{e}");
    assert!(e.to_string().contains("SCMP_ACT_NOTIFY") && e.to_string().contains("mkdir"));
    let e = err(json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
    assert!(matches!(e, Error::UnsupportedAction { .. }), "{e}");
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
    );
    assert!(matches!(e, Error::ArgIndex { index: 6, .. }), "{e}");
    assert!(e.to_string().contains("read"));
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}),
    );
    assert!(
        matches!(e, Error::ErrnoOutOfRange { value: 70000, .. }),
        "{e}"
    );
    let e = err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read", ""],
        "action": "SCMP_ACT_ERRNO"}]}),
    );
    assert!(matches!(e, Error::EmptySyscallName { .. }), "{e}");
}

#[test]
fn unknown_syscalls_are_skipped() {
    let p = build(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["no_such_syscall", "chown32", "read"], "action": "SCMP_ACT_ALLOW"}]}));
    assert_eq!(x64(&p, "read", &[]), ALLOW);
    assert_eq!(x64(&p, "write", &[]), errno(EPERM));
}

#[test]
fn rules_with_the_default_action_are_dropped() {
    // runc skips the first rule (same action as the default), so personality(1) is allowed by
    // the second.
    let p = build(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW"}]}));
    assert_eq!(x64(&p, "personality", &[1]), ALLOW);
    // Different errno: not the default action, kept.
    let p = build(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW"}]}));
    assert_eq!(x64(&p, "personality", &[1]), errno(22));
    assert_eq!(x64(&p, "personality", &[2]), ALLOW);
}

// ---------------------------------------------------------------------------------------------
// Argument conditions

/// What an operator means, on the values the kernel passes.
fn reference(op: &str, arg: u64, value: u64, value_two: u64) -> bool {
    match op {
        "SCMP_CMP_EQ" => arg == value,
        "SCMP_CMP_NE" => arg != value,
        "SCMP_CMP_LT" => arg < value,
        "SCMP_CMP_LE" => arg <= value,
        "SCMP_CMP_GT" => arg > value,
        "SCMP_CMP_GE" => arg >= value,
        "SCMP_CMP_MASKED_EQ" => arg & value == value_two,
        _ => unreachable!(),
    }
}

const OPS: [&str; 7] = [
    "SCMP_CMP_EQ",
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_GT",
    "SCMP_CMP_GE",
    "SCMP_CMP_MASKED_EQ",
];

fn interesting(v: u64) -> Vec<u64> {
    let mut out = vec![0, 1, u64::MAX, u64::MAX - 1, 0xffff_ffff, 0x1_0000_0000];
    for d in [0u64, 1, 2, 0x1_0000_0000, 0xffff_ffff] {
        out.push(v.wrapping_add(d));
        out.push(v.wrapping_sub(d));
    }
    out.push(v ^ 0x8000_0000_0000_0000);
    out.push(v & 0xffff_ffff);
    out.push(v & 0xffff_ffff_0000_0000);
    out
}

#[test]
fn comparisons_are_64_bit_on_64_bit_abis() {
    let values = [
        0u64,
        1,
        5,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0005,
        0x7fff_ffff_ffff_ffff,
        0x8000_0000_0000_0000,
        0xdead_beef_0000_0001,
        u64::MAX,
    ];
    for op in OPS {
        for (index, value) in values.iter().enumerate() {
            let index = index % 6;
            let value_two = value & 0xff00_ff00_ff00_ff00;
            let p = build(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33,
                 "args": [{"index": index, "value": value, "valueTwo": value_two, "op": op}]}]}));
            for arg in interesting(*value) {
                let mut args = [0x5555_5555_5555_5555u64; 6];
                args[index] = arg;
                let got = run(&p, AUDIT_ARCH_X86_64, nr(Abi::X86_64, "getcwd"), args);
                let want = if reference(op, arg, *value, value_two) {
                    errno(33)
                } else {
                    ALLOW
                };
                assert_eq!(got, want, "{op} args[{index}]={arg:#x} value={value:#x}");
            }
        }
    }
}

#[test]
fn comparisons_are_32_bit_on_32_bit_abis() {
    // The kernel zero-extends 32-bit arguments; libseccomp compares the low words only.
    for op in OPS {
        for value in [0u64, 7, 0xffff_ffff, 0x1_0000_0007] {
            let value_two = value & 0xf0f0_f0f0;
            let p = build(json!({"defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33,
                 "args": [{"index": 1, "value": value, "valueTwo": value_two, "op": op}]}]}));
            for arg in [0u64, 1, 6, 7, 8, 0xffff_fffe, 0xffff_ffff] {
                let want = if reference(op, arg, value & 0xffff_ffff, value_two & 0xffff_ffff) {
                    errno(33)
                } else {
                    ALLOW
                };
                for abi in [Abi::X86, Abi::X32] {
                    let got = call(&p, abi, "getcwd", &[0, arg]);
                    assert_eq!(got, want, "{abi:?} {op} arg={arg:#x} value={value:#x}");
                }
            }
        }
    }
}

#[test]
fn conditions_in_a_rule_are_anded() {
    let p = build(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
            {"index": 2, "value": 0x1_0000_0000u64, "op": "SCMP_CMP_GE"}]}]}));
    assert_eq!(x64(&p, "getcwd", &[1, 0, 0x1_0000_0000]), errno(EPERM));
    assert_eq!(x64(&p, "getcwd", &[1, 0, 0xffff_ffff]), ALLOW);
    assert_eq!(x64(&p, "getcwd", &[2, 0, 0x1_0000_0000]), ALLOW);
}

#[test]
fn conditions_on_the_same_argument_are_ored_like_runc() {
    let p = build(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "args": [
            {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
            {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
            {"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]}]}));
    assert_eq!(x64(&p, "getcwd", &[1, 0]), errno(EPERM));
    assert_eq!(x64(&p, "getcwd", &[2, 0]), errno(EPERM));
    assert_eq!(x64(&p, "getcwd", &[3, 9]), errno(EPERM));
    assert_eq!(x64(&p, "getcwd", &[3, 0]), ALLOW);
}

#[test]
fn masked_eq_uses_value_as_mask() {
    // Docker's clone rule: allowed when none of the namespace flags is set.
    let p = build(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": 2114060288u64, "op": "SCMP_CMP_MASKED_EQ"}]},
        {"names": ["getcwd"], "action": "SCMP_ACT_ALLOW", "args": [
            {"index": 0, "value": 0xff00_0000_0000_00ffu64, "valueTwo": 0x1200_0000_0000_0034u64,
             "op": "SCMP_CMP_MASKED_EQ"}]}]}));
    assert_eq!(x64(&p, "clone", &[libc::SIGCHLD as u64]), ALLOW);
    assert_eq!(x64(&p, "clone", &[0x003d_0f00]), ALLOW); // thread flags
    assert_eq!(
        x64(&p, "clone", &[libc::CLONE_NEWUSER as u64]),
        errno(EPERM)
    );
    assert_eq!(
        x64(&p, "clone", &[libc::CLONE_NEWNS as u64 | 17]),
        errno(EPERM)
    );
    assert_eq!(x64(&p, "getcwd", &[0x12ab_cdef_0123_4534]), ALLOW);
    assert_eq!(x64(&p, "getcwd", &[0x13ab_cdef_0123_4534]), errno(EPERM));
    assert_eq!(x64(&p, "getcwd", &[0x12ab_cdef_0123_4535]), errno(EPERM));
}

#[test]
fn first_matching_rule_wins_in_order() {
    let p = build(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 10,
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11,
         "args": [{"index": 0, "value": 3, "op": "SCMP_CMP_LE"}]},
        {"names": ["personality", "read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_KILL"}]}));
    assert_eq!(x64(&p, "personality", &[1]), errno(10));
    assert_eq!(x64(&p, "personality", &[0]), errno(11));
    assert_eq!(x64(&p, "personality", &[3]), errno(11));
    assert_eq!(x64(&p, "personality", &[4]), ALLOW);
    assert_eq!(x64(&p, "read", &[4]), ALLOW);
}

#[test]
fn long_jumps_are_relaxed() {
    // One rule with 80 conditions (~400 instructions) on one syscall, followed by rules for
    // other syscalls: the failing-condition jumps reach past 255 instructions.
    let mut args = Vec::new();
    for i in 0..80u64 {
        args.push(json!({"index": i % 6, "value": i, "op": "SCMP_CMP_NE"}));
    }
    // Same index repeated => runc splits into 80 single-condition rules, ORed.
    let mut calls = vec![json!({"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "args": args})];
    // And one AND-chain of 6 conditions per syscall for many syscalls.
    let names: Vec<&str> = super::syscall_tables::X86_64
        .iter()
        .map(|(n, _)| *n)
        .collect();
    for (k, name) in names.iter().enumerate().take(80) {
        if *name == "getcwd" {
            continue;
        }
        let conds: Vec<_> = (0..6)
            .map(|i| json!({"index": i, "value": (k as u64) << 33 | i, "op": "SCMP_CMP_EQ"}))
            .collect();
        calls.push(
            json!({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
            "args": conds}),
        );
    }
    let p = build(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": calls}));
    assert!(p.len() > 1000, "only {} instructions", p.len());
    assert!(
        p.iter().any(|i| i.code == BPF_JMP | BPF_JA),
        "expected long jumps in a {}-instruction program",
        p.len()
    );
    // getcwd: NE conditions ORed; any arg differing from its value matches.
    assert_eq!(x64(&p, "getcwd", &[0, 1, 2, 3, 4, 5]), errno(EPERM));
    for (k, name) in names.iter().enumerate().take(80) {
        if *name == "getcwd" {
            continue;
        }
        let good: Vec<u64> = (0..6).map(|i| (k as u64) << 33 | i).collect();
        assert_eq!(x64(&p, name, &good), errno(5), "{name}");
        let mut bad = good.clone();
        bad[5] ^= 1 << 40;
        assert_eq!(x64(&p, name, &bad), ALLOW, "{name}");
    }
}

#[test]
fn huge_programs_are_refused() {
    let mut calls = Vec::new();
    for (name, _) in super::syscall_tables::X86_64.iter().take(300) {
        let conds: Vec<_> = (0..3)
            .map(|i| json!({"index": i, "value": 1, "op": "SCMP_CMP_GT"}))
            .collect();
        calls.push(json!({"names": [name], "action": "SCMP_ACT_ERRNO", "args": conds}));
    }
    let e = compiler::compile_for(
        &spec(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": calls})),
        Host::X86_64,
    )
    .unwrap_err();
    assert!(matches!(e, Error::ProgramTooLarge { .. }), "{e}");
}

// ---------------------------------------------------------------------------------------------
// ENOSYS stub (runc)

#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    let with_arches = json!({"defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["read", "write", "pidfd_open"], "action": "SCMP_ACT_ALLOW"}]});
    let p = build(with_arches.clone());
    let max = nr(Abi::X86_64, "pidfd_open");
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, max, [0; 6]), ALLOW);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, max - 1, [0; 6]), errno(EPERM));
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, max + 1, [0; 6]), errno(ENOSYS));
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 1000, [0; 6]), errno(ENOSYS));
    let xmax = nr(Abi::X32, "pidfd_open");
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, xmax, [0; 6]), ALLOW);
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, xmax + 1, [0; 6]), errno(ENOSYS));
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, nr(Abi::X32, "getcwd"), [0; 6]),
        errno(EPERM)
    );
    let imax = nr(Abi::X86, "pidfd_open");
    assert_eq!(run(&p, AUDIT_ARCH_I386, imax + 1, [0; 6]), errno(ENOSYS));
    assert_eq!(run(&p, AUDIT_ARCH_I386, imax - 1, [0; 6]), errno(EPERM));

    // No architectures listed: runc adds no stub.
    let p = build(json!({"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}));
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 1000, [0; 6]), errno(EPERM));
    // Permissive default: no stub.
    let p = build(
        json!({"defaultAction": "SCMP_ACT_LOG", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO"}]}),
    );
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, 1000, [0; 6]),
        bpf::SECCOMP_RET_LOG
    );
    // x86_64 only: x32 numbers are a bad arch even above the stub's limit.
    let p = build(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}),
    );
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 1, [0; 6]), errno(ENOSYS));
    assert_eq!(
        run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT, [0; 6]),
        KILL_THREAD
    );
}

// ---------------------------------------------------------------------------------------------
// Docker's default profile

fn docker_program(caps: &[String]) -> (LinuxSeccomp, Vec<libc::sock_filter>) {
    let s = profile::convert(DOCKER_PROFILE, caps, "amd64", (6, 1)).unwrap();
    let p = compiler::compile_for(&s, Host::X86_64).unwrap();
    interp::check(&p);
    (s, p)
}

#[test]
fn docker_profile_converts() {
    let (s, _) = docker_program(&docker_caps());
    assert_eq!(
        serde_json::to_value(s.architectures()).unwrap(),
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    );
    assert_eq!(s.default_errno_ret(), Some(1));
    let calls = s.syscalls().as_ref().unwrap();
    let has = |n: &str| calls.iter().any(|c| c.names().iter().any(|x| x == n));
    assert!(has("read") && has("arch_prctl") && has("modify_ldt") && has("process_vm_readv"));
    assert!(has("clone") && has("clone3") && has("chroot"));
    assert!(!has("mount") && !has("riscv_flush_icache") && !has("cacheflush"));
    // The s390 clone variant is excluded on amd64; the other one is kept.
    let clones: Vec<_> = calls
        .iter()
        .filter(|c| c.names().iter().any(|n| n == "clone"))
        .collect();
    assert_eq!(clones.len(), 1);
    assert_eq!(clones[0].args().as_ref().unwrap()[0].index(), 0);

    // minKernel: process_vm_readv needs 4.8.
    let old = profile::convert(DOCKER_PROFILE, &docker_caps(), "amd64", (4, 7)).unwrap();
    let calls = old.syscalls().as_ref().unwrap();
    assert!(!calls
        .iter()
        .any(|c| c.names().iter().any(|n| n == "process_vm_readv")));

    // With CAP_SYS_ADMIN: mount allowed, clone unrestricted, no clone3 ENOSYS rule.
    let mut caps = docker_caps();
    caps.push("sys_admin".to_string());
    let admin = profile::convert(DOCKER_PROFILE, &caps, "amd64", (6, 1)).unwrap();
    let calls = admin.syscalls().as_ref().unwrap();
    assert!(calls.iter().any(|c| c.names().iter().any(|n| n == "mount")));
    assert!(!calls.iter().any(|c| c.names() == &["clone".to_string()]));

    // arm64: its archMap entry.
    let arm = profile::convert(DOCKER_PROFILE, &docker_caps(), "arm64", (6, 1)).unwrap();
    assert_eq!(
        serde_json::to_value(arm.architectures()).unwrap(),
        json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
    );
    let p = compiler::compile_for(&arm, Host::Aarch64).unwrap();
    interp::check(&p);
    assert_eq!(call(&p, Abi::Aarch64, "read", &[]), ALLOW);
    assert_eq!(call(&p, Abi::Arm, "cacheflush", &[]), ALLOW);
    assert_eq!(call(&p, Abi::Aarch64, "mount", &[]), errno(EPERM));
}

#[test]
fn docker_profile_behaves_like_docker() {
    let (_, p) = docker_program(&docker_caps());
    assert!(p.len() < 4096, "{} instructions", p.len());
    eprintln!("Docker default profile: {} instructions", p.len());
    for name in [
        "read",
        "write",
        "openat",
        "getpid",
        "exit_group",
        "futex",
        "arch_prctl",
    ] {
        assert_eq!(x64(&p, name, &[]), ALLOW, "{name}");
    }
    for name in [
        "unshare",
        "mount",
        "keyctl",
        "kexec_load",
        "umount2",
        "setns",
        "bpf",
    ] {
        assert_eq!(x64(&p, name, &[]), errno(EPERM), "{name}");
    }
    assert_eq!(x64(&p, "clone", &[libc::SIGCHLD as u64]), ALLOW);
    assert_eq!(x64(&p, "clone", &[0x003d_0f00]), ALLOW);
    assert_eq!(
        x64(&p, "clone", &[libc::CLONE_NEWUSER as u64 | 17]),
        errno(EPERM)
    );
    assert_eq!(x64(&p, "clone3", &[]), errno(ENOSYS));
    assert_eq!(x64(&p, "personality", &[0]), ALLOW);
    assert_eq!(x64(&p, "personality", &[8]), ALLOW);
    assert_eq!(x64(&p, "personality", &[0xffff_ffff]), ALLOW);
    assert_eq!(x64(&p, "personality", &[4]), errno(EPERM));
    assert_eq!(x64(&p, "socket", &[libc::AF_INET as u64]), ALLOW);
    assert_eq!(x64(&p, "socket", &[40]), errno(EPERM)); // AF_VSOCK
    assert_eq!(x64(&p, "socket", &[39]), ALLOW);
    assert_eq!(x64(&p, "socket", &[41]), ALLOW);
    // Newer than anything the profile names: ENOSYS.
    assert_eq!(run(&p, AUDIT_ARCH_X86_64, 1000, [0; 6]), errno(ENOSYS));
    // Compat ABIs.
    assert_eq!(call(&p, Abi::X86, "read", &[]), ALLOW);
    assert_eq!(call(&p, Abi::X86, "socketcall", &[]), ALLOW);
    assert_eq!(call(&p, Abi::X86, "mount", &[]), errno(EPERM));
    assert_eq!(call(&p, Abi::X32, "read", &[]), ALLOW);
    assert_eq!(call(&p, Abi::X32, "unshare", &[]), errno(EPERM));
    assert_eq!(run(&p, AUDIT_ARCH_AARCH64, 63, [0; 6]), KILL_THREAD);

    let mut caps = docker_caps();
    caps.push("CAP_SYS_ADMIN".to_string());
    let (_, p) = docker_program(&caps);
    assert_eq!(x64(&p, "mount", &[]), ALLOW);
    assert_eq!(x64(&p, "unshare", &[]), ALLOW);
    assert_eq!(x64(&p, "clone", &[libc::CLONE_NEWUSER as u64]), ALLOW);
    assert_eq!(x64(&p, "clone3", &[]), ALLOW);
}

#[test]
fn docker_profile_format_errors() {
    let conv = |j: &str| profile::convert(j, &[], "amd64", (6, 1));
    assert!(matches!(conv("{}"), Err(Error::ProfileDisablesSeccomp)));
    assert!(matches!(
        conv("{\"syscalls\": [{\"names\": [\"read\"], \"action\": \"SCMP_ACT_ALLOW\"}]}"),
        Err(Error::InvalidProfile { .. })
    ));
    let e = conv(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
        "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
    )
    .unwrap_err();
    assert!(matches!(e, Error::InvalidProfile { .. }), "{e}");
    let e = conv(
        r#"{"defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("syscalls[0]"), "{e}");
    let e = conv(r#"{"defaultAction": "SCMP_ACT_ERRNO",
        "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_NOPE"]}]}"#)
    .unwrap_err();
    assert!(matches!(e, Error::UnknownArch { .. }), "{e}");
    let e = conv(r#"{"defaultAction": "SCMP_ACT_BOGUS"}"#).unwrap_err();
    assert!(
        matches!(&e, Error::ProfileJson { path, .. } if path.contains("defaultAction")),
        "{e}"
    );
    let e = conv(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"],
        "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "four"}}]}"#,
    )
    .unwrap_err();
    assert!(e.to_string().contains("minKernel"), "{e}");
    // "name", loongarch entries in the archMap and unknown fields are fine.
    let s = conv(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "comment": "x",
        "archMap": [{"architecture": "SCMP_ARCH_LOONGARCH64", "subArchitectures": null},
                    {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
        "syscalls": [{"name": "read", "action": "SCMP_ACT_ALLOW", "comment": ""}]}"#,
    )
    .unwrap();
    assert_eq!(
        s.syscalls().as_ref().unwrap()[0].names(),
        &["read".to_string()]
    );
    assert_eq!(s.architectures().as_ref().unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Real kernel: install in a forked child

/// Forks; the child sets no_new_privs, installs `p` with `flags`, runs `f` and exits with its
/// result. Returns the child's exit code, or 1000 + signal if it was killed.
fn in_child(p: &Program, flags: &[LinuxSeccompFilterFlag], f: fn() -> i32) -> i32 {
    // SAFETY: the child only makes raw syscalls (prctl, seccomp, the tested one, _exit) with
    // data prepared before fork, and never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: plain prctl/_exit calls in the forked child.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                libc::_exit(201);
            }
            if install(p, flags).is_err() {
                libc::_exit(202);
            }
            libc::_exit(f());
        }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        1000 + libc::WTERMSIG(status)
    } else {
        panic!("unexpected wait status {status:#x}")
    }
}

/// The errno of the last failed call, or 0 if `ret` says success.
fn result(ret: libc::c_long) -> i32 {
    if ret >= 0 {
        0
    } else {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(255)
    }
}

fn getcwd() -> i32 {
    let mut buf = [0u8; 256];
    // SAFETY: getcwd writes at most buf.len() bytes into buf.
    result(unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) })
}

fn getpid() -> i32 {
    // SAFETY: getpid has no arguments.
    result(unsafe { libc::syscall(libc::SYS_getpid) })
}

fn unshare_mount_ns() -> i32 {
    // SAFETY: unshare only affects this (child) process.
    result(unsafe { libc::syscall(libc::SYS_unshare, libc::CLONE_NEWNS) })
}

fn clone3_probe() -> i32 {
    // SAFETY: a clone3 with a NULL args pointer and size 0 fails (EINVAL/EFAULT) or is
    // filtered; it never creates a process.
    result(unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) })
}

fn root_only(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping {test}: needs root");
        return false;
    }
    true
}

fn compile_json(v: serde_json::Value) -> Program {
    compile(&spec(v)).unwrap()
}

#[cfg(target_arch = "x86_64")]
#[test]
fn kernel_errno_rule() {
    if !root_only("kernel_errno_rule") {
        return;
    }
    let p = compile_json(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}]}));
    assert_eq!(in_child(&p, &[], getcwd), libc::EPERM);
    assert_eq!(in_child(&p, &[], getpid), 0);

    let p = compile_json(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]}));
    assert_eq!(in_child(&p, &[], getcwd), 95);
    // Without the filter the call works.
    assert_eq!(getcwd(), 0);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn kernel_mkdir_errno_ret() {
    if !root_only("kernel_mkdir_errno_ret") {
        return;
    }
    static PATH: std::sync::OnceLock<std::ffi::CString> = std::sync::OnceLock::new();
    let dir = std::env::temp_dir().join(format!("berth-seccomp-mkdir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("x");
    PATH.set(std::ffi::CString::new(target.to_str().unwrap()).unwrap())
        .unwrap();
    fn mkdir() -> i32 {
        let path = PATH.get().map(|p| p.as_ptr()).unwrap_or(std::ptr::null());
        // SAFETY: path is a NUL-terminated string prepared before fork.
        result(unsafe { libc::syscall(libc::SYS_mkdir, path, 0o755) })
    }
    let p = compile_json(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}));
    let got = in_child(&p, &[], mkdir);
    let existed = target.exists();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(got, libc::EACCES);
    assert!(!existed, "mkdir ran despite the filter");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn kernel_kill_process_and_flags() {
    if !root_only("kernel_kill_process_and_flags") {
        return;
    }
    let p = compile_json(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_KILL_PROCESS"}]}));
    assert_eq!(in_child(&p, &[], getcwd), 1000 + libc::SIGSYS);
    let flags = [
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
    ];
    let p = compile_json(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7}]}));
    assert_eq!(in_child(&p, &flags, getcwd), 7);
    assert_eq!(in_child(&p, &flags, getpid), 0);
}

#[cfg(target_arch = "x86_64")]
#[test]
fn kernel_docker_default_profile() {
    if !root_only("kernel_docker_default_profile") {
        return;
    }
    let s = super::from_docker_profile(DOCKER_PROFILE, &docker_caps(), "amd64").unwrap();
    let p = compile(&s).unwrap();
    assert!(p.len() < 4096);
    assert_eq!(in_child(&p, &[], unshare_mount_ns), libc::EPERM);
    assert_eq!(in_child(&p, &[], getpid), 0);
    assert_eq!(in_child(&p, &[], getcwd), 0);
    assert_eq!(in_child(&p, &[], clone3_probe), libc::ENOSYS);
    // Without the filter, root may unshare (in a child, so nothing leaks).
    // SAFETY: fork/waitpid as in in_child, the child only calls unshare and _exit.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see above.
        unsafe { libc::_exit(unshare_mount_ns()) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(libc::WEXITSTATUS(status), 0);
}

#[test]
fn install_rejects_without_privileges_is_explained() {
    // The error message names the fix; checked without touching the kernel.
    let e = Error::Install {
        errno: nix::errno::Errno::EACCES,
        len: 3,
        flags: 0,
        hint: "the thread needs no_new_privs (PR_SET_NO_NEW_PRIVS) or CAP_SYS_ADMIN",
    };
    assert!(e.to_string().contains("no_new_privs"));
    let p = compile_json(json!({"defaultAction": "SCMP_ACT_ALLOW"}));
    assert!(format!("{p:?}").contains("ret 0x7fff0000"));
    assert!(!p.is_empty());
}
