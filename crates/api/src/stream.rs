//! Streams of the Engine API: the stdout/stderr multiplexing of non-TTY attach, exec and
//! logs (8-byte frame header: stream type, three zero bytes, big-endian u32 length), the
//! stream types a [`Backend`](crate::Backend) returns, the stdin of a hijacked session
//! ([`AttachStdin`], whose end of file is the client's half-close) and detach keys.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

use crate::error::ApiError;

/// A stream of bytes (tar archives, uploads, exports).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, ApiError>> + Send>>;

/// A stream of stdout/stderr frames (logs, attach, exec).
pub type FrameStream = Pin<Box<dyn Stream<Item = Result<Frame, ApiError>> + Send>>;

/// A stream of JSON objects (events, stats, progress).
pub type JsonStream<T> = Pin<Box<dyn Stream<Item = Result<T, ApiError>> + Send>>;

/// `Content-Type` of a raw (TTY) stream.
pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
/// `Content-Type` of a multiplexed stream (API 1.42 and newer).
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// Which standard stream a frame belongs to (the first byte of a frame header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StdStream {
    /// 0.
    Stdin,
    /// 1.
    Stdout,
    /// 2.
    Stderr,
    /// 3: daemon messages (rare).
    System,
}

impl StdStream {
    /// The header byte.
    pub fn byte(self) -> u8 {
        match self {
            StdStream::Stdin => 0,
            StdStream::Stdout => 1,
            StdStream::Stderr => 2,
            StdStream::System => 3,
        }
    }

    /// The stream of a header byte.
    pub fn from_byte(b: u8) -> Option<StdStream> {
        match b {
            0 => Some(StdStream::Stdin),
            1 => Some(StdStream::Stdout),
            2 => Some(StdStream::Stderr),
            3 => Some(StdStream::System),
            _ => None,
        }
    }
}

/// A chunk of output from one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Which stream.
    pub stream: StdStream,
    /// The bytes.
    pub data: Bytes,
}

impl Frame {
    /// A stdout chunk.
    pub fn stdout(data: impl Into<Bytes>) -> Frame {
        Frame {
            stream: StdStream::Stdout,
            data: data.into(),
        }
    }

    /// A stderr chunk.
    pub fn stderr(data: impl Into<Bytes>) -> Frame {
        Frame {
            stream: StdStream::Stderr,
            data: data.into(),
        }
    }
}

/// The 8-byte multiplexing header of a frame of `len` bytes.
pub fn frame_header(stream: StdStream, len: usize) -> [u8; 8] {
    let l = (len as u32).to_be_bytes();
    [stream.byte(), 0, 0, 0, l[0], l[1], l[2], l[3]]
}

/// Encodes one multiplexed frame (header and data). Data longer than `u32::MAX` is split.
pub fn encode_frame(stream: StdStream, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 8);
    for chunk in data.chunks(u32::MAX as usize) {
        out.extend_from_slice(&frame_header(stream, chunk.len()));
        out.extend_from_slice(chunk);
    }
    if data.is_empty() {
        out.extend_from_slice(&frame_header(stream, 0));
    }
    out.freeze()
}

/// A multiplexed stream that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid multiplexed stream: unknown stream type {0} in a frame header")]
pub struct DemuxError(pub u8);

/// Incremental decoder of a multiplexed stream: push bytes as they arrive, pop frames.
#[derive(Debug, Default)]
pub struct Demuxer {
    buf: BytesMut,
}

impl Demuxer {
    /// An empty decoder.
    pub fn new() -> Demuxer {
        Demuxer::default()
    }

    /// Adds received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if any.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, DemuxError> {
        if self.buf.len() < 8 {
            return Ok(None);
        }
        let stream = StdStream::from_byte(self.buf[0]).ok_or(DemuxError(self.buf[0]))?;
        let len = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
        if self.buf.len() < 8 + len {
            return Ok(None);
        }
        self.buf.advance(8);
        let data = self.buf.split_to(len).freeze();
        Ok(Some(Frame { stream, data }))
    }

    /// Bytes received but not yet part of a complete frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// The key sequence that detaches a client from a TTY session without stopping it
/// (`ctrl-p,ctrl-q` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys(Vec<u8>);

/// A detach key specification that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid detach keys ({spec}) provided: Unknown character: '{key}'")]
pub struct DetachKeysError {
    /// The whole specification.
    pub spec: String,
    /// The key that is not a character nor `ctrl-<x>`.
    pub key: String,
}

impl DetachKeys {
    /// Docker's default, `ctrl-p,ctrl-q`.
    pub fn default_keys() -> DetachKeys {
        DetachKeys(vec![0x10, 0x11])
    }

    /// Parses Docker's syntax: comma-separated keys, each a single character or
    /// `ctrl-<c>` with `<c>` in `a-z @ [ \ ] ^ _`.
    pub fn parse(spec: &str) -> Result<DetachKeys, DetachKeysError> {
        let mut out = Vec::new();
        for key in spec.split(',') {
            if key.len() == 1 {
                out.push(key.as_bytes()[0]);
                continue;
            }
            let code = key.strip_prefix("ctrl-").and_then(|c| {
                let b = c.as_bytes();
                if b.len() != 1 {
                    return None;
                }
                match b[0] {
                    b'@' => Some(0),
                    c @ b'a'..=b'z' => Some(c - b'a' + 1),
                    b'[' => Some(27),
                    b'\\' => Some(28),
                    b']' => Some(29),
                    b'^' => Some(30),
                    b'_' => Some(31),
                    _ => None,
                }
            });
            match code {
                Some(c) => out.push(c),
                None => {
                    return Err(DetachKeysError {
                        spec: spec.to_string(),
                        key: key.to_string(),
                    })
                }
            }
        }
        Ok(DetachKeys(out))
    }

    /// The bytes of the sequence.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Docker's syntax (`ctrl-p,ctrl-q`), as [`DetachKeys::parse`] reads it.
impl fmt::Display for DetachKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .bytes()
            .iter()
            .map(|b| match b {
                0 => "ctrl-@".to_string(),
                1..=26 => format!("ctrl-{}", (b'a' + b - 1) as char),
                27 => "ctrl-[".to_string(),
                28 => "ctrl-\\".to_string(),
                29 => "ctrl-]".to_string(),
                30 => "ctrl-^".to_string(),
                31 => "ctrl-_".to_string(),
                c => (*c as char).to_string(),
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// Finds a detach sequence in what a client types, as Docker does: only single-byte reads
/// (key presses) count, so pasted or piped data never detaches.
#[derive(Debug)]
pub(crate) struct DetachScanner {
    keys: Vec<u8>,
    pos: usize,
}

/// What the scanner makes of a chunk.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// Forward these bytes (possibly with held-back key presses in front).
    Forward(Bytes),
    /// The sequence is complete: detach.
    Detach,
}

impl DetachScanner {
    pub(crate) fn new(keys: &DetachKeys) -> DetachScanner {
        DetachScanner {
            keys: keys.0.clone(),
            pos: 0,
        }
    }

    pub(crate) fn scan(&mut self, chunk: Bytes) -> Scan {
        if self.keys.is_empty() {
            return Scan::Forward(chunk);
        }
        if chunk.len() == 1 && chunk[0] == self.keys[self.pos] {
            if self.pos + 1 == self.keys.len() {
                self.pos = 0;
                return Scan::Detach;
            }
            self.pos += 1;
            return Scan::Forward(Bytes::new());
        }
        if self.pos == 0 {
            return Scan::Forward(chunk);
        }
        let mut out = BytesMut::with_capacity(self.pos + chunk.len());
        out.extend_from_slice(&self.keys[..self.pos]);
        out.extend_from_slice(&chunk);
        self.pos = 0;
        Scan::Forward(out.freeze())
    }
}

/// The error an [`AttachStdin`] read returns when the client typed the detach keys: the
/// session ends, but the container's stdin must NOT be closed (unlike end of file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Detached;

impl fmt::Display for Detached {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the client detached")
    }
}

impl std::error::Error for Detached {}

/// True when `e` is the [`Detached`] signal of an [`AttachStdin`].
pub fn is_detached(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Detached>())
}

pub(crate) enum StdinMsg {
    Data(Bytes),
    Detach,
}

/// The stdin of a hijacked attach or exec session, handed to the backend. Reading it gives
/// what the client sends; end of file means the client closed its writing side
/// (`CloseWrite`) or went away; an error for which [`is_detached`] holds means the client
/// detached. Drop it to stop accepting input (the server then discards what arrives).
pub struct AttachStdin {
    rx: mpsc::Receiver<StdinMsg>,
    pending: Bytes,
    done: bool,
}

/// The server's end of an [`AttachStdin`].
pub(crate) struct StdinFeeder {
    tx: mpsc::Sender<StdinMsg>,
}

/// A connected pair: the [`AttachStdin`] a backend reads and its feeding end (for tests of
/// backends: write with [`StdinWriter::send`], drop for end of file).
pub fn stdin_pipe() -> (StdinWriter, AttachStdin) {
    let (feeder, stdin) = stdin_channel();
    (StdinWriter { feeder }, stdin)
}

pub(crate) fn stdin_channel() -> (StdinFeeder, AttachStdin) {
    let (tx, rx) = mpsc::channel(16);
    (
        StdinFeeder { tx },
        AttachStdin {
            rx,
            pending: Bytes::new(),
            done: false,
        },
    )
}

impl StdinFeeder {
    /// Sends data; false when the backend dropped its end.
    pub(crate) async fn send(&self, data: Bytes) -> bool {
        self.tx.send(StdinMsg::Data(data)).await.is_ok()
    }

    /// Signals a detach.
    pub(crate) async fn detach(&self) {
        let _ = self.tx.send(StdinMsg::Detach).await;
    }
}

/// The writing end of [`stdin_pipe`].
pub struct StdinWriter {
    feeder: StdinFeeder,
}

impl StdinWriter {
    /// Sends bytes to the reader; false when the reader was dropped.
    pub async fn send(&self, data: impl Into<Bytes>) -> bool {
        self.feeder.send(data.into()).await
    }

    /// Signals a detach to the reader.
    pub async fn detach(self) {
        self.feeder.detach().await
    }
}

impl AttachStdin {
    /// The next chunk: `Ok(Some(data))`, `Ok(None)` at end of file, or the [`Detached`]
    /// error.
    pub async fn recv(&mut self) -> io::Result<Option<Bytes>> {
        if !self.pending.is_empty() {
            return Ok(Some(std::mem::take(&mut self.pending)));
        }
        if self.done {
            return Ok(None);
        }
        match self.rx.recv().await {
            Some(StdinMsg::Data(d)) => Ok(Some(d)),
            Some(StdinMsg::Detach) => {
                self.done = true;
                Err(io::Error::new(io::ErrorKind::ConnectionAborted, Detached))
            }
            None => {
                self.done = true;
                Ok(None)
            }
        }
    }
}

impl AsyncRead for AttachStdin {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                let chunk = self.pending.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            if self.done {
                return Poll::Ready(Ok(()));
            }
            match self.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(StdinMsg::Data(d))) => self.pending = d,
                Poll::Ready(Some(StdinMsg::Detach)) => {
                    self.done = true;
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        Detached,
                    )));
                }
                Poll::Ready(None) => {
                    self.done = true;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

/// Adapts a [`ByteStream`] (an upload: archive, image tarball, build context) into an
/// [`AsyncRead`].
pub fn stream_reader(stream: ByteStream) -> StreamReader {
    StreamReader {
        stream,
        pending: Bytes::new(),
        done: false,
    }
}

/// The [`AsyncRead`] of [`stream_reader`].
pub struct StreamReader {
    stream: ByteStream,
    pending: Bytes,
    done: bool,
}

impl AsyncRead for StreamReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            if !self.pending.is_empty() {
                let n = self.pending.len().min(buf.remaining());
                let chunk = self.pending.split_to(n);
                buf.put_slice(&chunk);
                return Poll::Ready(Ok(()));
            }
            if self.done {
                return Poll::Ready(Ok(()));
            }
            match self.stream.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(b))) => self.pending = b,
                Poll::Ready(Some(Err(e))) => {
                    self.done = true;
                    return Poll::Ready(Err(io::Error::other(e)));
                }
                Poll::Ready(None) => {
                    self.done = true;
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn frames_round_trip() {
        let mut d = Demuxer::new();
        let a = encode_frame(StdStream::Stdout, b"hello");
        let b = encode_frame(StdStream::Stderr, b"oops\n");
        assert_eq!(&a[..8], &[1, 0, 0, 0, 0, 0, 0, 5]);
        let mut all = a.to_vec();
        all.extend_from_slice(&b);
        d.push(&all[..3]);
        assert_eq!(d.next_frame().unwrap(), None);
        d.push(&all[3..]);
        assert_eq!(d.next_frame().unwrap(), Some(Frame::stdout("hello")));
        assert_eq!(d.next_frame().unwrap(), Some(Frame::stderr("oops\n")));
        assert_eq!(d.next_frame().unwrap(), None);
        let mut bad = Demuxer::new();
        bad.push(&[9, 0, 0, 0, 0, 0, 0, 0]);
        assert!(bad.next_frame().is_err());
    }

    #[test]
    fn detach_keys_parse() {
        assert_eq!(
            DetachKeys::parse("ctrl-p,ctrl-q").unwrap(),
            DetachKeys::default_keys()
        );
        assert_eq!(
            DetachKeys::parse("a,ctrl-@,ctrl-_").unwrap().bytes(),
            &[b'a', 0, 31]
        );
        let e = DetachKeys::parse("ctrl-p,foo").unwrap_err();
        assert_eq!(
            e.to_string(),
            "Invalid detach keys (ctrl-p,foo) provided: Unknown character: 'foo'"
        );
    }

    #[test]
    fn detach_scanner() {
        let mut s = DetachScanner::new(&DetachKeys::default_keys());
        assert_eq!(
            s.scan(Bytes::from_static(b"ab")),
            Scan::Forward(Bytes::from_static(b"ab"))
        );
        assert_eq!(
            s.scan(Bytes::from_static(&[0x10])),
            Scan::Forward(Bytes::new())
        );
        assert_eq!(
            s.scan(Bytes::from_static(b"x")),
            Scan::Forward(Bytes::from_static(&[0x10, b'x']))
        );
        assert_eq!(
            s.scan(Bytes::from_static(&[0x10])),
            Scan::Forward(Bytes::new())
        );
        assert_eq!(s.scan(Bytes::from_static(&[0x11])), Scan::Detach);
        // Pasted data with the sequence inside does not detach.
        assert_eq!(
            s.scan(Bytes::from_static(&[0x10, 0x11])),
            Scan::Forward(Bytes::from_static(&[0x10, 0x11]))
        );
    }

    #[tokio::test]
    async fn stdin_pipe_eof_and_detach() {
        let (w, mut r) = stdin_pipe();
        assert!(w.send("hi").await);
        drop(w);
        let mut s = String::new();
        r.read_to_string(&mut s).await.unwrap();
        assert_eq!(s, "hi");
        let (w, mut r) = stdin_pipe();
        w.detach().await;
        let e = r.recv().await.unwrap_err();
        assert!(is_detached(&e));
    }
}
