//! A tiny classic-BPF assembler for seccomp programs: instructions with symbolic forward jump
//! targets (labels), resolved into `sock_filter`s with long-jump relaxation.
//!
//! Classic BPF conditional jumps carry 8-bit offsets (at most 255 instructions forward). When a
//! target is further away, the conditional jump is pointed at a `BPF_JA` placed right after it,
//! whose 32-bit offset reaches anywhere. Inserting such trampolines moves other targets further
//! away, so layout is repeated until nothing changes (offsets only grow, so this terminates).
//!
//! Also owns the seccomp/BPF constants, the `seccomp_data` layout and, for tests, a reference
//! interpreter that runs a program over one `seccomp_data` the way the kernel does.

use libc::sock_filter;

// Instruction classes and fields (linux/filter.h, linux/bpf_common.h).
pub(super) const BPF_LD: u16 = 0x00;
pub(super) const BPF_ALU: u16 = 0x04;
pub(super) const BPF_JMP: u16 = 0x05;
pub(super) const BPF_RET: u16 = 0x06;
pub(super) const BPF_W: u16 = 0x00;
pub(super) const BPF_ABS: u16 = 0x20;
pub(super) const BPF_K: u16 = 0x00;
pub(super) const BPF_AND: u16 = 0x50;
pub(super) const BPF_JA: u16 = 0x00;
pub(super) const BPF_JEQ: u16 = 0x10;
pub(super) const BPF_JGT: u16 = 0x20;
pub(super) const BPF_JGE: u16 = 0x30;
pub(super) const BPF_JSET: u16 = 0x40;

/// Longest program the kernel accepts (`BPF_MAXINSNS`).
pub(super) const BPF_MAXINSNS: usize = 4096;

// seccomp return values (linux/seccomp.h).
pub(super) const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(super) const SECCOMP_RET_KILL_THREAD: u32 = 0x0000_0000;
pub(super) const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
pub(super) const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
pub(super) const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
pub(super) const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
pub(super) const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
pub(super) const SECCOMP_RET_DATA: u32 = 0x0000_ffff;

// struct seccomp_data { int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]; }
pub(super) const OFF_NR: u32 = 0;
pub(super) const OFF_ARCH: u32 = 4;
const OFF_ARGS: u32 = 16;

/// Offset of the low 32 bits of syscall argument `index` (0..=5) in `seccomp_data`.
pub(super) fn arg_lo(index: u8) -> u32 {
    let base = OFF_ARGS + 8 * u32::from(index);
    if cfg!(target_endian = "little") {
        base
    } else {
        base + 4
    }
}

/// Offset of the high 32 bits of syscall argument `index` (0..=5) in `seccomp_data`.
pub(super) fn arg_hi(index: u8) -> u32 {
    let base = OFF_ARGS + 8 * u32::from(index);
    if cfg!(target_endian = "little") {
        base + 4
    } else {
        base
    }
}

/// A conditional jump's comparison against the constant `k`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cmp {
    /// A == k
    Eq,
    /// A > k (unsigned)
    Gt,
    /// A >= k (unsigned)
    Ge,
}

impl Cmp {
    fn code(self) -> u16 {
        BPF_JMP
            | BPF_K
            | match self {
                Cmp::Eq => BPF_JEQ,
                Cmp::Gt => BPF_JGT,
                Cmp::Ge => BPF_JGE,
            }
    }
}

/// A jump target, bound to a position with [`Asm::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Label(usize);

#[derive(Debug)]
enum Item {
    Bind(Label),
    Stmt(sock_filter),
    Jump {
        cmp: Cmp,
        k: u32,
        jt: Label,
        jf: Label,
    },
}

/// Builds one program. All jumps go forward: a label must be bound after every jump to it.
#[derive(Debug, Default)]
pub(super) struct Asm {
    items: Vec<Item>,
    labels: usize,
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

impl Asm {
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// A fresh, unbound label.
    pub(super) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Binds `l` to the next instruction.
    pub(super) fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }

    /// `A = *(u32 *)(data + off)`
    pub(super) fn load(&mut self, off: u32) {
        self.items
            .push(Item::Stmt(stmt(BPF_LD | BPF_W | BPF_ABS, off)));
    }

    /// `A &= k`
    pub(super) fn and(&mut self, k: u32) {
        self.items
            .push(Item::Stmt(stmt(BPF_ALU | BPF_AND | BPF_K, k)));
    }

    /// `return k`
    pub(super) fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt(stmt(BPF_RET | BPF_K, k)));
    }

    /// `if (A <cmp> k) goto jt; else goto jf;`
    pub(super) fn jump(&mut self, cmp: Cmp, k: u32, jt: Label, jf: Label) {
        self.items.push(Item::Jump { cmp, k, jt, jf });
    }

    /// A conditional jump whose targets are filled in later with [`Asm::patch`]; returns its
    /// handle. Lets a caller emit a branch before the code it branches to has labels.
    pub(super) fn jump_placeholder(&mut self, cmp: Cmp, k: u32) -> usize {
        let dummy = Label(usize::MAX);
        self.items.push(Item::Jump {
            cmp,
            k,
            jt: dummy,
            jf: dummy,
        });
        self.items.len() - 1
    }

    /// Sets the targets of a jump made by [`Asm::jump_placeholder`].
    pub(super) fn patch(&mut self, handle: usize, new_jt: Label, new_jf: Label) {
        if let Some(Item::Jump { jt, jf, .. }) = self.items.get_mut(handle) {
            *jt = new_jt;
            *jf = new_jf;
        }
    }

    /// Lays the program out and resolves every jump.
    ///
    /// Errors (as text, for an internal-error report) on an unbound label, a backward jump, or a
    /// program whose last instruction is not a return (the kernel requires one).
    pub(super) fn assemble(self) -> Result<Vec<sock_filter>, String> {
        // Where each label is bound, as an item index, to reject backward jumps.
        let mut bound_at = vec![None; self.labels];
        for (i, item) in self.items.iter().enumerate() {
            if let Item::Bind(Label(l)) = item {
                if bound_at[*l].replace(i).is_some() {
                    return Err(format!("label {l} bound twice"));
                }
            }
        }
        let check = |from: usize, Label(l): Label| -> Result<(), String> {
            match bound_at.get(l).copied().flatten() {
                None => Err(format!("jump at item {from} to unbound label {l}")),
                Some(at) if at <= from => Err(format!("backward jump at item {from} to label {l}")),
                Some(_) => Ok(()),
            }
        };
        for (i, item) in self.items.iter().enumerate() {
            if let Item::Jump { jt, jf, .. } = item {
                check(i, *jt)?;
                check(i, *jf)?;
            }
        }

        // far[i] = (true target needs a trampoline, false target needs a trampoline)
        let mut far = vec![(false, false); self.items.len()];
        let mut label_pos = vec![0usize; self.labels];
        loop {
            // Positions under the current choice of trampolines.
            let mut pos = 0usize;
            let mut item_pos = Vec::with_capacity(self.items.len());
            for (i, item) in self.items.iter().enumerate() {
                item_pos.push(pos);
                match item {
                    Item::Bind(Label(l)) => label_pos[*l] = pos,
                    Item::Stmt(_) => pos += 1,
                    Item::Jump { .. } => pos += 1 + usize::from(far[i].0) + usize::from(far[i].1),
                }
            }
            let mut changed = false;
            for (i, item) in self.items.iter().enumerate() {
                if let Item::Jump { jt, jf, .. } = item {
                    let next = item_pos[i] + 1;
                    if !far[i].0 && label_pos[jt.0] - next > 255 {
                        far[i].0 = true;
                        changed = true;
                    }
                    if !far[i].1 && label_pos[jf.0] - next > 255 {
                        far[i].1 = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }

        let mut out = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            let here = out.len();
            let off = |l: &Label, from: usize| -> Result<u32, String> {
                u32::try_from(label_pos[l.0] - from).map_err(|_| "jump too long".to_string())
            };
            match item {
                Item::Bind(_) => {}
                Item::Stmt(s) => out.push(*s),
                Item::Jump { cmp, k, jt, jf } => {
                    let short =
                        |v: u32| u8::try_from(v).map_err(|_| "relaxation failed".to_string());
                    let mut ins = stmt(cmp.code(), *k);
                    match far[i] {
                        (false, false) => {
                            ins.jt = short(off(jt, here + 1)?)?;
                            ins.jf = short(off(jf, here + 1)?)?;
                            out.push(ins);
                        }
                        (true, false) => {
                            ins.jt = 0;
                            ins.jf = short(off(jf, here + 1)?)?;
                            out.push(ins);
                            out.push(stmt(BPF_JMP | BPF_JA, off(jt, here + 2)?));
                        }
                        (false, true) => {
                            ins.jt = short(off(jt, here + 1)?)?;
                            ins.jf = 0;
                            out.push(ins);
                            out.push(stmt(BPF_JMP | BPF_JA, off(jf, here + 2)?));
                        }
                        (true, true) => {
                            ins.jt = 0;
                            ins.jf = 1;
                            out.push(ins);
                            out.push(stmt(BPF_JMP | BPF_JA, off(jt, here + 2)?));
                            out.push(stmt(BPF_JMP | BPF_JA, off(jf, here + 3)?));
                        }
                    }
                }
            }
        }
        match out.last() {
            Some(last) if last.code & 0x07 == BPF_RET => Ok(out),
            _ => Err("program does not end with a return".to_string()),
        }
    }
}

/// One-line text form of an instruction, for `Debug` output and test failures.
pub(super) fn describe(i: &sock_filter) -> String {
    let class = i.code & 0x07;
    match class {
        c if c == BPF_LD => format!("ld [{}]", i.k),
        c if c == BPF_ALU => format!("and {:#x}", i.k),
        c if c == BPF_RET => format!("ret {:#010x}", i.k),
        c if c == BPF_JMP => {
            let op = match i.code & 0xf0 {
                x if x == BPF_JA => return format!("ja +{}", i.k),
                x if x == BPF_JEQ => "jeq",
                x if x == BPF_JGT => "jgt",
                x if x == BPF_JGE => "jge",
                x if x == BPF_JSET => "jset",
                _ => "j?",
            };
            format!("{op} {:#x} jt +{} jf +{}", i.k, i.jt, i.jf)
        }
        _ => format!("code {:#x} k {:#x}", i.code, i.k),
    }
}

/// Test-only reference interpreter for the instructions the compiler emits.
#[cfg(test)]
pub(super) mod interp {
    use super::*;

    /// The input of a seccomp program.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct Data {
        pub(crate) nr: u32,
        pub(crate) arch: u32,
        pub(crate) args: [u64; 6],
    }

    impl Data {
        fn bytes(&self) -> [u8; 64] {
            let mut b = [0u8; 64];
            b[0..4].copy_from_slice(&self.nr.to_ne_bytes());
            b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
            b[8..16].copy_from_slice(&0x7fff_0000_1234u64.to_ne_bytes());
            for (i, a) in self.args.iter().enumerate() {
                b[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
            }
            b
        }
    }

    /// Runs `prog` over `data` and returns the seccomp action. Panics on anything the kernel
    /// would refuse (bad load, jump out of the program, falling off the end, unknown opcode).
    pub(crate) fn run(prog: &[sock_filter], data: &Data) -> u32 {
        assert!(
            !prog.is_empty() && prog.len() <= BPF_MAXINSNS,
            "bad length {}",
            prog.len()
        );
        let bytes = data.bytes();
        let mut a: u32 = 0;
        let mut pc = 0usize;
        loop {
            let i = prog
                .get(pc)
                .unwrap_or_else(|| panic!("fell off the program at {pc}"));
            pc += 1;
            match i.code {
                c if c == BPF_LD | BPF_W | BPF_ABS => {
                    let k = i.k as usize;
                    assert!(k & 3 == 0 && k + 4 <= 64, "bad load offset {k}");
                    a = u32::from_ne_bytes(bytes[k..k + 4].try_into().unwrap());
                }
                c if c == BPF_ALU | BPF_AND | BPF_K => a &= i.k,
                c if c == BPF_RET | BPF_K => return i.k,
                c if c == BPF_JMP | BPF_JA => pc += i.k as usize,
                c if c & 0x07 == BPF_JMP => {
                    let taken = match c & 0xf0 {
                        x if x == BPF_JEQ => a == i.k,
                        x if x == BPF_JGT => a > i.k,
                        x if x == BPF_JGE => a >= i.k,
                        x if x == BPF_JSET => a & i.k != 0,
                        _ => panic!("unknown jump {c:#x}"),
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
                c => panic!("unknown opcode {c:#x}"),
            }
        }
    }

    /// Checks what the kernel's classic-BPF checker checks for the opcodes we use: every jump
    /// lands inside the program and the last instruction returns.
    pub(crate) fn check(prog: &[sock_filter]) {
        assert!(!prog.is_empty() && prog.len() <= BPF_MAXINSNS);
        for (pc, i) in prog.iter().enumerate() {
            if i.code == BPF_JMP | BPF_JA {
                assert!(
                    pc + 1 + (i.k as usize) < prog.len(),
                    "ja out of range at {pc}"
                );
            } else if i.code & 0x07 == BPF_JMP {
                assert!(
                    pc + 1 + usize::from(i.jt) < prog.len(),
                    "jt out of range at {pc}"
                );
                assert!(
                    pc + 1 + usize::from(i.jf) < prog.len(),
                    "jf out of range at {pc}"
                );
            }
        }
        assert_eq!(prog[prog.len() - 1].code, BPF_RET | BPF_K);
    }
}
