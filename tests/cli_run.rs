//! `berth run` from an image (made with `berth import`): output, docker's exit codes
//! (container's own, 125 berth failure, 127 command not found), Docker's default seccomp
//! profile and capabilities applied, two containers at once from one data root, and no
//! container directory or mount left afterwards.

#[path = "images_common/mod.rs"]
mod common;

use common::Sandbox;

fn setup(test: &str) -> Option<(Sandbox, std::path::PathBuf)> {
    let sb = Sandbox::new(test, &[])?;
    let root = sb.data_root("run");
    let tar = sb.busybox_tar();
    sb.b_ok(&root, &["import", tar.to_str().unwrap(), "bbrun:1"]);
    Some((sb, root))
}

#[test]
fn run_prints_output_and_returns_dockers_exit_codes() {
    let Some((sb, root)) = setup("run_exit_codes") else {
        return;
    };
    let out = sb.b(
        &root,
        &["run", "--rm", "bbrun:1", "sh", "-c", "echo hello; exit 3"],
    );
    assert_eq!(out.code(), Some(3), "{out}");
    assert_eq!(out.stdout.trim(), "hello", "{out}");
    let out = sb.b(&root, &["run", "--rm", "bbrun:1", "no-such-command"]);
    assert_eq!(out.code(), Some(127), "{out}");
    assert!(out.stderr.contains("executable file not found"), "{out}");
    let out = sb.b(
        &root,
        &[
            "run",
            "--rm",
            "-e",
            "A=b",
            "-w",
            "/tmp",
            "bbrun:1",
            "sh",
            "-c",
            "echo $A $(pwd) $(hostname | wc -c)",
        ],
    );
    assert_eq!(
        out.stdout.trim(),
        "b /tmp 13",
        "env, workdir and a 12-char hostname: {out}"
    );
    assert!(
        std::fs::read_dir(root.join("containers"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "no container directory left"
    );
}

#[test]
fn run_applies_dockers_default_seccomp_profile_and_capabilities() {
    let Some((sb, root)) = setup("run_security") else {
        return;
    };
    let out = sb.b(&root, &["run", "--rm", "bbrun:1", "unshare", "-n", "true"]);
    assert_ne!(out.code(), Some(0), "unshare must be refused: {out}");
    assert!(out.stderr.contains("Operation not permitted"), "{out}");
    let out = sb.b(
        &root,
        &[
            "run",
            "--rm",
            "--security-opt",
            "seccomp=unconfined",
            "--cap-add",
            "SYS_ADMIN",
            "bbrun:1",
            "unshare",
            "-n",
            "true",
        ],
    );
    assert_eq!(out.code(), Some(0), "{out}");
    let out = sb.b(
        &root,
        &[
            "run",
            "--rm",
            "--cap-drop",
            "CHOWN",
            "bbrun:1",
            "chown",
            "1:1",
            "/tmp",
        ],
    );
    assert_ne!(out.code(), Some(0), "chown without CAP_CHOWN: {out}");
}

#[test]
fn two_containers_run_at_once_from_one_data_root() {
    let Some((sb, root)) = setup("run_concurrent") else {
        return;
    };
    let mut first = sb.berth(&root);
    first.args(["run", "--rm", "bbrun:1", "sh", "-c", "sleep 1; echo first"]);
    first.stdout(std::process::Stdio::piped());
    let child = first.spawn().expect("spawn berth run");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let out = sb.b(&root, &["run", "--rm", "bbrun:1", "echo", "second"]);
    assert_eq!(out.stdout.trim(), "second", "{out}");
    let done = child.wait_with_output().expect("wait");
    assert_eq!(String::from_utf8_lossy(&done.stdout).trim(), "first");
    assert!(done.status.success());
}
