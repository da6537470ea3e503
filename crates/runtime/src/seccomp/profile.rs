//! Docker's seccomp profile format (as in moby's `profiles/seccomp/default.json`) and its
//! conversion into an OCI `linux.seccomp` for one architecture and capability set, following
//! Docker's `setupSeccomp`:
//!
//! - `archMap`: the entry whose `architecture` is the host's `SCMP_ARCH_*` gives
//!   `architectures` = that arch + its `subArchitectures` (a profile may instead give a plain
//!   `architectures` list, but not both);
//! - each `syscalls` entry is kept unless its `excludes` match (arch listed, any listed cap
//!   held, kernel >= `minKernel`) or its `includes` do not (arch not listed, a listed cap not
//!   held, kernel < `minKernel`); `name` becomes a one-element `names`;
//! - `defaultAction`, `defaultErrnoRet`, `flags`, `listenerPath` and `listenerMetadata` are
//!   copied as they are.

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

use super::Error;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    #[serde(default)]
    default_action: Option<LinuxSeccompAction>,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMapEntry>>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    listener_path: Option<std::path::PathBuf>,
    #[serde(default)]
    listener_metadata: Option<String>,
    #[serde(default)]
    syscalls: Option<Vec<Syscall>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMapEntry {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Docker's (libseccomp's) architecture names -> `SCMP_ARCH_*`, after GOARCH aliases.
fn scmp_arch_of(arch: &str) -> Option<&'static str> {
    let native = match arch {
        "386" => "x86",
        "mips64p32" => "mips64n32",
        "mips64le" => "mipsel64",
        "mips64p32le" => "mips3l64n32",
        "loong64" => "loongarch64",
        other => other,
    };
    Some(match native {
        "x86" => "SCMP_ARCH_X86",
        "amd64" => "SCMP_ARCH_X86_64",
        "arm" => "SCMP_ARCH_ARM",
        "arm64" => "SCMP_ARCH_AARCH64",
        "mips64" => "SCMP_ARCH_MIPS64",
        "mips64n32" => "SCMP_ARCH_MIPS64N32",
        "mipsel64" => "SCMP_ARCH_MIPSEL64",
        "mips3l64n32" => "SCMP_ARCH_MIPSEL64N32",
        "mipsle" | "mipsel" => "SCMP_ARCH_MIPSEL",
        "ppc" => "SCMP_ARCH_PPC",
        "ppc64" => "SCMP_ARCH_PPC64",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "s390" => "SCMP_ARCH_S390",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        "loongarch64" => "SCMP_ARCH_LOONGARCH64",
        _ => return None,
    })
}

/// Docker's architecture name for `includes`/`excludes` matching ("386" is called "x86").
fn docker_native_name(arch: &str) -> &str {
    match arch {
        "386" => "x86",
        "mips64p32" => "mips64n32",
        "mips64le" => "mipsel64",
        "mips64p32le" => "mips3l64n32",
        other => other,
    }
}

fn parse_arch(name: &str) -> Result<Arch, Error> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).map_err(|_| {
        Error::UnknownArch {
            arch: name.to_string(),
        }
    })
}

/// Normalises a capability name to `CAP_FOO`.
fn cap_name(c: &str) -> String {
    let up = c.trim().to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

/// Parses "major.minor[...]" (Docker accepts "4.8", and ignores anything after the minor).
fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().splitn(3, '.');
    let num = |s: Option<&str>| -> Option<u32> {
        let s = s?;
        let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    };
    let major = num(parts.next())?;
    let minor = num(parts.next())?;
    Some((major, minor))
}

/// The running kernel's (major, minor).
pub(super) fn host_kernel() -> Result<(u32, u32), Error> {
    let uts = nix::sys::utsname::uname().map_err(|e| Error::KernelVersion(e.to_string()))?;
    let release = uts.release().to_string_lossy().into_owned();
    parse_version(&release)
        .ok_or_else(|| Error::KernelVersion(format!("cannot parse kernel release {release:?}")))
}

fn min_kernel_met(min: &str, kernel: (u32, u32), context: &str) -> Result<bool, Error> {
    let want = parse_version(min).ok_or_else(|| Error::InvalidProfile {
        reason: format!("{context}: minKernel {min:?} is not in the form \"major.minor\""),
    })?;
    Ok(kernel >= want)
}

/// [`super::from_docker_profile`] with the kernel version given (for tests).
pub(super) fn convert(
    json: &str,
    caps: &[String],
    arch: &str,
    kernel: (u32, u32),
) -> Result<LinuxSeccomp, Error> {
    let mut de = serde_json::Deserializer::from_str(json);
    let profile: Profile =
        serde_path_to_error::deserialize(&mut de).map_err(|e| Error::ProfileJson {
            path: e.path().to_string(),
            source: e.into_inner(),
        })?;
    de.end().map_err(|source| Error::ProfileJson {
        path: ".".to_string(),
        source,
    })?;

    let syscalls = profile.syscalls.unwrap_or_default();
    let Some(default_action) = profile.default_action else {
        if syscalls.is_empty() {
            return Err(Error::ProfileDisablesSeccomp);
        }
        return Err(Error::InvalidProfile {
            reason: "defaultAction is missing".to_string(),
        });
    };

    let arch_map = profile.arch_map.unwrap_or_default();
    let plain_arches = profile.architectures.unwrap_or_default();
    if !plain_arches.is_empty() && !arch_map.is_empty() {
        return Err(Error::InvalidProfile {
            reason: "both 'architectures' and 'archMap' are given; use one of them".to_string(),
        });
    }
    let mut architectures = Vec::new();
    for a in &plain_arches {
        architectures.push(parse_arch(a)?);
    }
    if let Some(scmp) = scmp_arch_of(arch) {
        if let Some(entry) = arch_map.iter().find(|e| e.architecture == scmp) {
            architectures.push(parse_arch(&entry.architecture)?);
            for sub in entry.sub_architectures.as_deref().unwrap_or_default() {
                architectures.push(parse_arch(sub)?);
            }
        }
    }

    let caps: Vec<String> = caps.iter().map(|c| cap_name(c)).collect();
    let arch_name = docker_native_name(arch);
    let mut out_calls = Vec::new();
    for (i, call) in syscalls.into_iter().enumerate() {
        let context = format!("syscalls[{i}]");
        if let Some(ex) = &call.excludes {
            if ex
                .arches
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|a| a == arch_name)
            {
                continue;
            }
            if ex
                .caps
                .as_deref()
                .unwrap_or_default()
                .iter()
                .any(|c| caps.contains(c))
            {
                continue;
            }
            if let Some(min) = &ex.min_kernel {
                if min_kernel_met(min, kernel, &context)? {
                    continue;
                }
            }
        }
        if let Some(inc) = &call.includes {
            let arches = inc.arches.as_deref().unwrap_or_default();
            if !arches.is_empty() && !arches.iter().any(|a| a == arch_name) {
                continue;
            }
            if !inc
                .caps
                .as_deref()
                .unwrap_or_default()
                .iter()
                .all(|c| caps.contains(c))
            {
                continue;
            }
            if let Some(min) = &inc.min_kernel {
                if !min_kernel_met(min, kernel, &context)? {
                    continue;
                }
            }
        }
        let names = match (call.name, call.names) {
            (Some(n), Some(ns)) if !n.is_empty() && !ns.is_empty() => {
                return Err(Error::InvalidProfile {
                    reason: format!("{context}: both 'name' and 'names' are given; use one"),
                })
            }
            (Some(n), _) if !n.is_empty() => vec![n],
            (_, Some(ns)) => ns,
            _ => Vec::new(),
        };
        let mut out = LinuxSyscall::default();
        out.set_names(names);
        out.set_action(call.action);
        out.set_errno_ret(call.errno_ret);
        if let Some(args) = call.args {
            let args = args
                .into_iter()
                .map(|a| {
                    let mut b = LinuxSeccompArgBuilder::default()
                        .index(a.index)
                        .value(a.value)
                        .op(a.op);
                    if let Some(v) = a.value_two {
                        b = b.value_two(v);
                    }
                    b.build()
                        .map_err(|e| Error::Internal(format!("{context}: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            if !args.is_empty() {
                out.set_args(Some(args));
            }
        }
        out_calls.push(out);
    }

    let mut spec = LinuxSeccomp::default();
    spec.set_default_action(default_action);
    spec.set_default_errno_ret(profile.default_errno_ret);
    if !architectures.is_empty() {
        spec.set_architectures(Some(architectures));
    }
    spec.set_flags(profile.flags.filter(|f| !f.is_empty()));
    spec.set_listener_path(profile.listener_path);
    spec.set_listener_metadata(profile.listener_metadata);
    spec.set_syscalls(Some(out_calls));
    Ok(spec)
}
