//! Running an attach or exec session on a taken-over connection: the backend's output goes
//! to the client (raw with a TTY, multiplexed otherwise) until it ends; what the client sends
//! goes to the backend's [`AttachStdin`](crate::stream::AttachStdin), whose end of file is the
//! client's half-close; with a TTY the detach keys end the session without closing stdin.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use super::http::{frames_to_bytes, Hijack};
use crate::stream::{DetachKeys, DetachScanner, FrameStream, Scan, StdinFeeder};

/// How long output ready at once waits for the client to be reading the raw stream, when the
/// connection's socket is not known.
pub(crate) const FIRST_OUTPUT_GRACE: Duration = Duration::from_millis(10);
/// The longest the first output waits for the client to read the answer's head.
const HEAD_READ_LIMIT: Duration = Duration::from_millis(250);

/// Bytes sent on the socket `fd` that the peer has not taken yet (a unix socket: not yet read
/// by the peer process; TCP: not yet acknowledged). None if the socket cannot say.
fn unread(fd: std::os::fd::RawFd) -> Option<i32> {
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ (SIOCOUTQ) stores one int through the valid pointer; `fd` is the open
    // connection socket, alive for as long as the session's `io` (which owns it).
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    (r == 0).then_some(n)
}

/// Waits until the client has read the answer's head (101/200), so the first output is not
/// taken into an HTTP library's header buffer and lost (docker-py reads the raw socket past
/// http.client's buffer); bounded by [`HEAD_READ_LIMIT`]. Without the socket, a short grace.
async fn head_read(fd: Option<std::os::fd::RawFd>) {
    let Some(fd) = fd else {
        tokio::time::sleep(FIRST_OUTPUT_GRACE).await;
        return;
    };
    let deadline = Instant::now() + HEAD_READ_LIMIT;
    loop {
        match unread(fd) {
            Some(0) => return,
            Some(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(1)).await
            }
            _ => return,
        }
    }
}

/// Runs the session; `prefix` is input the client sent before the hijack was answered.
pub(crate) async fn run<IO>(io: IO, prefix: Bytes, h: Hijack, fd: Option<std::os::fd::RawFd>)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let Hijack { session, stdin, .. } = h;
    let keys = if session.tty {
        session.detach_keys
    } else {
        None
    };
    let (rd, mut wr) = tokio::io::split(io);
    let (detach_tx, mut detach_rx) = oneshot::channel::<()>();
    let input_seen = Arc::new(Notify::new());
    let input = tokio::spawn(input_loop(
        rd,
        prefix,
        stdin,
        keys,
        detach_tx,
        input_seen.clone(),
    ));
    tokio::select! {
        _ = output_loop(&mut wr, session.output, session.tty, fd, input_seen) => {}
        Ok(()) = &mut detach_rx => {}
    }
    let _ = wr.shutdown().await;
    input.abort();
}

async fn output_loop<W: AsyncWrite + Unpin>(
    wr: &mut W,
    output: FrameStream,
    tty: bool,
    fd: Option<std::os::fd::RawFd>,
    input_seen: Arc<Notify>,
) {
    let bytes = frames_to_bytes(output, tty);
    tokio::pin!(bytes);
    let mut first = true;
    while let Some(b) = bytes.next().await {
        if first {
            first = false;
            tokio::select! {
                _ = input_seen.notified() => {}
                _ = head_read(fd) => {}
            }
        }
        if wr.write_all(&b).await.is_err() || wr.flush().await.is_err() {
            return;
        }
    }
}

async fn input_loop<R: AsyncRead + Unpin>(
    mut rd: R,
    prefix: Bytes,
    mut stdin: Option<StdinFeeder>,
    keys: Option<DetachKeys>,
    detach: oneshot::Sender<()>,
    input_seen: Arc<Notify>,
) {
    let mut scanner = keys.as_ref().map(DetachScanner::new);
    let mut pending = Some(prefix).filter(|p| !p.is_empty());
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let chunk = match pending.take() {
            Some(p) => p,
            None => match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => Bytes::copy_from_slice(&buf[..n]),
            },
        };
        input_seen.notify_one();
        let data = match scanner.as_mut() {
            None => chunk,
            Some(s) => match s.scan(chunk) {
                Scan::Forward(b) => b,
                Scan::Detach => {
                    if let Some(f) = &stdin {
                        f.detach().await;
                    }
                    let _ = detach.send(());
                    return;
                }
            },
        };
        if data.is_empty() {
            continue;
        }
        if let Some(f) = &stdin {
            if !f.send(data).await {
                // The backend stopped reading: discard the rest.
                stdin = None;
            }
        }
    }
    // The client half-closed: it is past the 101 answer too.
    input_seen.notify_one();
    // Dropping the feeder is the end of file the backend reads.
    drop(stdin);
}
