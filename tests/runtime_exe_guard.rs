//! The runtime binary cannot be overwritten from inside a container (the CVE-2019-5736
//! class): while a container's init is still the runtime (created, not started), a process in
//! the container — even one holding CAP_SYS_PTRACE and CAP_DAC_OVERRIDE — cannot write to it
//! through /proc/1/exe, and the host binary stays byte-for-byte the same.

mod common;

use common::*;

fn file_hash(p: &std::path::Path) -> (u64, Vec<u8>) {
    let data = std::fs::read(p).unwrap();
    (
        data.len() as u64,
        data[data.len().saturating_sub(4096)..].to_vec(),
    )
}

#[test]
fn proc_exe_of_the_runtime_is_not_writable_from_the_container() {
    if !require_root() || is_runc() {
        // runc 1.1 uses a memfd copy: also safe, but the messages differ; this test is berth's.
        return;
    }
    let env = TestEnv::new("exeguard");
    let b = env.bundle(|s| {
        set_args(s, &["sleep", "1000"]);
        let all = host_bounding_caps();
        set_caps(s, &all);
    });
    // Created, not started: pid 1 in the container is still the runtime binary.
    env.create(&b).assert_ok();
    let (prog, _) = runtime_program();
    let before = file_hash(&prog);
    let out = env.exec_with(
        &["--cap", "CAP_SYS_PTRACE"],
        &b.id,
        &[
            "sh",
            "-c",
            "readlink /proc/1/exe; if echo pwned >> /proc/1/exe; then echo WROTE; else echo refused; fi",
        ],
    );
    assert!(out.stdout.contains("refused"), "{out}");
    assert!(!out.stdout.contains("WROTE"), "{out}");
    assert!(
        out.stderr.contains("Read-only file system")
            || out.stderr.contains("Permission denied")
            || out.stderr.contains("Text file busy"),
        "the write is refused: {out}"
    );
    // What the container reaches is the read-only bind, so even once no process runs the
    // binary (no ETXTBSY), a write through a descriptor kept from /proc/1/exe gets EROFS.
    let seen = out.stdout.lines().next().unwrap_or_default().to_string();
    assert!(
        seen.starts_with("/run/berth/exe/") && seen.ends_with("/berth"),
        "{out}"
    );
    assert_eq!(before, file_hash(&prog), "host binary changed");
    // The binary the container sees is the read-only bind, never the writable original.
    let sealed = std::path::Path::new(&seen);
    assert!(sealed.exists());
    let st = nix::sys::statvfs::statvfs(sealed).unwrap();
    assert!(st.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
    match std::fs::OpenOptions::new().append(true).open(sealed) {
        Ok(_) => panic!("the sealed binary opened for writing"),
        Err(e) => assert!(
            matches!(e.raw_os_error(), Some(libc::EROFS) | Some(libc::ETXTBSY)),
            "{e}"
        ),
    }
    env.delete_force(&b.id).assert_ok();
}
