//! Device access rules (`linux.resources.devices`), independent of the cgroup version.
//!
//! This file owns validating OCI device rules, normalising them into [`Rule`]s, writing them
//! in the v1 `devices.allow`/`devices.deny` text form, and runc's list of devices every
//! container may use ([`default_device_rules`]). The v2 form (an eBPF program) is in
//! `devices_bpf.rs`.

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

use super::{Error, Result};

/// Access bit: create the node (`m`). Same values as the kernel's `BPF_DEVCG_ACC_*`.
pub(crate) const ACC_MKNOD: u8 = 1;
/// Access bit: read (`r`).
pub(crate) const ACC_READ: u8 = 2;
/// Access bit: write (`w`).
pub(crate) const ACC_WRITE: u8 = 4;
/// All access bits.
pub(crate) const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// Which devices a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Every device (the `a` wildcard): resets the default to allow or deny everything.
    All,
    /// Character devices.
    Char,
    /// Block devices.
    Block,
}

/// A validated device rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) allow: bool,
    pub(crate) kind: Kind,
    /// `None` is the `*` wildcard.
    pub(crate) major: Option<u32>,
    /// `None` is the `*` wildcard.
    pub(crate) minor: Option<u32>,
    /// `ACC_*` bits, never 0.
    pub(crate) access: u8,
}

impl Rule {
    /// The v1 text form: `a` for the wildcard, else `c 1:3 rwm`.
    pub(crate) fn v1_line(&self) -> String {
        let kind = match self.kind {
            Kind::All => return "a".to_string(),
            Kind::Char => 'c',
            Kind::Block => 'b',
        };
        let num = |n: Option<u32>| n.map_or_else(|| "*".to_string(), |n| n.to_string());
        format!(
            "{kind} {}:{} {}",
            num(self.major),
            num(self.minor),
            access_string(self.access)
        )
    }
}

/// `ACC_*` bits as `rwm` text (in that order).
pub(crate) fn access_string(access: u8) -> String {
    let mut s = String::with_capacity(3);
    if access & ACC_READ != 0 {
        s.push('r');
    }
    if access & ACC_WRITE != 0 {
        s.push('w');
    }
    if access & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

fn number(index: usize, what: &str, v: Option<i64>) -> Result<Option<u32>> {
    match v {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n).map(Some).map_err(|_| Error::InvalidValue {
            field: format!("linux.resources.devices[{index}].{what}"),
            reason: format!("{n} is not a device number (0..=4294967295, or -1 for any)"),
        }),
    }
}

/// Validates and normalises OCI device rules, in order.
///
/// Like runc, `access` must be given (a subset of `rwm`); the type defaults to `a`;
/// major/minor absent or `-1` mean any. `u` (unbuffered character) is treated as `c`; `p`
/// (FIFO) is refused, since the device controller does not govern FIFOs.
pub(crate) fn normalize(rules: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>> {
    let mut out = Vec::with_capacity(rules.len());
    for (i, r) in rules.iter().enumerate() {
        let field = |what: &str| format!("linux.resources.devices[{i}].{what}");
        let kind = match r.typ().unwrap_or(LinuxDeviceType::A) {
            LinuxDeviceType::A => Kind::All,
            LinuxDeviceType::C | LinuxDeviceType::U => Kind::Char,
            LinuxDeviceType::B => Kind::Block,
            LinuxDeviceType::P => {
                return Err(Error::InvalidValue {
                    field: field("type"),
                    reason: "\"p\" (FIFO) is not a device cgroup rule type; use a, b or c".into(),
                })
            }
        };
        let access_text = r.access().as_deref().unwrap_or("");
        if access_text.is_empty() {
            return Err(Error::InvalidValue {
                field: field("access"),
                reason: "must not be empty; give a combination of r, w and m (e.g. \"rwm\")".into(),
            });
        }
        let mut access = 0u8;
        for c in access_text.chars() {
            access |= match c {
                'r' => ACC_READ,
                'w' => ACC_WRITE,
                'm' => ACC_MKNOD,
                other => {
                    return Err(Error::InvalidValue {
                        field: field("access"),
                        reason: format!(
                            "{access_text:?} contains {other:?}; only r, w and m are allowed"
                        ),
                    })
                }
            };
        }
        out.push(Rule {
            allow: r.allow(),
            kind,
            major: number(i, "major", r.major())?,
            minor: number(i, "minor", r.minor())?,
            access,
        });
    }
    Ok(out)
}

/// What to write for v1: `("devices.deny", "a")` first (deny everything), then each rule in
/// order to `devices.allow` or `devices.deny`.
pub(crate) fn v1_writes(rules: &[Rule]) -> Vec<(&'static str, String)> {
    let mut out = vec![("devices.deny", "a".to_string())];
    for r in rules {
        let file = if r.allow {
            "devices.allow"
        } else {
            "devices.deny"
        };
        out.push((file, r.v1_line()));
    }
    out
}

fn rule(
    kind: LinuxDeviceType,
    major: Option<i64>,
    minor: Option<i64>,
    access: &str,
) -> LinuxDeviceCgroup {
    let mut r = LinuxDeviceCgroup::default();
    r.set_allow(true);
    r.set_typ(Some(kind));
    r.set_major(major);
    r.set_minor(minor);
    r.set_access(Some(access.to_string()));
    r
}

/// The device rules runc appends to every container's list (its `AllowedDevices`): mknod of
/// any character or block device, and read/write/mknod of `/dev/null`, `/dev/random`,
/// `/dev/full`, `/dev/tty`, `/dev/zero`, `/dev/urandom`, `/dev/pts/*`, `/dev/ptmx` and
/// `/dev/net/tun`. The runtime appends these after the configuration's own rules, as runc
/// does; this module never adds them by itself.
pub fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    use LinuxDeviceType::{B, C};
    vec![
        rule(C, None, None, "m"),
        rule(B, None, None, "m"),
        rule(C, Some(1), Some(3), "rwm"),    // /dev/null
        rule(C, Some(1), Some(8), "rwm"),    // /dev/random
        rule(C, Some(1), Some(7), "rwm"),    // /dev/full
        rule(C, Some(5), Some(0), "rwm"),    // /dev/tty
        rule(C, Some(1), Some(5), "rwm"),    // /dev/zero
        rule(C, Some(1), Some(9), "rwm"),    // /dev/urandom
        rule(C, Some(136), None, "rwm"),     // /dev/pts/*
        rule(C, Some(5), Some(2), "rwm"),    // /dev/ptmx
        rule(C, Some(10), Some(200), "rwm"), // /dev/net/tun
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oci(json: &str) -> Vec<LinuxDeviceCgroup> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn normalize_and_v1_lines() {
        let rules = normalize(&oci(r#"[{"allow":false,"access":"rwm"},
                {"allow":true,"type":"c","major":1,"minor":3,"access":"rw"},
                {"allow":true,"type":"c","major":136,"access":"rwm"},
                {"allow":false,"type":"b","major":-1,"minor":-1,"access":"mw"},
                {"allow":true,"type":"u","major":4,"minor":1,"access":"r"}]"#))
        .unwrap();
        assert_eq!(
            rules[0],
            Rule {
                allow: false,
                kind: Kind::All,
                major: None,
                minor: None,
                access: ACC_ALL
            }
        );
        let writes = v1_writes(&rules);
        let want: Vec<(&str, &str)> = vec![
            ("devices.deny", "a"),
            ("devices.deny", "a"),
            ("devices.allow", "c 1:3 rw"),
            ("devices.allow", "c 136:* rwm"),
            ("devices.deny", "b *:* wm"),
            ("devices.allow", "c 4:1 r"),
        ];
        let got: Vec<(&str, &str)> = writes.iter().map(|(f, l)| (*f, l.as_str())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn invalid_rules() {
        assert!(normalize(&oci(r#"[{"allow":true,"type":"c"}]"#)).is_err());
        assert!(normalize(&oci(r#"[{"allow":true,"type":"c","access":""}]"#)).is_err());
        assert!(normalize(&oci(r#"[{"allow":true,"type":"c","access":"rx"}]"#)).is_err());
        assert!(normalize(&oci(r#"[{"allow":true,"type":"p","access":"r"}]"#)).is_err());
        assert!(normalize(&oci(
            r#"[{"allow":true,"type":"c","major":-2,"access":"r"}]"#
        ))
        .is_err());
        assert!(normalize(&oci(
            r#"[{"allow":true,"type":"c","minor":4294967296,"access":"r"}]"#
        ))
        .is_err());
    }

    #[test]
    fn defaults_are_valid() {
        let rules = normalize(&default_device_rules()).unwrap();
        assert_eq!(rules.len(), 11);
        assert!(rules.iter().all(|r| r.allow));
        assert_eq!(rules[0].v1_line(), "c *:* m");
        assert_eq!(rules[8].v1_line(), "c 136:* rwm");
    }
}
