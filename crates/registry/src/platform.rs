//! Platforms (`linux/amd64`, `linux/arm/v7`): parsing `--platform` values, the platform of
//! the running machine, and choosing the best entry of a manifest list or OCI index for a
//! wanted platform, with the architecture and variant normalisation containerd and Docker use
//! (`x86_64` is `amd64`, `aarch64` is `arm64`, `arm64/v8` is plain `arm64`, an `arm/v7`
//! machine can run `arm/v6` and `arm/v5` images).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a platform string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlatformError {
    /// Not `os[/arch[/variant]]`.
    #[error("invalid platform {0:?}: expected os[/arch[/variant]], such as linux/amd64 or linux/arm64/v8")]
    Format(String),
}

/// An operating system, CPU architecture and optional variant, as found in image configs and
/// manifest list entries.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// `linux`, `windows`, …
    pub os: String,
    /// `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64`, …
    pub architecture: String,
    /// `v7`, `v6`, … (None when the architecture has no variants or uses its default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Windows build number, kept for completeness.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl Platform {
    /// A platform from its parts (normalised).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        let (architecture, variant) = normalize_arch(architecture, variant.unwrap_or(""));
        Platform {
            os: normalize_os(os),
            architecture,
            variant,
            os_version: None,
        }
    }

    /// The platform of the running machine (`linux/amd64` on x86-64 Linux).
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            "loongarch64" => ("loong64", None),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
            other => (other, None),
        };
        Platform::new(std::env::consts::OS, arch, variant)
    }

    /// Parses `os`, `os/arch` or `os/arch/variant` (a lone architecture such as `arm64` means
    /// `linux/arm64`). Names are normalised.
    pub fn parse(s: &str) -> Result<Platform, PlatformError> {
        let err = || PlatformError::Format(s.to_string());
        let parts: Vec<&str> = s.trim().split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err());
        }
        let valid = |p: &str| {
            p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'.')
        };
        if !parts.iter().all(|p| valid(p)) {
            return Err(err());
        }
        match parts.as_slice() {
            [one] => {
                let one = one.to_lowercase();
                if KNOWN_OS.contains(&one.as_str()) {
                    let host = Platform::host();
                    Ok(Platform::new(
                        &one,
                        &host.architecture,
                        host.variant.as_deref(),
                    ))
                } else {
                    Ok(Platform::new("linux", &one, None))
                }
            }
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(err()),
        }
    }

    /// The normalised form of this platform (as [`Platform::new`] would build it).
    pub fn normalized(&self) -> Platform {
        let mut p = Platform::new(&self.os, &self.architecture, self.variant.as_deref());
        p.os_version = self.os_version.clone();
        p
    }

    /// How well an image for `candidate` runs on this platform: `None` if it cannot, else a
    /// rank where 0 is an exact match and larger numbers are worse (an older ARM variant).
    pub fn match_rank(&self, candidate: &Platform) -> Option<u32> {
        let want = self.normalized();
        let have = candidate.normalized();
        if want.os != have.os || want.architecture != have.architecture {
            return None;
        }
        match (&want.variant, &have.variant) {
            (None, None) => Some(0),
            (Some(a), Some(b)) if a == b => Some(0),
            // Nothing asked for: any variant will do, the default one is preferred above.
            (None, Some(_)) => Some(1),
            // A variant asked for, the entry names none: usable, but not preferred.
            (Some(_), None) => Some(50),
            (Some(w), Some(h)) => {
                // ARM is backwards compatible: v7 runs v6 and v5.
                let (w, h) = (arm_level(w)?, arm_level(h)?);
                if want.architecture == "arm" && h < w {
                    Some(1 + (w - h))
                } else {
                    None
                }
            }
        }
    }
}

const KNOWN_OS: &[&str] = &[
    "linux",
    "windows",
    "darwin",
    "freebsd",
    "netbsd",
    "openbsd",
    "solaris",
    "illumos",
    "aix",
    "android",
    "ios",
    "plan9",
    "dragonfly",
    "js",
    "wasip1",
];

fn arm_level(v: &str) -> Option<u32> {
    v.strip_prefix('v')?.parse().ok()
}

fn normalize_os(os: &str) -> String {
    match os.to_lowercase().as_str() {
        "macos" => "darwin".to_string(),
        other => other.to_string(),
    }
}

fn normalize_arch(arch: &str, variant: &str) -> (String, Option<String>) {
    let arch = arch.to_lowercase();
    let variant = variant.to_lowercase();
    let opt = |v: &str| {
        if v.is_empty() {
            None
        } else {
            Some(v.to_string())
        }
    };
    match arch.as_str() {
        "i386" | "i486" | "i586" | "i686" | "x86" | "386" => ("386".into(), None),
        "x86_64" | "x86-64" | "amd64" => {
            // amd64 has microarchitecture levels (v2, v3); v1 is the baseline.
            let v = if variant == "v1" {
                ""
            } else {
                variant.as_str()
            };
            ("amd64".into(), opt(v))
        }
        "aarch64" | "arm64" => {
            let v = match variant.as_str() {
                "8" | "v8" | "" => "",
                other => other,
            };
            ("arm64".into(), opt(v))
        }
        "armhf" => ("arm".into(), Some("v7".into())),
        "armel" => ("arm".into(), Some("v6".into())),
        "arm" => {
            let v = match variant.as_str() {
                "" | "7" | "v7" => "v7",
                "5" | "v5" => "v5",
                "6" | "v6" => "v6",
                "8" | "v8" => "v8",
                other => other,
            };
            ("arm".into(), opt(v))
        }
        _ => (arch.clone(), opt(&variant)),
    }
}

impl fmt::Display for Platform {
    /// `os/arch` or `os/arch/variant`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

impl From<&image::config::Platform> for Platform {
    /// From a manifest list entry's platform (normalised).
    fn from(p: &image::config::Platform) -> Platform {
        let mut out = Platform::new(&p.os, &p.architecture, p.variant.as_deref());
        out.os_version = p.os_version.clone();
        out
    }
}

impl From<&Platform> for image::config::Platform {
    /// To the image crate's document type.
    fn from(p: &Platform) -> image::config::Platform {
        image::config::Platform {
            architecture: p.architecture.clone(),
            os: p.os.clone(),
            variant: p.variant.clone(),
            os_version: p.os_version.clone(),
        }
    }
}

impl Default for Platform {
    /// The running machine's platform.
    fn default() -> Self {
        Platform::host()
    }
}

/// Picks the best of `candidates` for `wanted`: the lowest [`Platform::match_rank`], the
/// first in list order among equals (the order the image author chose). Entries without a
/// platform are skipped. Returns the index into `candidates`.
pub fn select<'a, I>(wanted: &Platform, candidates: I) -> Option<usize>
where
    I: IntoIterator<Item = Option<&'a Platform>>,
{
    let mut best: Option<(u32, usize)> = None;
    for (i, c) in candidates.into_iter().enumerate() {
        let Some(c) = c else { continue };
        if let Some(rank) = wanted.match_rank(c) {
            if best.map(|(r, _)| rank < r).unwrap_or(true) {
                best = Some((rank, i));
            }
        }
    }
    best.map(|(_, i)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_display() {
        for (input, shown) in [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/aarch64", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/6", "linux/arm/v6"),
            ("linux/armhf", "linux/arm/v7"),
            ("linux/386", "linux/386"),
            ("Linux/AMD64", "linux/amd64"),
            ("arm64", "linux/arm64"),
            ("windows/amd64", "windows/amd64"),
        ] {
            assert_eq!(
                Platform::parse(input).unwrap().to_string(),
                shown,
                "{input}"
            );
        }
        for bad in ["", "linux/", "/amd64", "linux/amd64/v2/x", "linux amd64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Platform::parse("linux").unwrap(), Platform::host());
        if cfg!(all(target_arch = "x86_64", target_os = "linux")) {
            assert_eq!(Platform::host().to_string(), "linux/amd64");
        }
    }

    #[test]
    fn selection() {
        let list = [
            Platform::new("linux", "amd64", None),
            Platform::new("linux", "arm", Some("v6")),
            Platform::new("linux", "arm", Some("v7")),
            Platform::new("linux", "arm64", Some("v8")),
            Platform::new("windows", "amd64", None),
            Platform::new("unknown", "unknown", None),
        ];
        let pick = |s: &str| select(&Platform::parse(s).unwrap(), list.iter().map(Some));
        assert_eq!(pick("linux/amd64"), Some(0));
        assert_eq!(pick("linux/arm/v7"), Some(2));
        assert_eq!(pick("linux/arm/v6"), Some(1));
        assert_eq!(pick("linux/arm64"), Some(3));
        assert_eq!(pick("linux/arm64/v8"), Some(3));
        assert_eq!(pick("windows/amd64"), Some(4));
        assert_eq!(pick("linux/s390x"), None);
        // arm/v8 can run v7 (closest older variant wins).
        assert_eq!(pick("linux/arm/v8"), Some(2));
        // arm/v5 cannot run v6 or v7.
        assert_eq!(pick("linux/arm/v5"), None);
        // Entries without a platform are skipped.
        assert_eq!(
            select(
                &Platform::parse("linux/amd64").unwrap(),
                [None, Some(&list[0])]
            ),
            Some(1)
        );
    }
}
