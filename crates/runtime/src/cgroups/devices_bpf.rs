//! The cgroup v2 device controller: an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`.
//!
//! cgroup v2 has no `devices.allow`; the kernel instead runs every BPF program attached to a
//! cgroup (and its ancestors) on each device open/mknod, and refuses with `EPERM` unless all
//! of them return 1. This file owns assembling that program from [`Rule`]s (our own
//! instruction encoder, no BPF library), loading it with `bpf(BPF_PROG_LOAD)`, attaching it with
//! `bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)` and detaching the programs
//! it replaces.
//!
//! Semantics: the last `a` (all devices) rule sets the default verdict (no such rule: deny);
//! the rules after it are checked last-to-first and the first that matches decides. An allow
//! rule matches a request when the requested access is a subset of the rule's; a deny rule
//! when they share any bit. This gives the same answers as the v1 controller for rule lists
//! that start from "deny all" (what runc and Docker produce).

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;

use super::devices::{Kind, Rule, ACC_ALL};
use super::{Error, Result};

// bpf(2) commands, program and attach types, flags (include/uapi/linux/bpf.h).
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_PROG_ATTACH: libc::c_int = 8;
const BPF_PROG_DETACH: libc::c_int = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_int = 13;
const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
// Device type values in bpf_cgroup_dev_ctx.access_type (low 16 bits).
const BPF_DEVCG_DEV_BLOCK: i32 = 1;
const BPF_DEVCG_DEV_CHAR: i32 = 2;

// Instruction classes, operations and sources.
const BPF_LDX: u8 = 0x01;
const BPF_ALU: u8 = 0x04;
const BPF_JMP: u8 = 0x05;
const BPF_W: u8 = 0x00;
const BPF_MEM: u8 = 0x60;
const BPF_K: u8 = 0x00;
const BPF_X: u8 = 0x08;
const BPF_AND: u8 = 0x50;
const BPF_RSH: u8 = 0x70;
const BPF_MOV: u8 = 0xb0;
const BPF_JEQ: u8 = 0x10;
const BPF_JNE: u8 = 0x50;
const BPF_EXIT: u8 = 0x90;

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

/// One eBPF instruction, laid out as the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        // `dst_reg:4, src_reg:4` bit-fields: the first field takes the low bits on
        // little-endian targets and the high bits on big-endian ones.
        let regs = if cfg!(target_endian = "little") {
            (src << 4) | (dst & 0x0f)
        } else {
            (dst << 4) | (src & 0x0f)
        };
        Insn {
            code,
            regs,
            off,
            imm,
        }
    }
    /// `dst = *(u32 *)(src + off)`
    fn load_word(dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_LDX | BPF_MEM | BPF_W, dst, src, off, 0)
    }
    /// 32-bit `dst op= imm` (upper half zeroed).
    fn alu32_imm(op: u8, dst: u8, imm: i32) -> Insn {
        Insn::new(BPF_ALU | op | BPF_K, dst, 0, 0, imm)
    }
    /// 32-bit `dst = src`.
    fn mov32_reg(dst: u8, src: u8) -> Insn {
        Insn::new(BPF_ALU | BPF_MOV | BPF_X, dst, src, 0, 0)
    }
    /// `if dst op imm goto +off`
    fn jump_imm(op: u8, dst: u8, imm: i32, off: i16) -> Insn {
        Insn::new(BPF_JMP | op | BPF_K, dst, 0, off, imm)
    }
    /// `if dst op src goto +off`
    fn jump_reg(op: u8, dst: u8, src: u8, off: i16) -> Insn {
        Insn::new(BPF_JMP | op | BPF_X, dst, src, off, 0)
    }
    fn exit() -> Insn {
        Insn::new(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
    }
}

fn imm(field: &str, v: u32) -> Result<i32> {
    // Jumps compare the 64-bit register with the sign-extended immediate, so only values
    // that stay positive as i32 compare correctly.
    i32::try_from(v).map_err(|_| Error::InvalidValue {
        field: format!("linux.resources.devices {field}"),
        reason: format!("{v} is too large for the cgroup v2 device filter (max 2147483647)"),
    })
}

/// Assembles the device filter for `rules` (see the module docs for the semantics).
pub(crate) fn program(rules: &[Rule]) -> Result<Vec<Insn>> {
    let last_all = rules.iter().rposition(|r| r.kind == Kind::All);
    let default_allow = last_all.is_some_and(|i| rules[i].allow);
    let tail = &rules[last_all.map_or(0, |i| i + 1)..];

    // Context (struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }):
    // r2 = device type, r3 = requested access, r4 = major, r5 = minor.
    let mut p = vec![
        Insn::load_word(R2, R1, 0),
        Insn::alu32_imm(BPF_AND, R2, 0xffff),
        Insn::load_word(R3, R1, 0),
        Insn::alu32_imm(BPF_RSH, R3, 16),
        Insn::load_word(R4, R1, 4),
        Insn::load_word(R5, R1, 8),
    ];
    // Rules that agree with the default and come before every rule that disagrees can
    // never change a verdict (whatever they match ends at the default anyway): drop them.
    let first_opposite = tail
        .iter()
        .position(|r| r.allow != default_allow)
        .unwrap_or(tail.len());
    for rule in tail[first_opposite..].iter().rev() {
        // Each test jumps to the end of the block (the next rule) when it fails; offsets are
        // filled in once the block length is known.
        let start = p.len();
        let dev = match rule.kind {
            Kind::Char => BPF_DEVCG_DEV_CHAR,
            Kind::Block => BPF_DEVCG_DEV_BLOCK,
            Kind::All => continue, // unreachable: `tail` holds no `a` rules
        };
        p.push(Insn::jump_imm(BPF_JNE, R2, dev, 0));
        if rule.access != ACC_ALL {
            p.push(Insn::mov32_reg(R1, R3));
            p.push(Insn::alu32_imm(BPF_AND, R1, i32::from(rule.access)));
            if rule.allow {
                // Allow only if every requested bit is granted: (req & acc) == req.
                p.push(Insn::jump_reg(BPF_JNE, R1, R3, 0));
            } else {
                // Deny if any requested bit is denied: (req & acc) != 0.
                p.push(Insn::jump_imm(BPF_JEQ, R1, 0, 0));
            }
        }
        if let Some(major) = rule.major {
            p.push(Insn::jump_imm(BPF_JNE, R4, imm("major", major)?, 0));
        }
        if let Some(minor) = rule.minor {
            p.push(Insn::jump_imm(BPF_JNE, R5, imm("minor", minor)?, 0));
        }
        p.push(Insn::alu32_imm(BPF_MOV, R0, i32::from(rule.allow)));
        p.push(Insn::exit());
        let end = p.len();
        for (i, insn) in p.iter_mut().enumerate().take(end).skip(start) {
            if insn.code & 0x07 != BPF_JMP || insn.code == BPF_JMP | BPF_EXIT {
                continue;
            }
            // A block is at most 9 instructions, so the offset always fits.
            insn.off = (end - (i + 1)) as i16;
        }
    }
    p.push(Insn::alu32_imm(BPF_MOV, R0, i32::from(default_allow)));
    p.push(Insn::exit());
    Ok(p)
}

#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    pad: u32,
}

#[repr(C)]
struct GetFdByIdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

/// Calls bpf(2) with `attr`, a fully initialised `union bpf_attr` prefix for `cmd`.
fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> std::result::Result<libc::c_long, Errno> {
    let size = std::mem::size_of::<T>() as libc::c_uint;
    // SAFETY: `attr` is a live, exclusively borrowed #[repr(C)] struct without implicit
    // padding whose layout is the prefix of `union bpf_attr` that `cmd` reads; the kernel
    // reads (and for queries writes) at most `size` bytes of it. Pointers inside it point to
    // buffers the callers keep alive across this call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            size,
        )
    };
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

fn fd_from(ret: libc::c_long) -> OwnedFd {
    // SAFETY: bpf(2) returned a new file descriptor that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(ret as libc::c_int) }
}

fn bpf_error(dir: &Path, op: &'static str, errno: Errno, detail: impl Into<String>) -> Error {
    let mut detail = detail.into();
    if matches!(errno, Errno::EPERM | Errno::EACCES) && detail.is_empty() {
        detail = "loading and attaching BPF programs needs CAP_SYS_ADMIN (or CAP_BPF and \
                  CAP_NET_ADMIN) in the initial user namespace"
            .into();
    }
    Error::Bpf {
        path: dir.to_path_buf(),
        op,
        errno,
        detail,
    }
}

fn load(dir: &Path, insns: &[Insn]) -> Result<OwnedFd> {
    let license = b"Apache\0";
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"berth_dev");
    let attempt = |log: Option<&mut Vec<u8>>| {
        let (log_level, log_size, log_buf) = match log {
            Some(buf) => (1, buf.len() as u32, buf.as_mut_ptr() as u64),
            None => (0, 0, 0),
        };
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level,
            log_size,
            log_buf,
            kern_version: 0,
            prog_flags: 0,
            prog_name: name,
            prog_ifindex: 0,
            expected_attach_type: 0,
        };
        bpf(BPF_PROG_LOAD, &mut attr)
    };
    match attempt(None) {
        Ok(fd) => Ok(fd_from(fd)),
        Err(errno) => {
            // Load again with the verifier log on, to say why.
            let mut log = vec![0u8; 64 * 1024];
            let detail = match attempt(Some(&mut log)) {
                Ok(fd) => return Ok(fd_from(fd)),
                Err(_) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]).trim().to_string();
                    if text.is_empty() {
                        String::new()
                    } else {
                        format!("verifier log: {text}")
                    }
                }
            };
            Err(bpf_error(dir, "BPF_PROG_LOAD", errno, detail))
        }
    }
}

/// IDs of the device programs attached directly to the cgroup `fd`.
fn attached(dir: &Path, fd: &OwnedFd) -> Result<Vec<u32>> {
    let mut ids = vec![0u32; 64];
    loop {
        let mut attr = QueryAttr {
            target_fd: fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            query_flags: 0,
            attach_flags: 0,
            prog_ids: ids.as_mut_ptr() as u64,
            prog_cnt: ids.len() as u32,
            pad: 0,
        };
        match bpf(BPF_PROG_QUERY, &mut attr) {
            Ok(_) => {
                ids.truncate(attr.prog_cnt as usize);
                return Ok(ids);
            }
            Err(Errno::ENOSPC) if (attr.prog_cnt as usize) > ids.len() => {
                ids = vec![0u32; attr.prog_cnt as usize];
            }
            Err(errno) => return Err(bpf_error(dir, "BPF_PROG_QUERY", errno, "")),
        }
    }
}

/// Replaces the device filter of the cgroup directory `dir` by one built from `rules`:
/// loads the new program, attaches it (multi mode), then detaches the ones it replaces, so
/// there is no instant without a filter.
pub(crate) fn apply(dir: &Path, rules: &[Rule]) -> Result<()> {
    let insns = program(rules)?;
    let prog = load(dir, &insns)?;
    let cpath = CString::new(dir.as_os_str().as_bytes()).map_err(|_| Error::InvalidPath {
        path: dir.display().to_string(),
        reason: "it contains a NUL byte".into(),
    })?;
    let cgroup = nix::fcntl::open(
        cpath.as_c_str(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|errno| Error::Read {
        path: dir.to_path_buf(),
        source: errno.into(),
    })?;
    let cgroup = fd_from(cgroup as libc::c_long);
    let old = attached(dir, &cgroup)?;

    let mut attr = AttachAttr {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    bpf(BPF_PROG_ATTACH, &mut attr).map_err(|errno| {
        let detail = if errno == Errno::EPERM && !old.is_empty() {
            "another device program is attached to this cgroup without BPF_F_ALLOW_MULTI"
        } else {
            ""
        };
        bpf_error(dir, "BPF_PROG_ATTACH", errno, detail)
    })?;

    for id in old {
        let mut get = GetFdByIdAttr {
            prog_id: id,
            next_id: 0,
            open_flags: 0,
        };
        let old_prog = match bpf(BPF_PROG_GET_FD_BY_ID, &mut get) {
            Ok(fd) => fd_from(fd),
            Err(Errno::ENOENT) => continue, // already gone
            Err(errno) => return Err(bpf_error(dir, "BPF_PROG_GET_FD_BY_ID", errno, "")),
        };
        let mut detach = AttachAttr {
            target_fd: cgroup.as_raw_fd() as u32,
            attach_bpf_fd: old_prog.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: 0,
            replace_bpf_fd: 0,
        };
        match bpf(BPF_PROG_DETACH, &mut detach) {
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(errno) => return Err(bpf_error(dir, "BPF_PROG_DETACH", errno, "")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::devices::{normalize, ACC_MKNOD, ACC_READ, ACC_WRITE};
    use super::*;

    fn dst(i: &Insn) -> u8 {
        if cfg!(target_endian = "little") {
            i.regs & 0x0f
        } else {
            i.regs >> 4
        }
    }
    fn src(i: &Insn) -> u8 {
        if cfg!(target_endian = "little") {
            i.regs >> 4
        } else {
            i.regs & 0x0f
        }
    }

    /// A tiny interpreter for the instructions `program` emits, to check the verdicts.
    fn run(p: &[Insn], dev: i32, access: u8, major: u32, minor: u32) -> u64 {
        let ctx = [((access as u32) << 16) | dev as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = p[pc];
            let (d, s) = (dst(&i) as usize, src(&i) as usize);
            pc += 1;
            match i.code {
                0x61 => {
                    assert_eq!(s, 1);
                    r[d] = ctx[(i.off / 4) as usize] as u64;
                }
                0x54 => r[d] = (r[d] as u32 & i.imm as u32) as u64,
                0x74 => r[d] = ((r[d] as u32) >> i.imm) as u64,
                0xb4 => r[d] = i.imm as u32 as u64,
                0xbc => r[d] = r[s] as u32 as u64,
                0x55 => {
                    if r[d] != i.imm as i64 as u64 {
                        pc += i.off as usize
                    }
                }
                0x15 => {
                    if r[d] == i.imm as i64 as u64 {
                        pc += i.off as usize
                    }
                }
                0x5d => {
                    if r[d] != r[s] {
                        pc += i.off as usize
                    }
                }
                0x95 => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn rules(json: &str) -> Vec<Rule> {
        normalize(&serde_json::from_str::<Vec<_>>(json).unwrap()).unwrap()
    }

    const C: i32 = BPF_DEVCG_DEV_CHAR;
    const B: i32 = BPF_DEVCG_DEV_BLOCK;
    const RW: u8 = ACC_READ | ACC_WRITE;

    #[test]
    fn deny_all() {
        let p = program(&rules(r#"[{"allow":false,"access":"rwm"}]"#)).unwrap();
        assert_eq!(run(&p, C, ACC_READ, 1, 3), 0);
        // No rules at all: deny too.
        let p = program(&[]).unwrap();
        assert_eq!(run(&p, B, ACC_READ, 8, 0), 0);
    }

    #[test]
    fn docker_like_allowlist() {
        let mut list = rules(
            r#"[{"allow":false,"access":"rwm"},
                                 {"allow":true,"type":"c","major":1,"minor":3,"access":"rw"}]"#,
        );
        list.extend(normalize(&super::super::devices::default_device_rules()).unwrap());
        let p = program(&list).unwrap();
        assert_eq!(run(&p, C, RW, 1, 3), 1); // /dev/null
        assert_eq!(run(&p, C, ACC_MKNOD, 8, 1), 1); // mknod any char
        assert_eq!(run(&p, B, ACC_MKNOD, 8, 0), 1); // mknod any block
        assert_eq!(run(&p, B, ACC_READ, 8, 0), 0); // read a disk
        assert_eq!(run(&p, C, RW, 136, 7), 1); // a pty
        assert_eq!(run(&p, C, RW, 137, 7), 0);
        assert_eq!(run(&p, C, RW, 10, 200), 1); // tun
        assert_eq!(run(&p, C, RW, 10, 201), 0);
    }

    #[test]
    fn partial_access_and_order() {
        // Allow r only: rw is refused, r passes.
        let p = program(&rules(
            r#"[{"allow":false,"access":"rwm"},
                                   {"allow":true,"type":"c","major":1,"minor":3,"access":"r"}]"#,
        ))
        .unwrap();
        assert_eq!(run(&p, C, ACC_READ, 1, 3), 1);
        assert_eq!(run(&p, C, RW, 1, 3), 0);
        // Default allow with a later deny of writes to 1:3; later rules win.
        let p = program(&rules(
            r#"[{"allow":true,"access":"rwm"},
                                   {"allow":false,"type":"c","major":1,"minor":3,"access":"w"}]"#,
        ))
        .unwrap();
        assert_eq!(run(&p, C, ACC_READ, 1, 3), 1);
        assert_eq!(run(&p, C, RW, 1, 3), 0);
        assert_eq!(run(&p, B, RW, 8, 0), 1);
        // An `a` rule resets everything before it.
        let p = program(&rules(
            r#"[{"allow":false,"access":"rwm"},
                                   {"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"},
                                   {"allow":true,"access":"rwm"}]"#,
        ))
        .unwrap();
        assert_eq!(p.len(), 8); // loads + default only
        assert_eq!(run(&p, B, RW, 8, 0), 1);
        // Later allow re-opens what an earlier deny closed.
        let p = program(&rules(
            r#"[{"allow":false,"access":"rwm"},
                                   {"allow":true,"type":"c","access":"rwm"},
                                   {"allow":false,"type":"c","major":5,"access":"rwm"},
                                   {"allow":true,"type":"c","major":5,"minor":0,"access":"rwm"}]"#,
        ))
        .unwrap();
        assert_eq!(run(&p, C, RW, 5, 0), 1);
        assert_eq!(run(&p, C, RW, 5, 1), 0);
        assert_eq!(run(&p, C, RW, 4, 1), 1);
        assert_eq!(run(&p, B, RW, 4, 1), 0);
    }

    #[test]
    fn big_numbers_refused() {
        let r = rules(r#"[{"allow":true,"type":"c","major":4294967295,"access":"r"}]"#);
        assert!(program(&r).is_err());
    }
}
