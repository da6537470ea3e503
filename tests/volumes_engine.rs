//! Volumes and container mounts in berth's daemon, driven by the real Docker CLI against a
//! sandbox daemon (tests/daemon_common): named volumes whose data outlives the container,
//! a daemon restart and a daemon SIGKILL; anonymous volumes (`-v /path`, the image's VOLUME)
//! removed by `rm -v` and `--rm` while named ones stay; the first-use copy of the image's
//! content (ownership and modes kept, `nocopy`); bind mounts (ro, rw, a missing -v source
//! created, a missing --mount source refused); tmpfs (`--tmpfs`, `--mount type=tmpfs`);
//! `--volumes-from`; the volume API (create/ls/inspect/rm/prune, filters, in-use refusal);
//! the local driver's `-o type/device/o` mounts; Docker's errors for bad input with
//! nothing half-made; `docker cp` through volumes and binds; and propagation checked at start.
//!
//! Needs root and a docker CLI; otherwise each test prints SKIP and passes.

#[path = "daemon_common/mod.rs"]
mod daemon_common;

use daemon_common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// A sandbox with busybox and `volimg` (busybox + `/data/file`, owned 42:43 mode 0750 with
/// the file 1234:5678, and `VOLUME /data`) imported, daemon started.
fn sandbox(test: &str) -> Option<Sandbox> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIP {test}: needs root");
        return None;
    }
    let Some(docker) = docker_cli() else {
        eprintln!("SKIP {test}: no docker CLI");
        return None;
    };
    let mut sb = Sandbox::new(docker);
    sb.import_busybox();
    let root = sb.dir.join("volimg-rootfs");
    fs::create_dir_all(root.join("bin")).unwrap();
    fs::create_dir_all(root.join("data/sub")).unwrap();
    fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    for a in ["sh", "cat", "stat", "ls", "touch", "grep", "true"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    fs::write(root.join("data/file"), "from-image\n").unwrap();
    fs::write(root.join("data/sub/deep"), "deep\n").unwrap();
    std::os::unix::fs::chown(root.join("data/file"), Some(1234), Some(5678)).unwrap();
    std::os::unix::fs::chown(root.join("data"), Some(42), Some(43)).unwrap();
    fs::set_permissions(root.join("data"), fs::Permissions::from_mode(0o750)).unwrap();
    let tar = sb.dir.join("volimg.tar");
    assert!(Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap()
        .success());
    let out = Command::new(BERTH)
        .arg("--data-root")
        .arg(sb.data())
        .args(["import", "-c", "CMD [\"sh\"]", "-c", "VOLUME /data"])
        .arg(&tar)
        .arg("volimg:latest")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "berth import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    sb.start_daemon();
    Some(sb)
}

/// Runs docker expecting failure; returns stderr.
fn fails(sb: &Sandbox, args: &[&str]) -> String {
    let o = sb.docker(args);
    assert!(
        !o.status.success(),
        "docker {args:?} should fail: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn volumes(sb: &Sandbox) -> Vec<String> {
    let mut v: Vec<String> = sb
        .ok(&["volume", "ls", "-q"])
        .split_whitespace()
        .map(String::from)
        .collect();
    v.sort();
    v
}

/// Stops the daemon with SIGTERM (a clean shutdown) and starts it again.
fn restart_daemon(sb: &mut Sandbox) {
    if let Some(mut c) = sb.daemon.take() {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = c.wait();
    }
    sb.start_daemon();
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(20), "timed out: {what}");
        sleep(Duration::from_millis(100));
    }
}

#[test]
fn named_volume_outlives_container_restart_and_kill9() {
    let Some(mut sb) = sandbox("named_volume_outlives_container_restart_and_kill9") else {
        return;
    };
    sb.ok(&[
        "run",
        "--name",
        "writer",
        "-v",
        "keep:/d",
        "busybox",
        "sh",
        "-c",
        "echo kept > /d/f",
    ]);
    let mp = sb.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "keep"]);
    assert_eq!(
        Path::new(mp.trim()),
        sb.data().join("volumes/keep/_data"),
        "DESIGN.md's layout"
    );
    sb.ok(&["rm", "writer"]);
    assert_eq!(
        sb.ok(&["run", "--rm", "-v", "keep:/d", "busybox", "cat", "/d/f"]),
        "kept\n"
    );
    restart_daemon(&mut sb);
    assert_eq!(volumes(&sb), vec!["keep"]);
    assert_eq!(
        sb.ok(&["run", "--rm", "-v", "keep:/d", "busybox", "cat", "/d/f"]),
        "kept\n"
    );
    // A container holding the volume across a daemon crash still holds it afterwards.
    sb.ok(&[
        "run", "-d", "--name", "holder", "-v", "keep:/d", "busybox", "sleep", "300",
    ]);
    sb.kill_daemon();
    sb.start_daemon();
    assert_eq!(
        sb.ok(&["run", "--rm", "-v", "keep:/d", "busybox", "cat", "/d/f"]),
        "kept\n"
    );
    let e = fails(&sb, &["volume", "rm", "keep"]);
    assert!(e.contains("volume is in use"), "{e}");
    sb.ok(&["rm", "-f", "holder"]);
    sb.ok(&["volume", "rm", "keep"]);
    assert!(volumes(&sb).is_empty());
    assert!(!sb.data().join("volumes/keep").exists());
}

#[test]
fn anonymous_volumes_and_first_use_copy() {
    let Some(sb) = sandbox("anonymous_volumes_and_first_use_copy") else {
        return;
    };
    // -v /path and the image's VOLUME: anonymous volumes with 64-hex names.
    sb.ok(&[
        "create", "--name", "anon1", "-v", "/anon", "-v", "named:/n", "volimg", "true",
    ]);
    let mounts: serde_json::Value =
        serde_json::from_str(&sb.ok(&["inspect", "-f", "{{json .Mounts}}", "anon1"])).unwrap();
    let mounts = mounts.as_array().unwrap();
    assert_eq!(mounts.len(), 3, "{mounts:?}");
    let by_dest = |d: &str| {
        mounts
            .iter()
            .find(|m| m["Destination"] == d)
            .unwrap_or_else(|| panic!("no mount at {d}: {mounts:?}"))
    };
    for d in ["/anon", "/data"] {
        let m = by_dest(d);
        assert_eq!(m["Type"], "volume");
        assert!(is_hex64(m["Name"].as_str().unwrap()), "{m}");
        assert_eq!(m["Driver"], "local");
        assert_eq!(m["RW"], true);
    }
    let n = by_dest("/n");
    assert_eq!(
        (n["Name"].as_str(), n["Mode"].as_str()),
        (Some("named"), Some("z"))
    );
    let cv = sb.ok(&["inspect", "-f", "{{json .Config.Volumes}}", "anon1"]);
    assert!(cv.contains("\"/anon\"") && cv.contains("\"/data\""), "{cv}");
    assert_eq!(volumes(&sb).len(), 3);
    let labels = sb.ok(&[
        "volume",
        "inspect",
        "-f",
        "{{json .Labels}}",
        by_dest("/anon")["Name"].as_str().unwrap(),
    ]);
    assert!(labels.contains("com.docker.volume.anonymous"), "{labels}");

    // The image's /data was copied into the anonymous volume, ownership and modes kept.
    let anon_data = by_dest("/data")["Source"].as_str().unwrap().to_string();
    let f = Path::new(&anon_data).join("file");
    assert_eq!(fs::read_to_string(&f).unwrap(), "from-image\n");
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(&f).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    let d = fs::metadata(&anon_data).unwrap();
    assert_eq!((d.uid(), d.gid(), d.mode() & 0o7777), (42, 43, 0o750));

    // rm -v removes the anonymous volumes, keeps the named one.
    sb.ok(&["rm", "-v", "anon1"]);
    assert_eq!(volumes(&sb), vec!["named"]);

    // rm without -v keeps them (dangling).
    sb.ok(&["create", "--name", "anon2", "volimg", "true"]);
    sb.ok(&["rm", "anon2"]);
    let dangling = sb.ok(&["volume", "ls", "-q", "--filter", "dangling=true"]);
    assert_eq!(dangling.split_whitespace().count(), 2, "{dangling}");
    // prune removes unused anonymous volumes only; -a the named ones too.
    let out = sb.ok(&["volume", "prune", "-f"]);
    assert!(out.contains("Deleted Volumes"), "{out}");
    assert_eq!(volumes(&sb), vec!["named"]);

    // --rm removes the anonymous volumes when the container exits.
    sb.ok(&["run", "--rm", "-v", "/tmpvol", "volimg", "true"]);
    wait_until("--rm removes its anonymous volumes", || {
        volumes(&sb) == vec!["named".to_string()]
    });

    // Named volume: copied when empty, as the image has it.
    let out = sb.ok(&[
        "run",
        "--rm",
        "-v",
        "fresh:/data",
        "volimg",
        "sh",
        "-c",
        "cat /data/file /data/sub/deep; stat -c '%u:%g %a' /data /data/file",
    ]);
    assert_eq!(out, "from-image\ndeep\n42:43 750\n1234:5678 644\n");
    // ... not when it has content.
    sb.ok(&[
        "run",
        "--rm",
        "-v",
        "own:/x",
        "busybox",
        "sh",
        "-c",
        "echo mine > /x/mine",
    ]);
    let out = sb.ok(&["run", "--rm", "-v", "own:/data", "volimg", "ls", "/data"]);
    assert_eq!(out, "mine\n");
    // ... nor with nocopy.
    let out = sb.ok(&[
        "run",
        "--rm",
        "-v",
        "nc:/data:nocopy",
        "volimg",
        "ls",
        "-A",
        "/data",
    ]);
    assert_eq!(out, "");
    let out = sb.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=nc2,dst=/data,volume-nocopy",
        "volimg",
        "ls",
        "-A",
        "/data",
    ]);
    assert_eq!(out, "");
    let out = sb.ok(&["volume", "prune", "-a", "-f"]);
    assert!(out.contains("fresh") && out.contains("named"), "{out}");
    assert!(volumes(&sb).is_empty());
}

#[test]
fn binds_tmpfs_and_volumes_from() {
    let Some(sb) = sandbox("binds_tmpfs_and_volumes_from") else {
        return;
    };
    let host = sb.dir.join("host");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("f"), "host-data\n").unwrap();
    let h = host.display().to_string();

    // ro refuses writes; rw writes reach the host.
    let o = sb.docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{h}:/h:ro"),
        "busybox",
        "sh",
        "-c",
        "cat /h/f && echo x > /h/new",
    ]);
    assert!(!o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "host-data\n");
    assert!(String::from_utf8_lossy(&o.stderr).contains("Read-only file system"));
    assert!(!host.join("new").exists());
    sb.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{h}:/h"),
        "busybox",
        "sh",
        "-c",
        "echo w > /h/new",
    ]);
    assert_eq!(fs::read_to_string(host.join("new")).unwrap(), "w\n");
    let o = sb.docker(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={h},dst=/h,readonly"),
        "busybox",
        "sh",
        "-c",
        ": > /h/x",
    ]);
    assert!(!o.status.success());

    // -v creates a missing host directory; --mount refuses it with docker's error.
    let missing = sb.dir.join("made/by/v");
    sb.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/m", missing.display()),
        "busybox",
        "sh",
        "-c",
        ": > /m/ok",
    ]);
    assert!(missing.join("ok").exists());
    let nope = sb.dir.join("nope");
    let e = fails(
        &sb,
        &[
            "run",
            "--rm",
            "--mount",
            &format!("type=bind,src={},dst=/m", nope.display()),
            "busybox",
            "true",
        ],
    );
    assert!(
        e.contains(&format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            nope.display()
        )),
        "{e}"
    );
    assert!(!nope.exists());

    // A shared and a private host mount, for propagation.
    let shd = sb.dir.join("shared-mnt");
    let prv = sb.dir.join("private-mnt");
    for (d, flag) in [
        (&shd, nix::mount::MsFlags::MS_SHARED),
        (&prv, nix::mount::MsFlags::MS_PRIVATE),
    ] {
        fs::create_dir_all(d).unwrap();
        nix::mount::mount(
            Some(d.as_path()),
            d.as_path(),
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        nix::mount::mount(None::<&str>, d.as_path(), None::<&str>, flag, None::<&str>).unwrap();
    }
    let shd_s = shd.display().to_string();
    let prv_s = prv.display().to_string();

    // inspect shows binds as docker does.
    sb.ok(&[
        "create",
        "--name",
        "bi",
        "-v",
        &format!("{shd_s}:/h:ro,rslave"),
        "--mount",
        &format!("type=bind,src={h},dst=/h2"),
        "--tmpfs",
        "/t",
        "busybox",
        "true",
    ]);
    let ms: serde_json::Value =
        serde_json::from_str(&sb.ok(&["inspect", "-f", "{{json .Mounts}}", "bi"])).unwrap();
    let ms = ms.as_array().unwrap();
    assert_eq!(ms.len(), 2, "--tmpfs is not listed: {ms:?}");
    let m = ms.iter().find(|m| m["Destination"] == "/h").unwrap();
    assert_eq!(m["Type"], "bind");
    assert_eq!(m["Source"], shd_s.as_str());
    assert_eq!(m["Mode"], "ro,rslave");
    assert_eq!(m["RW"], false);
    assert_eq!(m["Propagation"], "rslave");
    let m = ms.iter().find(|m| m["Destination"] == "/h2").unwrap();
    assert_eq!(
        (m["Mode"].as_str(), m["Propagation"].as_str()),
        (Some(""), Some("rprivate"))
    );
    sb.ok(&["rm", "bi"]);

    // Propagation: shared/slave need a shared host mount (docker's errors); rshared makes a
    // mount made on the host afterwards appear in the container, rprivate does not.
    let e = fails(
        &sb,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{prv_s}:/p:rshared"),
            "busybox",
            "true",
        ],
    );
    assert!(
        e.contains(&format!(
            "path {prv_s} is mounted on {prv_s} but it is not a shared mount"
        )),
        "{e}"
    );
    let e = fails(
        &sb,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{prv_s}:/p:slave"),
            "busybox",
            "true",
        ],
    );
    assert!(e.contains("but it is not a shared or slave mount"), "{e}");
    sb.ok(&[
        "run",
        "-d",
        "--name",
        "prop",
        "-v",
        &format!("{shd_s}:/s:rshared"),
        "-v",
        &format!("{shd_s}:/q"),
        "busybox",
        "sleep",
        "300",
    ]);
    fs::create_dir_all(shd.join("late")).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &shd.join("late"),
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let mounts = sb.ok(&["exec", "prop", "cat", "/proc/mounts"]);
    assert!(mounts.contains(" /s/late tmpfs"), "{mounts}");
    assert!(!mounts.contains(" /q/late "), "{mounts}");
    sb.ok(&["rm", "-f", "prop"]);
    let _ = nix::mount::umount2(&shd.join("late"), nix::mount::MntFlags::MNT_DETACH);

    // tmpfs
    let out = sb.ok(&[
        "run",
        "--rm",
        "--tmpfs",
        "/x:size=1m,mode=1777",
        "busybox",
        "sh",
        "-c",
        "grep ' /x ' /proc/mounts; stat -c %a /x",
    ]);
    assert!(out.starts_with("tmpfs /x tmpfs "), "{out}");
    assert!(
        out.contains("size=1024k") && out.contains("noexec"),
        "{out}"
    );
    assert!(out.ends_with("1777\n"), "{out}");
    let out = sb.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,dst=/y,tmpfs-size=2m,tmpfs-mode=700",
        "busybox",
        "sh",
        "-c",
        "grep ' /y ' /proc/mounts; stat -c %a /y",
    ]);
    assert!(
        out.contains("size=2048k") && out.ends_with("700\n"),
        "{out}"
    );

    // --volumes-from, with :ro
    sb.ok(&[
        "run",
        "--name",
        "src",
        "-v",
        "shared:/s",
        "-v",
        "/anon",
        "-v",
        &format!("{h}:/h"),
        "busybox",
        "sh",
        "-c",
        "echo from-src > /s/f; echo a > /anon/a",
    ]);
    assert_eq!(
        sb.ok(&[
            "run",
            "--rm",
            "--volumes-from",
            "src",
            "busybox",
            "cat",
            "/s/f",
            "/anon/a",
            "/h/f"
        ]),
        "from-src\na\nhost-data\n"
    );
    let o = sb.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "src:ro",
        "busybox",
        "sh",
        "-c",
        "cat /s/f; : > /s/g",
    ]);
    assert!(!o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "from-src\n");
    sb.ok(&[
        "create",
        "--name",
        "user",
        "--volumes-from",
        "src",
        "busybox",
        "true",
    ]);
    let e = fails(&sb, &["volume", "rm", "shared"]);
    assert!(e.contains("volume is in use - ["), "{e}");
    // The source's anonymous volume stays while another container uses it.
    sb.ok(&["rm", "-v", "src"]);
    assert_eq!(volumes(&sb).len(), 2);
    sb.ok(&["rm", "-v", "user"]);
    assert_eq!(volumes(&sb), vec!["shared"]);
    let e = fails(
        &sb,
        &["run", "--rm", "--volumes-from", "ghost", "busybox", "true"],
    );
    assert!(e.contains("No such container: ghost"), "{e}");
}

#[test]
fn volume_api_and_driver_options() {
    let Some(sb) = sandbox("volume_api_and_driver_options") else {
        return;
    };
    assert_eq!(
        sb.ok(&["volume", "create", "--label", "env=prod", "v1"]),
        "v1\n"
    );
    // Creating an existing volume returns it.
    assert_eq!(sb.ok(&["volume", "create", "v1"]), "v1\n");
    let named = sb.ok(&["volume", "create"]);
    assert!(is_hex64(named.trim()), "{named}");
    let v: serde_json::Value = serde_json::from_str(&sb.ok(&["volume", "inspect", "v1"])).unwrap();
    let v = &v[0];
    assert_eq!(v["Name"], "v1");
    assert_eq!(v["Driver"], "local");
    assert_eq!(v["Scope"], "local");
    assert_eq!(v["Labels"]["env"], "prod");
    assert!(v["CreatedAt"].as_str().unwrap().ends_with('Z'), "{v}");
    assert_eq!(
        v["Mountpoint"].as_str().unwrap(),
        sb.data().join("volumes/v1/_data").display().to_string()
    );
    assert_eq!(
        sb.ok(&["volume", "ls", "-q", "-f", "label=env=prod"]),
        "v1\n"
    );
    assert_eq!(sb.ok(&["volume", "ls", "-q", "-f", "name=v1"]), "v1\n");
    assert_eq!(
        sb.ok(&["volume", "ls", "-q", "-f", "driver=local"])
            .lines()
            .count(),
        2
    );
    assert!(fails(&sb, &["volume", "ls", "-f", "bogus=1"]).contains("invalid filter 'bogus'"));
    let e = fails(&sb, &["volume", "inspect", "nosuch"]);
    assert!(e.contains("get nosuch: no such volume"), "{e}");
    let e = fails(&sb, &["volume", "rm", "nosuch"]);
    assert!(e.contains("no such volume"), "{e}");
    sb.ok(&["volume", "rm", "-f", "nosuch"]);

    // In use (even by a stopped container): refused with docker's error; -f does not help.
    let id = sb.ok(&["create", "-v", "v1:/v", "busybox", "true"]);
    let id = id.trim();
    let e = fails(&sb, &["volume", "rm", "v1"]);
    assert!(
        e.contains(&format!("remove v1: volume is in use - [{id}]")),
        "{e}"
    );
    assert!(fails(&sb, &["volume", "rm", "-f", "v1"]).contains("volume is in use"));
    assert_eq!(
        sb.ok(&["ps", "-a", "--no-trunc", "-q", "--filter", "volume=v1"])
            .trim(),
        id
    );
    assert_eq!(sb.ok(&["ps", "-a", "-q", "--filter", "volume=other"]), "");
    assert_eq!(
        sb.ok(&["volume", "ls", "-q", "-f", "dangling=false"]),
        "v1\n"
    );
    // Not pruned while in use.
    sb.ok(&["volume", "prune", "-a", "-f"]);
    assert_eq!(volumes(&sb), vec!["v1"]);
    sb.ok(&["rm", id]);
    sb.ok(&["volume", "rm", "v1"]);
    assert!(!sb.data().join("volumes/v1").exists());

    // Events and system df.
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let t0 = now() - 1;
    sb.ok(&[
        "run",
        "--rm",
        "-v",
        "evvol:/e",
        "busybox",
        "sh",
        "-c",
        "echo 12345 > /e/f",
    ]);
    let df = sb.ok(&["system", "df", "-v", "--format", "{{json .Volumes}}"]);
    assert!(df.contains("\"evvol\""), "{df}");
    let df = sb.ok(&["system", "df", "--format", "{{.Type}} {{.TotalCount}}"]);
    let n = volumes(&sb).len();
    assert!(df.contains(&format!("Local Volumes {n}")), "{df}");
    sb.ok(&["volume", "rm", "evvol"]);
    let ev = sb.ok(&[
        "events",
        "--since",
        &t0.to_string(),
        "--until",
        &(now() + 1).to_string(),
        "--filter",
        "type=volume",
        "--filter",
        "volume=evvol",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(ev, "create\nmount\nunmount\ndestroy\n");

    // -o type=tmpfs: mounted while a container uses it, unmounted when it stops.
    sb.ok(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "tv",
    ]);
    let opts = sb.ok(&["volume", "inspect", "-f", "{{json .Options}}", "tv"]);
    assert_eq!(
        opts.trim(),
        r#"{"device":"tmpfs","o":"size=1m","type":"tmpfs"}"#
    );
    let out = sb.ok(&[
        "run",
        "--rm",
        "-v",
        "tv:/t",
        "busybox",
        "sh",
        "-c",
        "grep ' /t ' /proc/mounts",
    ]);
    assert!(
        out.starts_with("tmpfs /t tmpfs") && out.contains("size=1024k"),
        "{out}"
    );
    let data = sb.data().join("volumes/tv/_data");
    let mounted = || {
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(data.to_str().unwrap()))
    };
    wait_until("tmpfs volume unmounted after its container", || !mounted());
    sb.ok(&[
        "run", "-d", "--name", "tvr", "-v", "tv:/t", "busybox", "sleep", "300",
    ]);
    assert!(mounted());
    sb.ok(&["rm", "-f", "tvr"]);
    wait_until("tmpfs volume unmounted after rm -f", || !mounted());

    // --mount volume-opt and volume-label make the volume on demand.
    let out = sb.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=mv,dst=/m,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-label=k=v",
        "busybox",
        "sh",
        "-c",
        "grep ' /m ' /proc/mounts",
    ]);
    assert!(out.starts_with("tmpfs /m tmpfs"), "{out}");
    assert_eq!(
        sb.ok(&[
            "volume",
            "inspect",
            "-f",
            "{{json .Labels}} {{json .Options}}",
            "mv"
        ])
        .trim(),
        r#"{"k":"v"} {"device":"tmpfs","type":"tmpfs"}"#
    );
    sb.ok(&["volume", "rm", "mv"]);

    // -o type=none,o=bind: the device directory is the volume's data; rm leaves it alone.
    let dev = sb.dir.join("bind-device");
    fs::create_dir_all(&dev).unwrap();
    sb.ok(&[
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        &format!("device={}", dev.display()),
        "-o",
        "o=bind",
        "bv",
    ]);
    sb.ok(&[
        "run",
        "--rm",
        "-v",
        "bv:/b",
        "busybox",
        "sh",
        "-c",
        "echo via > /b/x",
    ]);
    assert_eq!(fs::read_to_string(dev.join("x")).unwrap(), "via\n");
    sb.ok(&["volume", "rm", "bv"]);
    assert_eq!(fs::read_to_string(dev.join("x")).unwrap(), "via\n");

    // Bad options: docker's errors, nothing made.
    let e = fails(&sb, &["volume", "create", "-o", "foo=bar", "xx"]);
    assert!(e.contains("create xx: invalid option: \"foo\""), "{e}");
    let e = fails(&sb, &["volume", "create", "-o", "type=tmpfs", "xx"]);
    assert!(e.contains("missing required option: \"device\""), "{e}");
    let e = fails(&sb, &["volume", "create", "-d", "nodriver", "xx"]);
    assert!(e.contains("error looking up volume plugin nodriver"), "{e}");
    let e = fails(&sb, &["volume", "create", "a/b"]);
    assert!(
        e.contains("includes invalid characters for a local volume name"),
        "{e}"
    );
    assert!(!sb.data().join("volumes/xx").exists());
    assert!(!sb.data().join("volumes/a").exists());
    assert_eq!(volumes(&sb), vec!["tv".to_string()]);
}

#[test]
fn bad_mounts_are_refused_with_nothing_made() {
    let Some(sb) = sandbox("bad_mounts_are_refused_with_nothing_made") else {
        return;
    };
    let cases: &[(&[&str], &str)] = &[
        (&["-v", "okvol:rel"], "invalid volume specification: 'okvol:rel': invalid mount config for type \"volume\": invalid mount path: 'rel' mount path must be absolute"),
        (&["-v", "okvol:/x:bogus"], "invalid mode: bogus"),
        (&["-v", "okvol:/x:ro,rw"], "invalid mode: ro,rw"),
        (&["-v", "/x:rw"], "invalid volume specification: '/x:rw'"),
        (&["-v", "okvol:/x", "-v", "other:/x"], "Duplicate mount point: /x"),
        (&["-v", "okvol:/x", "--tmpfs", "/x"], "Duplicate mount point: /x"),
        (&["-v", "okvol:/x", "--mount", "type=volume,src=other,dst=/x"], "Duplicate mount point: /x"),
        (&["--mount", "type=volume,src=okvol,dst=/x,volume-driver=nodriver"], "error looking up volume plugin nodriver"),
        (&["-v", "okvol:/x", "--volume-driver", "nodriver"], "error looking up volume plugin nodriver"),
        (&["-v", "okvol:/x", "-v", "a/b:/y"], "invalid characters for a local volume name"),
        (&["-v", "okvol:/x", "--volumes-from", "ghost"], "No such container: ghost"),
        (&["-v", "okvol:/"], "destination can't be '/'"),
        (
            &["--mount", "type=volume,dst=/x,readonly"],
            "must not set ReadOnly mode when using anonymous volumes",
        ),
        (
            &["--mount", "type=volume,src=okvol,dst=/x,volume-opt=bogus=1"],
            "create okvol: invalid option: \"bogus\"",
        ),
        // Fails after the volumes were made (the bundle): they are removed again.
        (
            &["-v", "okvol:/x", "-v", "/anon", "--user", "nosuchuser"],
            "unable to find user nosuchuser",
        ),
    ];
    for (flags, want) in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["busybox", "true"]);
        let e = fails(&sb, &args);
        assert!(e.contains(want), "docker {args:?}: want {want:?}, got {e}");
        assert!(e.contains("Error response from daemon"), "{e}");
    }
    assert!(volumes(&sb).is_empty(), "a failed create left volumes");
    assert_eq!(sb.ok(&["ps", "-aq"]), "", "a failed create left containers");
    let vdir = sb.data().join("volumes");
    let left: Vec<_> = fs::read_dir(&vdir)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "volume dirs left: {left:?}");
}

/// Mount points under the sandbox in the daemon's (the host's) mount table.
fn host_mounts_under(sb: &Sandbox) -> Vec<String> {
    let needle = sb.dir.display().to_string();
    let mut v: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(String::from))
        .filter(|p| p.starts_with(&needle))
        .collect();
    v.sort();
    v
}

/// Names in a tar stream.
fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut c = Command::new("tar")
        .args(["-tf", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        c.stdin.take().unwrap().write_all(tar).unwrap();
    }
    let o = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// `docker cp` sees a container's volumes and bind mounts as dockerd does (a private mount
/// namespace with them mounted in the root filesystem): copies into and out of a named
/// volume and a bind land in / come from their sources, for a running, a stopped and a
/// never-started container; a `:ro` bind and a `--read-only` rootfs refuse writes with
/// dockerd's messages while a volume of that container takes them; a symlink in a volume
/// pointing at / stays inside the container; and no mount of the copy's view shows up in the
/// host's mount table.
#[test]
fn cp_sees_volumes_and_binds() {
    let Some(sb) = sandbox("cp_sees_volumes_and_binds") else {
        return;
    };
    let host = sb.dir.join("cp-bind");
    let src = sb.dir.join("cp-src");
    fs::create_dir_all(&host).unwrap();
    fs::create_dir_all(src.join("tree/sub")).unwrap();
    fs::write(host.join("hf"), "host-file\n").unwrap();
    fs::write(src.join("f"), "to-volume\n").unwrap();
    fs::write(src.join("g"), "while-stopped\n").unwrap();
    fs::write(src.join("tree/sub/deep"), "deep\n").unwrap();
    let hs = host.display().to_string();
    let p = |n: &str| src.join(n).display().to_string();
    let out = |n: &str| sb.dir.join(n).display().to_string();

    sb.ok(&[
        "run",
        "-d",
        "--name",
        "cpv",
        "-v",
        "cpvol:/vol",
        "-v",
        &format!("{hs}:/bnd"),
        "-v",
        &format!("{hs}:/bro:ro"),
        "busybox",
        "sleep",
        "300",
    ]);
    let mounts = host_mounts_under(&sb);
    let data = sb.data().join("volumes/cpvol/_data");

    // Host to the volume: in the volume's data and seen by the container.
    sb.ok(&["cp", &p("f"), "cpv:/vol/"]);
    assert_eq!(fs::read_to_string(data.join("f")).unwrap(), "to-volume\n");
    assert_eq!(sb.ok(&["exec", "cpv", "cat", "/vol/f"]), "to-volume\n");
    // A directory into the bind.
    sb.ok(&["cp", &p("tree"), "cpv:/bnd/"]);
    assert_eq!(
        fs::read_to_string(host.join("tree/sub/deep")).unwrap(),
        "deep\n"
    );
    // Out of the bind and of the read-only bind; a volume directory as a tar.
    sb.ok(&["cp", "cpv:/bnd/hf", &out("hf.out")]);
    assert_eq!(fs::read_to_string(out("hf.out")).unwrap(), "host-file\n");
    sb.ok(&["cp", "cpv:/bro/tree/sub/deep", &out("deep.out")]);
    assert_eq!(fs::read_to_string(out("deep.out")).unwrap(), "deep\n");
    let o = sb.docker(&["cp", "cpv:/vol", "-"]);
    assert!(o.status.success());
    let names = tar_names(&o.stdout);
    assert!(names.iter().any(|n| n == "vol/f"), "{names:?}");
    // `docker cp` of the container's root sees the volume too.
    let o = sb.docker(&["cp", "cpv:/bnd/tree", "-"]);
    assert!(tar_names(&o.stdout).iter().any(|n| n == "tree/sub/deep"));
    // A read-only bind refuses writes (dockerd's message) and nothing lands in the source.
    let e = fails(&sb, &["cp", &p("f"), "cpv:/bro/"]);
    assert!(
        e.contains("Error response from daemon: mounted volume is marked read-only"),
        "{e}"
    );
    assert!(!host.join("f").exists());
    // The copies' views never show in the host's mount table.
    assert_eq!(host_mounts_under(&sb), mounts);

    // A symlink in the volume pointing at / resolves inside the container.
    let marker = format!("berth-cp-escape-{}", std::process::id());
    std::os::unix::fs::symlink("/../../../..", data.join("esc")).unwrap();
    fs::write(src.join(&marker), "inside\n").unwrap();
    sb.ok(&["cp", &p(&marker), "cpv:/vol/esc/"]);
    assert!(
        !Path::new("/").join(&marker).exists(),
        "escaped to the host"
    );
    assert_eq!(
        sb.ok(&["exec", "cpv", "cat", &format!("/{marker}")]),
        "inside\n"
    );

    // Stopped: still the volume's and the bind's files.
    sb.ok(&["stop", "-t", "1", "cpv"]);
    sb.ok(&["cp", &p("g"), "cpv:/vol/"]);
    assert_eq!(
        fs::read_to_string(data.join("g")).unwrap(),
        "while-stopped\n"
    );
    sb.ok(&["cp", "cpv:/bnd/hf", &out("hf2.out")]);
    assert_eq!(fs::read_to_string(out("hf2.out")).unwrap(), "host-file\n");
    let e = fails(&sb, &["cp", &p("g"), "cpv:/bro/"]);
    assert!(e.contains("mounted volume is marked read-only"), "{e}");

    // Created, never started: the mount point does not exist in the rootfs yet.
    sb.ok(&[
        "create",
        "--name",
        "cpn",
        "-v",
        "cpvol2:/fresh/v",
        "busybox",
        "true",
    ]);
    sb.ok(&["cp", &p("f"), "cpn:/fresh/v/"]);
    assert_eq!(
        fs::read_to_string(sb.data().join("volumes/cpvol2/_data/f")).unwrap(),
        "to-volume\n"
    );

    // --read-only: the rootfs refuses (dockerd's message), a volume of it takes the copy.
    sb.ok(&[
        "create",
        "--name",
        "cpro",
        "--read-only",
        "-v",
        "cpvol:/vol",
        "busybox",
        "true",
    ]);
    let e = fails(&sb, &["cp", &p("f"), "cpro:/"]);
    assert!(
        e.contains("Error response from daemon: container rootfs is marked read-only"),
        "{e}"
    );
    fs::write(src.join("h"), "ro-rootfs-volume\n").unwrap();
    sb.ok(&["cp", &p("h"), "cpro:/vol/"]);
    assert_eq!(
        fs::read_to_string(data.join("h")).unwrap(),
        "ro-rootfs-volume\n"
    );
    // Reading from a read-only container works.
    sb.ok(&["cp", "cpro:/vol/h", &out("h.out")]);
    assert_eq!(
        fs::read_to_string(out("h.out")).unwrap(),
        "ro-rootfs-volume\n"
    );

    sb.ok(&["rm", "-f", "cpv", "cpn", "cpro"]);
    let left: Vec<String> = host_mounts_under(&sb)
        .into_iter()
        .filter(|m| m.contains("/containers/") || m.contains("/volumes/"))
        .collect();
    assert!(left.is_empty(), "mounts left: {left:?}");
}

/// Shared and slave bind propagation is checked when the container starts (dockerd checks it
/// when it makes the spec): create succeeds, start fails with dockerd's message (a server
/// error), the container stays created; `run --rm` exits 125 and leaves no container.
/// Unknown volume drivers and `--volumes-from` containers answer as dockerd: 404 for
/// `volume create -d`, 400 on container create (dockerd's 404 there would make the docker
/// CLI try to pull the image).
#[test]
fn propagation_at_start_and_error_codes() {
    let Some(sb) = sandbox("propagation_at_start_and_error_codes") else {
        return;
    };
    let prv = sb.dir.join("private-mnt");
    fs::create_dir_all(&prv).unwrap();
    nix::mount::mount(
        Some(prv.as_path()),
        prv.as_path(),
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    nix::mount::mount(
        None::<&str>,
        prv.as_path(),
        None::<&str>,
        nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .unwrap();
    let ps = prv.display().to_string();
    sb.ok(&[
        "create",
        "--name",
        "pshared",
        "-v",
        &format!("{ps}:/p:rshared"),
        "busybox",
        "true",
    ]);
    let e = fails(&sb, &["start", "pshared"]);
    assert!(
        e.contains(&format!(
            "Error response from daemon: path {ps} is mounted on {ps} but it is not a shared mount"
        )),
        "{e}"
    );
    assert_eq!(
        sb.ok(&["inspect", "-f", "{{.State.Status}}", "pshared"])
            .trim(),
        "created"
    );
    let o = sb.docker(&[
        "run",
        "--rm",
        "--name",
        "pslave",
        "--mount",
        &format!("type=bind,src={ps},dst=/p,bind-propagation=slave"),
        "busybox",
        "true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains(&format!(
            "path {ps} is mounted on {ps} but it is not a shared or slave mount"
        )),
        "{e}"
    );
    assert_eq!(sb.ok(&["ps", "-aq", "--filter", "name=pslave"]), "");
    sb.ok(&["rm", "pshared"]);

    // Status codes through the API.
    let status = |path: &str, body: &str| -> (String, String) {
        let o = Command::new("curl")
            .args(["-s", "-w", "\n%{http_code}", "--unix-socket"])
            .arg(sb.sock())
            .args([
                "-X",
                "POST",
                "-H",
                "Content-Type: application/json",
                "-d",
                body,
            ])
            .arg(format!("http://berth/v1.41{path}"))
            .output()
            .unwrap();
        let s = String::from_utf8_lossy(&o.stdout).into_owned();
        let (b, c) = s.rsplit_once('\n').unwrap();
        (c.to_string(), b.to_string())
    };
    if Command::new("curl").arg("--version").output().is_ok() {
        let (code, body) = status("/volumes/create", r#"{"Name":"nv","Driver":"nosuch"}"#);
        assert_eq!(code, "404", "{body}");
        assert!(
            body.contains(
                r#"create nv: error looking up volume plugin nosuch: plugin \"nosuch\" not found"#
            ),
            "{body}"
        );
        let (code, body) = status(
            "/containers/create",
            r#"{"Image":"busybox","HostConfig":{"VolumesFrom":["nosuch"]}}"#,
        );
        assert_eq!(code, "400", "{body}");
        assert!(body.contains("No such container: nosuch"), "{body}");
    }
    let o = sb.docker(&["volume", "create", "-d", "nosuch", "nv"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains(
        "Error response from daemon: create nv: error looking up volume plugin nosuch: plugin \"nosuch\" not found"
    ));
    let o = sb.docker(&["run", "--rm", "--volumes-from", "nosuch", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("docker: Error response from daemon: No such container: nosuch"),
        "{e}"
    );
    assert!(!e.contains("Unable to find image"), "{e}");
    assert!(volumes(&sb).is_empty());
}
