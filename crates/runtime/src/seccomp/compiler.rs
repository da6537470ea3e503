//! Compiles an OCI `linux.seccomp` into a classic-BPF program, with runc + libseccomp semantics.
//!
//! Program shape:
//!
//! ```text
//!   ld arch
//!   jeq <token of ABI block 1> -> block 1      (one per ABI token in the filter)
//!   ...
//!   ret KILL_THREAD                            (libseccomp's default "bad arch" action)
//! block:
//!   ld nr
//!   binary search over syscall-number intervals -> ret <action> | rule chain of one syscall
//! rule chain (one per syscall that has argument conditions):
//!   rule 1: conditions (ANDed) ... ret <action 1>     (a failed condition goes to rule 2)
//!   rule 2: ...
//!   ret <default action>
//! ```
//!
//! Every number range of a block gets one outcome: a syscall's rules, "default", "bad arch"
//! (x86_64 syscall numbers with the x32 bit when x32 is not filtered, like libseccomp), or
//! -ENOSYS for numbers above the largest syscall the profile names (runc's stub, so that
//! programs probing syscalls newer than the profile fall back instead of seeing EPERM).
//! Adjacent intervals with the same plain return merge, which keeps Docker's ~370-syscall
//! allowlist at a few hundred instructions and ~9 comparisons per syscall.

use std::collections::BTreeMap;

use libc::sock_filter;
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall};

use super::arch::{Abi, Host, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::bpf::{self, Asm, Cmp, Label};
use super::Error;

/// `EPERM`, the errno of SCMP_ACT_ERRNO / SCMP_ACT_TRACE when no errnoRet is given.
const EPERM: u32 = 1;
/// `ENOSYS`, returned for syscalls newer than the profile.
const ENOSYS: u32 = 38;
/// What a syscall of an ABI the filter does not cover gets (libseccomp's default).
const BAD_ARCH_ACTION: u32 = bpf::SECCOMP_RET_KILL_THREAD;

/// One argument comparison.
#[derive(Clone, Copy, Debug)]
struct Cond {
    index: u8,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: u64,
}

/// Conditions (ANDed) and the action taken when they all hold.
#[derive(Clone, Debug)]
struct Rule {
    conds: Vec<Cond>,
    action: u32,
}

/// What a range of syscall numbers leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Ret(u32),
    /// The rule chain of the syscall with this number.
    Chain(u32),
}

/// Everything filtered under one `seccomp_data.arch` token (x86_64 and x32 share one).
#[derive(Debug)]
struct Block {
    token: u32,
    abis: Vec<Abi>,
    /// Per syscall number: whether its arguments are 64-bit (x32 numbers, which share the
    /// x86_64 token, compare 32 bits like libseccomp's x32), and its rules in profile order
    /// (first match wins).
    rules: BTreeMap<u32, (bool, Vec<Rule>)>,
    /// Per ABI with a -ENOSYS stub: the largest syscall number the profile names.
    enosys_above: BTreeMap<Abi, u32>,
}

/// Translates an OCI action (and errnoRet) into a seccomp return value, like runc's getAction.
fn action_value(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    context: &str,
) -> Result<u32, Error> {
    let data = |v: Option<u32>| -> Result<u32, Error> {
        let v = v.unwrap_or(EPERM);
        if v > bpf::SECCOMP_RET_DATA {
            return Err(Error::ErrnoOutOfRange {
                context: context.to_string(),
                value: v,
            });
        }
        Ok(v)
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            bpf::SECCOMP_RET_KILL_THREAD
        }
        LinuxSeccompAction::ScmpActKillProcess => bpf::SECCOMP_RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => bpf::SECCOMP_RET_TRAP,
        LinuxSeccompAction::ScmpActErrno => bpf::SECCOMP_RET_ERRNO | data(errno_ret)?,
        LinuxSeccompAction::ScmpActTrace => bpf::SECCOMP_RET_TRACE | data(errno_ret)?,
        LinuxSeccompAction::ScmpActLog => bpf::SECCOMP_RET_LOG,
        LinuxSeccompAction::ScmpActAllow => bpf::SECCOMP_RET_ALLOW,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(Error::UnsupportedAction {
                action: "SCMP_ACT_NOTIFY".to_string(),
                context: context.to_string(),
            })
        }
    })
}

/// Converts one rule's args, splitting it like runc does: when two conditions name the same
/// argument, each condition becomes a rule of its own (so they are ORed, not ANDed).
fn expand_rule(call: &LinuxSyscall, action: u32, context: &str) -> Result<Vec<Rule>, Error> {
    let mut conds = Vec::new();
    let mut seen = [0u8; 6];
    for a in call.args().as_deref().unwrap_or_default() {
        let index = u8::try_from(a.index())
            .ok()
            .filter(|i| *i < 6)
            .ok_or_else(|| Error::ArgIndex {
                context: context.to_string(),
                index: a.index(),
            })?;
        seen[usize::from(index)] += 1;
        conds.push(Cond {
            index,
            op: a.op(),
            value: a.value(),
            value_two: a.value_two().unwrap_or(0),
        });
    }
    if seen.iter().any(|n| *n > 1) {
        Ok(conds
            .into_iter()
            .map(|c| Rule {
                conds: vec![c],
                action,
            })
            .collect())
    } else {
        Ok(vec![Rule { conds, action }])
    }
}

/// The rule for the multiplexer entry point of a multiplexed syscall (see
/// [`Abi::multiplexed`]): argument 0 must equal the sub-call number.
fn via_multiplexer(rule: &Rule, sub: u32) -> Rule {
    let mut conds = vec![Cond {
        index: 0,
        op: LinuxSeccompOperator::ScmpCmpEq,
        value: u64::from(sub),
        value_two: 0,
    }];
    conds.extend(rule.conds.iter().filter(|c| c.index != 0).copied());
    Rule {
        conds,
        action: rule.action,
    }
}

/// Compiles `spec` for `host`. See the module docs for the program's shape.
pub(super) fn compile_for(spec: &LinuxSeccomp, host: Host) -> Result<Vec<sock_filter>, Error> {
    let default_action = action_value(
        spec.default_action(),
        spec.default_errno_ret(),
        "the default action",
    )?;

    // ABIs in the filter: the native one always (libseccomp's seccomp_init adds it), plus the
    // listed ones this host can run. runc's -ENOSYS stub covers only the listed ones.
    let listed: Vec<Abi> = spec
        .architectures()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|a| host.abi_for(*a))
        .collect();
    let mut abis = vec![host.native()];
    for a in &listed {
        if !abis.contains(a) {
            abis.push(*a);
        }
    }
    let stub = match spec.default_action() {
        LinuxSeccompAction::ScmpActAllow
        | LinuxSeccompAction::ScmpActLog
        | LinuxSeccompAction::ScmpActTrace => false,
        LinuxSeccompAction::ScmpActErrno => spec.default_errno_ret() != Some(ENOSYS),
        _ => true,
    };

    let mut blocks: Vec<Block> = Vec::new();
    for abi in &abis {
        match blocks.iter_mut().find(|b| b.token == abi.audit_arch()) {
            Some(b) => b.abis.push(*abi),
            None => blocks.push(Block {
                token: abi.audit_arch(),
                abis: vec![*abi],
                rules: BTreeMap::new(),
                enosys_above: BTreeMap::new(),
            }),
        }
    }

    let calls = spec.syscalls().as_deref().unwrap_or_default();
    for (i, call) in calls.iter().enumerate() {
        let first = call.names().first().map(String::as_str).unwrap_or("");
        let context = format!("linux.seccomp.syscalls[{i}] ({first})");
        if let Some(pos) = call.names().iter().position(|n| n.is_empty()) {
            return Err(Error::EmptySyscallName {
                context: format!("linux.seccomp.syscalls[{i}].names[{pos}]"),
            });
        }
        let action = action_value(call.action(), call.errno_ret(), &context)?;
        // runc drops rules that do what the default does (libseccomp refuses them), but their
        // syscalls still count for the -ENOSYS stub.
        let rules = if action == default_action {
            Vec::new()
        } else {
            expand_rule(call, action, &context)?
        };
        for block in &mut blocks {
            for abi in block.abis.clone() {
                for name in call.names() {
                    let muxed = abi.multiplexed(name);
                    let direct = abi.resolve(name);
                    // libseccomp resolves multiplexed names to pseudo numbers, so runc's stub
                    // does not count them.
                    if let (Some(nr), None, true) = (direct, muxed, stub && listed.contains(&abi)) {
                        let max = block.enosys_above.entry(abi).or_insert(nr);
                        *max = (*max).max(nr);
                    }
                    if rules.is_empty() {
                        continue;
                    }
                    let mut add = |nr: u32, rules: &mut dyn Iterator<Item = Rule>| {
                        block
                            .rules
                            .entry(nr)
                            .or_insert_with(|| (abi.args_are_64bit(), Vec::new()))
                            .1
                            .extend(rules);
                    };
                    if let Some((mux_nr, sub)) = muxed {
                        // Like libseccomp: the multiplexer's first argument must be the
                        // sub-call (replacing any condition on argument 0); the other
                        // conditions stay as they are.
                        add(mux_nr, &mut rules.iter().map(|r| via_multiplexer(r, sub)));
                    }
                    if let Some(nr) = direct {
                        add(nr, &mut rules.iter().cloned());
                    }
                    // Names this ABI has no syscall for are skipped, like runc does.
                }
            }
        }
    }

    let mut asm = Asm::new();
    asm.load(bpf::OFF_ARCH);
    let entries: Vec<Label> = blocks.iter().map(|_| asm.label()).collect();
    for (block, entry) in blocks.iter().zip(&entries) {
        let next = asm.label();
        asm.jump(Cmp::Eq, block.token, *entry, next);
        asm.bind(next);
    }
    asm.ret(BAD_ARCH_ACTION);
    for (block, entry) in blocks.iter().zip(&entries) {
        asm.bind(*entry);
        emit_block(&mut asm, block, default_action);
    }
    let prog = asm.assemble().map_err(Error::Internal)?;
    if prog.len() > bpf::BPF_MAXINSNS {
        return Err(Error::ProgramTooLarge { len: prog.len() });
    }
    Ok(prog)
}

/// Number ranges of a block whose outcome is not decided by its rules, in priority order.
fn special_ranges(block: &Block) -> Vec<(u32, u32, Outcome)> {
    let enosys = Outcome::Ret(bpf::SECCOMP_RET_ERRNO | ENOSYS);
    let mut ranges = Vec::new();
    if block.token == AUDIT_ARCH_X86_64 {
        // runc's stub tells the ABIs apart by the x32 bit; numbers without it are x86_64.
        let x32_bit_clear = [(0, X32_SYSCALL_BIT - 1), (0x8000_0000, 0xbfff_ffff)];
        let x32_bit_set = [(X32_SYSCALL_BIT, 0x7fff_ffff), (0xc000_0000, u32::MAX)];
        for (abi, halves) in [(Abi::X86_64, x32_bit_clear), (Abi::X32, x32_bit_set)] {
            if let Some(max) = block.enosys_above.get(&abi) {
                for (lo, hi) in halves {
                    let lo = lo.max(max.saturating_add(1));
                    if lo <= hi {
                        ranges.push((lo, hi, enosys));
                    }
                }
            }
        }
        if !block.abis.contains(&Abi::X32) {
            // libseccomp: x32 syscalls are a bad arch when only x86_64 is filtered, except
            // nr -1 (a tracer skipping the syscall), which goes through to the default.
            ranges.push((X32_SYSCALL_BIT, u32::MAX - 1, Outcome::Ret(BAD_ARCH_ACTION)));
        }
    } else {
        for max in block.enosys_above.values() {
            if *max < u32::MAX {
                ranges.push((max + 1, u32::MAX, enosys));
            }
        }
    }
    ranges
}

/// Splits the syscall-number space of a block into intervals `(start, outcome)`, sorted, the
/// first starting at 0, adjacent ones different.
fn intervals(block: &Block, default_action: u32) -> Vec<(u32, Outcome)> {
    let ranges = special_ranges(block);
    let specific: BTreeMap<u32, Outcome> = block
        .rules
        .iter()
        .map(|(nr, (_, rules))| {
            // A syscall whose first rule is unconditional is a plain return.
            let outcome = match rules.first() {
                Some(r) if r.conds.is_empty() => Outcome::Ret(r.action),
                _ => Outcome::Chain(*nr),
            };
            (*nr, outcome)
        })
        .collect();

    let mut starts: Vec<u32> = vec![0];
    for nr in specific.keys() {
        starts.push(*nr);
        if let Some(n) = nr.checked_add(1) {
            starts.push(n);
        }
    }
    for (lo, hi, _) in &ranges {
        starts.push(*lo);
        if let Some(n) = hi.checked_add(1) {
            starts.push(n);
        }
    }
    starts.sort_unstable();
    starts.dedup();

    // runc's stub runs before the filter, so its ranges win over rules (this matters only
    // for i386 socket/IPC syscalls, which the stub does not count, see compile_for).
    let enosys = Outcome::Ret(bpf::SECCOMP_RET_ERRNO | ENOSYS);
    let range_at = |s: u32, stub: bool| {
        ranges
            .iter()
            .find(|(lo, hi, o)| *lo <= s && s <= *hi && (*o == enosys) == stub)
            .map(|r| r.2)
    };
    let mut out: Vec<(u32, Outcome)> = Vec::with_capacity(starts.len());
    for s in starts {
        let outcome = range_at(s, true)
            .or_else(|| specific.get(&s).copied())
            .or_else(|| range_at(s, false))
            .unwrap_or(Outcome::Ret(default_action));
        match out.last() {
            Some((_, last)) if *last == outcome && matches!(outcome, Outcome::Ret(_)) => {}
            _ => out.push((s, outcome)),
        }
    }
    out
}

/// Emits one ABI block: load nr, the interval search, then the rule chains it jumps to.
fn emit_block(asm: &mut Asm, block: &Block, default_action: u32) {
    let segs = intervals(block, default_action);
    let mut chains: BTreeMap<u32, Label> = BTreeMap::new();
    for (_, o) in &segs {
        if let Outcome::Chain(nr) = o {
            let l = asm.label();
            chains.insert(*nr, l);
        }
    }
    asm.load(bpf::OFF_NR);
    // The search starts right here. (Were the block a single chain segment, emit_search would
    // emit nothing and the chain, bound next, would follow directly.)
    emit_search(asm, &segs, &chains);
    for (nr, label) in &chains {
        asm.bind(*label);
        let (args64, rules) = match block.rules.get(nr) {
            Some((args64, rules)) => (*args64, rules.as_slice()),
            None => (true, &[][..]),
        };
        emit_chain(asm, rules, default_action, args64);
    }
}

/// Emits a binary search over `segs` (the syscall number is in A) and returns the label where
/// it starts. A single chain segment emits nothing and returns the chain's label.
fn emit_search(asm: &mut Asm, segs: &[(u32, Outcome)], chains: &BTreeMap<u32, Label>) -> Label {
    match segs {
        [] => {
            // Unreachable: `intervals` always covers 0..=u32::MAX.
            let l = asm.label();
            asm.bind(l);
            asm.ret(BAD_ARCH_ACTION);
            l
        }
        [(_, Outcome::Ret(k))] => {
            let l = asm.label();
            asm.bind(l);
            asm.ret(*k);
            l
        }
        [(_, Outcome::Chain(nr))] => match chains.get(nr) {
            Some(l) => *l,
            None => emit_search(asm, &[], chains),
        },
        _ => {
            let mid = segs.len() / 2;
            let here = asm.label();
            asm.bind(here);
            let jump = asm.jump_placeholder(Cmp::Ge, segs[mid].0);
            let below = emit_search(asm, &segs[..mid], chains);
            let above = emit_search(asm, &segs[mid..], chains);
            asm.patch(jump, above, below);
            here
        }
    }
}

/// Emits the rules of one syscall in order; the first whose conditions all hold decides.
fn emit_chain(asm: &mut Asm, rules: &[Rule], default_action: u32, args64: bool) {
    for rule in rules {
        if rule.conds.is_empty() {
            asm.ret(rule.action);
            return; // later rules can never be reached
        }
        let next_rule = asm.label();
        for cond in &rule.conds {
            let ok = asm.label();
            emit_cond(asm, cond, ok, next_rule, args64);
            asm.bind(ok);
        }
        asm.ret(rule.action);
        asm.bind(next_rule);
    }
    asm.ret(default_action);
}

/// Emits one comparison of `args[cond.index]`: jumps to `t` if it holds, else to `f`.
///
/// 64-bit ABIs compare the high word first, then the low word; 32-bit ABIs compare the low
/// word with the low 32 bits of the value (as libseccomp does).
fn emit_cond(asm: &mut Asm, cond: &Cond, t: Label, f: Label, args64: bool) {
    let (hi_off, lo_off) = (bpf::arg_hi(cond.index), bpf::arg_lo(cond.index));
    let split = |v: u64| ((v >> 32) as u32, v as u32);
    let (vh, vl) = split(cond.value);
    use LinuxSeccompOperator as Op;
    match cond.op {
        Op::ScmpCmpEq | Op::ScmpCmpNe | Op::ScmpCmpMaskedEq => {
            // (arg & mask) == datum; NE swaps the outcomes.
            let (mask, datum) = if cond.op == Op::ScmpCmpMaskedEq {
                (cond.value, cond.value_two)
            } else {
                (u64::MAX, cond.value)
            };
            let (mh, ml) = split(mask);
            let (dh, dl) = split(datum);
            let (yes, no) = if cond.op == Op::ScmpCmpNe {
                (f, t)
            } else {
                (t, f)
            };
            if args64 {
                let lo_part = asm.label();
                asm.load(hi_off);
                if mh != u32::MAX {
                    asm.and(mh);
                }
                asm.jump(Cmp::Eq, dh, lo_part, no);
                asm.bind(lo_part);
            }
            asm.load(lo_off);
            if ml != u32::MAX {
                asm.and(ml);
            }
            asm.jump(Cmp::Eq, dl, yes, no);
        }
        Op::ScmpCmpGt | Op::ScmpCmpGe | Op::ScmpCmpLt | Op::ScmpCmpLe => {
            // GT/GE are computed directly; LT = !GE and LE = !GT.
            let (lo_cmp, yes, no) = match cond.op {
                Op::ScmpCmpGt => (Cmp::Gt, t, f),
                Op::ScmpCmpGe => (Cmp::Ge, t, f),
                Op::ScmpCmpLt => (Cmp::Ge, f, t),
                _ => (Cmp::Gt, f, t),
            };
            if args64 {
                // hi > vh: greater; hi < vh: smaller; equal: decided by the low words.
                let check_eq = asm.label();
                let lo_part = asm.label();
                asm.load(hi_off);
                asm.jump(Cmp::Gt, vh, yes, check_eq);
                asm.bind(check_eq);
                asm.jump(Cmp::Eq, vh, lo_part, no);
                asm.bind(lo_part);
            }
            asm.load(lo_off);
            asm.jump(lo_cmp, vl, yes, no);
        }
    }
}
