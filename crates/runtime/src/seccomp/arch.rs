//! Architectures (ABIs) the seccomp compiler can filter, their kernel `AUDIT_ARCH_*` tokens and
//! their syscall name -> number tables.
//!
//! A seccomp filter sees every syscall together with the ABI it was made through
//! (`seccomp_data.arch`). A host can run programs of its native ABI and of a few compatible
//! ones (x86_64: i386 and x32; aarch64: arm); those are the only ABIs a filter installed on that
//! host can ever see, so they are the only ones we generate code for.

use oci_spec::runtime::Arch;

use super::syscall_tables;

/// `AUDIT_ARCH_X86_64`: the token of both the x86_64 and the x32 ABI.
pub(super) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// `AUDIT_ARCH_I386`.
pub(super) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `AUDIT_ARCH_AARCH64`.
pub(super) const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
/// `AUDIT_ARCH_ARM`.
pub(super) const AUDIT_ARCH_ARM: u32 = 0x4000_0028;
/// Bit set in `seccomp_data.nr` for syscalls made through the x32 ABI.
pub(super) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// One syscall ABI we have a table for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Abi {
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
}

impl Abi {
    /// The `seccomp_data.arch` value the kernel reports for this ABI.
    pub(super) fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::X86 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
            Abi::Arm => AUDIT_ARCH_ARM,
        }
    }

    /// Whether syscall arguments are 64 bits wide. On 32-bit ABIs only the low 32 bits of
    /// `seccomp_data.args[i]` carry the argument, and (like libseccomp) we compare only those.
    pub(super) fn args_are_64bit(self) -> bool {
        matches!(self, Abi::X86_64 | Abi::Aarch64)
    }

    /// The OCI / libseccomp name (`SCMP_ARCH_*`).
    pub(super) fn scmp_name(self) -> &'static str {
        match self {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::X86 => "SCMP_ARCH_X86",
            Abi::X32 => "SCMP_ARCH_X32",
            Abi::Aarch64 => "SCMP_ARCH_AARCH64",
            Abi::Arm => "SCMP_ARCH_ARM",
        }
    }

    fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Abi::X86_64 => syscall_tables::X86_64,
            Abi::X86 => syscall_tables::X86,
            Abi::X32 => syscall_tables::X32,
            Abi::Aarch64 => syscall_tables::AARCH64,
            Abi::Arm => syscall_tables::ARM,
        }
    }

    /// The syscall number of `name` in this ABI (x32 numbers include [`X32_SYSCALL_BIT`]), or
    /// `None` when the ABI has no such syscall.
    pub(super) fn resolve(self, name: &str) -> Option<u32> {
        let table = self.table();
        table
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| table[i].1)
    }
}

/// i386 `socketcall(2)` sub-calls (linux/net.h `SYS_*`), by the syscall name they stand for.
const SOCKETCALLS: [(&str, u32); 20] = [
    ("socket", 1),
    ("bind", 2),
    ("connect", 3),
    ("listen", 4),
    ("accept", 5),
    ("getsockname", 6),
    ("getpeername", 7),
    ("socketpair", 8),
    ("send", 9),
    ("recv", 10),
    ("sendto", 11),
    ("recvfrom", 12),
    ("shutdown", 13),
    ("setsockopt", 14),
    ("getsockopt", 15),
    ("sendmsg", 16),
    ("recvmsg", 17),
    ("accept4", 18),
    ("recvmmsg", 19),
    ("sendmmsg", 20),
];

/// i386 `ipc(2)` sub-calls (linux/ipc.h), by the syscall name they stand for.
const IPC_CALLS: [(&str, u32); 12] = [
    ("semop", 1),
    ("semget", 2),
    ("semctl", 3),
    ("semtimedop", 4),
    ("msgsnd", 11),
    ("msgrcv", 12),
    ("msgget", 13),
    ("msgctl", 14),
    ("shmat", 21),
    ("shmdt", 22),
    ("shmget", 23),
    ("shmctl", 24),
];

/// i386 syscall numbers of the multiplexers.
const X86_NR_SOCKETCALL: u32 = 102;
const X86_NR_IPC: u32 = 117;

impl Abi {
    /// For a syscall that this ABI can also reach through a multiplexer (i386 socket and SysV
    /// IPC calls, via `socketcall(2)` / `ipc(2)`): the multiplexer's number and the sub-call
    /// number it takes as its first argument. libseccomp filters both entry points.
    pub(super) fn multiplexed(self, name: &str) -> Option<(u32, u32)> {
        if self != Abi::X86 {
            return None;
        }
        if let Some((_, sub)) = SOCKETCALLS.iter().find(|(n, _)| *n == name) {
            return Some((X86_NR_SOCKETCALL, *sub));
        }
        IPC_CALLS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, sub)| (X86_NR_IPC, *sub))
    }
}

/// A host architecture berth can build seccomp filters on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Host {
    X86_64,
    Aarch64,
}

impl Host {
    /// The architecture this binary runs on, if seccomp filtering is supported there.
    pub(super) fn current() -> Option<Host> {
        if cfg!(target_arch = "x86_64") {
            Some(Host::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Host::Aarch64)
        } else {
            None
        }
    }

    /// Name of the running architecture, for error messages.
    pub(super) fn current_name() -> &'static str {
        std::env::consts::ARCH
    }

    /// The host's native ABI.
    pub(super) fn native(self) -> Abi {
        match self {
            Host::X86_64 => Abi::X86_64,
            Host::Aarch64 => Abi::Aarch64,
        }
    }

    /// Every ABI a process on this host can make syscalls through, native first.
    pub(super) fn abis(self) -> &'static [Abi] {
        match self {
            Host::X86_64 => &[Abi::X86_64, Abi::X86, Abi::X32],
            Host::Aarch64 => &[Abi::Aarch64, Abi::Arm],
        }
    }

    /// Docker's name for this architecture (Go's GOARCH), as used in seccomp profiles.
    pub(super) fn docker_name(self) -> &'static str {
        match self {
            Host::X86_64 => "amd64",
            Host::Aarch64 => "arm64",
        }
    }

    /// The ABI an OCI architecture stands for on this host. `None` when that architecture can
    /// never make a syscall here (e.g. `SCMP_ARCH_AARCH64` on x86_64): libseccomp would emit a
    /// branch for its token that is never taken, so leaving it out changes nothing.
    pub(super) fn abi_for(self, arch: Arch) -> Option<Abi> {
        let abi = match arch {
            Arch::ScmpArchNative => return Some(self.native()),
            Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX86 => Abi::X86,
            Arch::ScmpArchX32 => Abi::X32,
            Arch::ScmpArchAarch64 => Abi::Aarch64,
            Arch::ScmpArchArm => Abi::Arm,
            _ => return None,
        };
        self.abis().contains(&abi).then_some(abi)
    }
}
