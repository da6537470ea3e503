//! OCI lifecycle hooks: run a hook program with the container state on its stdin, its own
//! args and env, and an optional timeout (seconds) after which it is killed.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

/// A hook that failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{stage} hook {path}: cannot start: {source}")]
    Spawn {
        stage: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{stage} hook {path} failed ({status}): {stderr}")]
    Failed {
        stage: &'static str,
        path: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("{stage} hook {path} timed out after {secs}s and was killed")]
    Timeout {
        stage: &'static str,
        path: PathBuf,
        secs: i64,
    },
}

/// Run hooks in order; stop at the first failure.
pub fn run(stage: &'static str, hooks: &[Hook], state_json: &[u8]) -> Result<(), Error> {
    for h in hooks {
        run_one(stage, h, state_json)?;
    }
    Ok(())
}

fn run_one(stage: &'static str, h: &Hook, state_json: &[u8]) -> Result<(), Error> {
    let path = h.path().clone();
    let mut cmd = Command::new(&path);
    if let Some(args) = h.args() {
        if let Some((first, rest)) = args.split_first() {
            use std::os::unix::process::CommandExt;
            cmd.arg0(first);
            cmd.args(rest);
        }
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| Error::Spawn {
        stage,
        path: path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine: ignore EPIPE.
        let _ = stdin.write_all(state_json);
    }
    let deadline = h
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| (t, Instant::now() + Duration::from_secs(t as u64)));
    let status = loop {
        if deadline.is_none() {
            break child.wait().map_err(|source| Error::Spawn {
                stage,
                path: path.clone(),
                source,
            })?;
        }
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(source) => {
                return Err(Error::Spawn {
                    stage,
                    path,
                    source,
                })
            }
        }
        if let Some((secs, d)) = deadline {
            if Instant::now() >= d {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Timeout { stage, path, secs });
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read;
        let _ = e.read_to_string(&mut stderr);
    }
    Err(Error::Failed {
        stage,
        path,
        status: status.to_string(),
        stderr: stderr.trim().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn hook_gets_state_on_stdin() {
        let out = std::env::temp_dir().join(format!("berth-hook-{}", std::process::id()));
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {}"]}}"#,
            out.display()
        ));
        run("test", &[h], b"{\"id\":\"x\"}").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "{\"id\":\"x\"}");
        std::fs::remove_file(out).unwrap();
    }

    #[test]
    fn failing_and_slow_hooks_are_errors() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","echo nope >&2; exit 3"]}"#);
        let e = run("prestart", &[h], b"{}").unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("prestart"), "{e}");
        let h = hook(r#"{"path":"/bin/sleep","args":["sleep","5"],"timeout":1}"#);
        assert!(matches!(run("x", &[h], b"{}"), Err(Error::Timeout { .. })));
    }
}
