//! The channel between the runtime command and the processes it starts (intermediate, init,
//! exec'd process): a SOCK_SEQPACKET socketpair carrying one small JSON message per packet, and
//! unix-socket fd passing (SCM_RIGHTS) for terminals.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};
use serde::{Deserialize, Serialize};

/// Errors on the sync channel.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("sync channel: {0}")]
    Sys(#[from] nix::Error),
    #[error("sync channel: bad message: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("the container process exited before it was ready (see errors above)")]
    Closed,
    #[error("expected {expected} from the container process, got {got}")]
    Unexpected { expected: &'static str, got: String },
    #[error("no file descriptor was passed over the socket")]
    NoFd,
}

type Result<T> = std::result::Result<T, Error>;

/// Messages exchanged during create and exec.
#[derive(Debug, Serialize, Deserialize)]
pub enum Msg {
    /// intermediate -> runtime: host pid of the process it cloned.
    Pid(i32),
    /// runtime -> child: cgroups and id maps are in place; go on. Carries the OCI state JSON
    /// (for hooks run inside the container).
    Go(String),
    /// runtime -> init: the init is in its cgroup (it may now create its cgroup namespace and
    /// mount cgroup filesystems). Sent after `Go`, so the init mounts while the slow cgroup
    /// migration (an RCU grace period in the kernel) is under way.
    CgroupReady,
    /// init -> runtime: namespaces and mounts are ready; run prestart/createRuntime hooks now.
    RunHooks,
    /// runtime -> init: hooks done.
    HooksDone,
    /// child -> runtime: set up and waiting (create) — for exec, EOF on exec means success.
    Ready,
    /// either way: something failed; the text says what.
    Error(String),
}

/// One end of the channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// A connected pair (both ends close on exec).
pub fn pair() -> Result<(Channel, Channel)> {
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    Ok((Channel { fd: a }, Channel { fd: b }))
}

impl Channel {
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Send one message.
    pub fn send(&self, m: &Msg) -> Result<()> {
        let body = serde_json::to_vec(m)?;
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &[IoSlice::new(&body)],
            &[],
            MsgFlags::MSG_NOSIGNAL,
            None,
        )?;
        Ok(())
    }

    /// Receive one message; `Ok(None)` at end of stream (peer closed or exec'd).
    pub fn recv(&self) -> Result<Option<Msg>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let mut iov = [IoSliceMut::new(&mut buf)];
            match recvmsg::<()>(
                self.fd.as_raw_fd(),
                &mut iov,
                None,
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(r) if r.bytes == 0 => return Ok(None),
                Ok(r) => {
                    let n = r.bytes;
                    return Ok(Some(serde_json::from_slice(&buf[..n])?));
                }
                Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Receive and require a given message (an Error message becomes the error text).
    pub fn expect(&self, expected: &'static str, ok: impl Fn(&Msg) -> bool) -> Result<Msg> {
        match self.recv()? {
            None => Err(Error::Closed),
            Some(Msg::Error(e)) => Err(Error::Unexpected { expected, got: e }),
            Some(m) if ok(&m) => Ok(m),
            Some(m) => Err(Error::Unexpected {
                expected,
                got: format!("{m:?}"),
            }),
        }
    }
}

/// Pass a file descriptor over a unix socket with a short name as payload (runc's console protocol).
pub fn send_fd(sock: impl AsFd, name: &str, fd: RawFd) -> Result<()> {
    let fds = [fd];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    sendmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &[IoSlice::new(name.as_bytes())],
        &cmsg,
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}

/// Receive a file descriptor passed with [`send_fd`].
pub fn recv_fd(sock: impl AsFd) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    for c in msg.cmsgs().map_err(Error::Sys)? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY: the kernel just installed this descriptor for us; we own it now.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    Err(Error::NoFd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let (a, b) = pair().unwrap();
        a.send(&Msg::Pid(42)).unwrap();
        assert!(matches!(b.recv().unwrap(), Some(Msg::Pid(42))));
        b.send(&Msg::Error("boom".into())).unwrap();
        let e = a.expect("Go", |m| matches!(m, Msg::Go(_))).unwrap_err();
        assert!(e.to_string().contains("boom"));
        drop(b);
        assert!(a.recv().unwrap().is_none());
    }

    #[test]
    fn fds_pass() {
        let (a, b) = pair().unwrap();
        let f = std::fs::File::open("/proc/self/stat").unwrap();
        send_fd(&a.fd, "x", f.as_raw_fd()).unwrap();
        let got = recv_fd(&b.fd).unwrap();
        assert!(got.as_raw_fd() >= 0);
    }
}
