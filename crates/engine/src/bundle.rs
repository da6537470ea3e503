//! A container's bundle, made from an image: `<data-root>/containers/<id>/` holding the
//! overlay rootfs (image snapshots below, the container's own upper dir on top), the OCI
//! config.json built from the image config and the run options, and the hostname, hosts and
//! resolv.conf files bind-mounted into the container as Docker does.

use std::path::{Path, PathBuf};

use image::spec::{RunOptions, RunSpec};
use image::Images;
use serde_json::json;

/// Errors making or removing a bundle.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Unable to find image '{0}' locally")]
    NoImage(String),
    #[error(transparent)]
    Images(#[from] image::ImagesError),
    #[error("{0}")]
    Spec(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { what, path, source }
}

/// A made bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub id: String,
    pub dir: PathBuf,
    pub image: image::Digest,
    /// What the image config and options resolved to (entrypoint, cmd, env, stop signal…).
    pub run: RunSpec,
}

/// File in a bundle naming the image it was made from.
const IMAGE_FILE: &str = "image.id";

/// Containers (bundle ids) whose bundle was made from image `id`.
pub fn users_of(data_root: &Path, id: &image::Digest) -> Vec<String> {
    let want = id.to_string();
    let Ok(rd) = std::fs::read_dir(data_root.join("containers")) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| {
            std::fs::read_to_string(e.path().join(IMAGE_FILE)).is_ok_and(|s| s.trim() == want)
        })
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

/// A new random container id (64 hex digits, like docker's).
pub fn new_id() -> Result<String, Error> {
    image::content::random_hex(32)
        .map_err(|e| Error::Spec(format!("cannot make a container id: {e}")))
}

/// Directory of a container's bundle.
pub fn dir(data_root: &Path, id: &str) -> PathBuf {
    data_root.join("containers").join(id)
}

/// Make a bundle: mount the rootfs, write config.json (with Docker's default seccomp profile
/// unless `seccomp_unconfined`), and the /etc files.
pub fn create(
    images: &Images,
    data_root: &Path,
    image_ref: &str,
    opts: &RunOptions,
    seccomp_unconfined: bool,
) -> Result<Bundle, Error> {
    let img = images
        .resolve(image_ref)
        .map_err(|_| Error::NoImage(image_ref.to_string()))?;
    let id = new_id()?;
    let dir = dir(data_root, &id);
    std::fs::create_dir_all(&dir).map_err(io("cannot create", &dir))?;
    let made = (|| {
        let layout = images.create_container_rootfs(&id, &img.id, &dir, true)?;
        let config = images.config(&img.id)?;
        let mut opts = opts.clone();
        if opts.hostname.is_none() {
            opts.hostname = Some(id[..12].to_string());
        }
        let run = image::spec::build_spec(&config, &opts, &layout.target)
            .map_err(|e| Error::Spec(e.to_string()))?;
        // Docker creates a missing working directory (-w, WORKDIR) in the rootfs.
        if !run.working_dir.is_empty() && run.working_dir != "/" {
            image::spec::ensure_workdir(&layout.target, &run.working_dir)
                .map_err(|e| Error::Spec(e.to_string()))?;
        }
        let mut spec = serde_json::to_value(&run.spec).map_err(|e| Error::Spec(e.to_string()))?;
        spec["root"]["path"] = json!("rootfs");
        spec["linux"]["cgroupsPath"] = json!(format!("/berth/{id}"));
        if !seccomp_unconfined && !opts.privileged {
            let caps: Vec<String> = spec["process"]["capabilities"]["bounding"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let arch = runtime::seccomp::docker_arch().unwrap_or("amd64");
            let profile = runtime::seccomp::from_docker_profile(
                runtime::seccomp::DOCKER_DEFAULT_PROFILE,
                &caps,
                arch,
            )
            .map_err(|e| Error::Spec(e.to_string()))?;
            spec["linux"]["seccomp"] =
                serde_json::to_value(profile).map_err(|e| Error::Spec(e.to_string()))?;
        }
        let hostname = opts.hostname.clone().unwrap_or_default();
        write_etc(&dir, &hostname, &mut spec)?;
        let text = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Spec(e.to_string()))?;
        let cfg = dir.join("config.json");
        std::fs::write(&cfg, text).map_err(io("cannot write", &cfg))?;
        let img_file = dir.join(IMAGE_FILE);
        std::fs::write(&img_file, img.id.to_string()).map_err(io("cannot write", &img_file))?;
        Ok::<_, Error>(run)
    })();
    match made {
        Ok(run) => Ok(Bundle {
            id,
            dir,
            image: img.id,
            run,
        }),
        Err(e) => {
            let _ = remove(images, data_root, &id);
            Err(e)
        }
    }
}

/// /etc/hostname, /etc/hosts and /etc/resolv.conf, bind-mounted like Docker's.
fn write_etc(dir: &Path, hostname: &str, spec: &mut serde_json::Value) -> Result<(), Error> {
    let files = [
        ("hostname", format!("{hostname}\n")),
        (
            "hosts",
            format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
                 fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
                 ff02::2\tip6-allrouters\n127.0.0.1\t{hostname}\n"
            ),
        ),
        // No network yet beyond loopback: an empty resolver configuration.
        ("resolv.conf", String::new()),
    ];
    for (name, body) in files {
        let p = dir.join(name);
        std::fs::write(&p, body).map_err(io("cannot write", &p))?;
        if let Some(m) = spec["mounts"].as_array_mut() {
            m.push(json!({
                "destination": format!("/etc/{name}"),
                "type": "bind",
                "source": p,
                "options": ["rbind", "rprivate"]
            }));
        }
    }
    Ok(())
}

/// Remove a bundle: unmount the rootfs, release the image's snapshots, delete the directory.
pub fn remove(images: &Images, data_root: &Path, id: &str) -> Result<(), Error> {
    let d = dir(data_root, id);
    images.remove_container_rootfs(id, &d)?;
    match std::fs::remove_dir_all(&d) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            what: "cannot remove",
            path: d,
            source,
        }),
    }
}

/// The config.json annotation asking the runtime's container init to stay PID 1 as a tiny
/// init (`docker run --init`): it forks the command, forwards signals and reaps zombies.
pub const INIT_ANNOTATION: &str = runtime::init::INIT_ANNOTATION;

/// Sets an annotation in a bundle's config.json.
pub fn set_annotation(dir: &Path, key: &str, value: &str) -> Result<(), Error> {
    let p = dir.join("config.json");
    let text = std::fs::read(&p).map_err(io("cannot read", &p))?;
    let mut spec: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| Error::Spec(format!("{}: {e}", p.display())))?;
    if !spec["annotations"].is_object() {
        spec["annotations"] = json!({});
    }
    spec["annotations"][key] = json!(value);
    let text = serde_json::to_vec_pretty(&spec).map_err(|e| Error::Spec(e.to_string()))?;
    std::fs::write(&p, text).map_err(io("cannot write", &p))
}
