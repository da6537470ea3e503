//! Client-side streams: JSON lines decoded as they arrive, output frames read from a raw or
//! multiplexed byte stream, and the hijacked connection of attach/exec (read output frames,
//! write input, half-close with [`InputWriter::close_write`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::{stream, Stream, StreamExt};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};

use super::{body_stream, ClientError};
use crate::stream::{stream_reader, ByteStream, Demuxer, Frame};
use crate::types::JsonMessage;

/// A stream of decoded JSON lines.
pub type JsonLines<T> = Pin<Box<dyn Stream<Item = Result<T, ClientError>> + Send>>;

/// Decodes a body of JSON lines (one object per line, as Go's `json.Encoder` writes).
pub(crate) fn json_lines<T: DeserializeOwned + Send + 'static>(
    what: String,
    body: Incoming,
) -> JsonLines<T> {
    let src = body_stream(body);
    Box::pin(stream::unfold(
        (src, BytesMut::new(), false, what),
        |(mut src, mut buf, mut eof, what)| async move {
            loop {
                if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line = buf.split_to(pos + 1);
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let item =
                        serde_json::from_slice(&line).map_err(|source| ClientError::Decode {
                            what: what.clone(),
                            source,
                        });
                    return Some((item, (src, buf, eof, what)));
                }
                if eof {
                    if buf.iter().all(u8::is_ascii_whitespace) {
                        return None;
                    }
                    let line = buf.split();
                    let item =
                        serde_json::from_slice(&line).map_err(|source| ClientError::Decode {
                            what: what.clone(),
                            source,
                        });
                    return Some((item, (src, buf, eof, what)));
                }
                match src.next().await {
                    Some(Ok(b)) => buf.extend_from_slice(&b),
                    Some(Err(e)) => {
                        buf.clear();
                        return Some((
                            Err(ClientError::Stream(e.message().to_string())),
                            (src, buf, true, what),
                        ));
                    }
                    None => eof = true,
                }
            }
        },
    ))
}

/// Turns the error line of a progress stream (`errorDetail`) into an error item, ending the
/// stream there.
pub fn progress(s: JsonLines<JsonMessage>) -> JsonLines<JsonMessage> {
    Box::pin(s.scan(false, |done, item| {
        if *done {
            return futures_util::future::ready(None);
        }
        let out = match item {
            Ok(m) => match m.error_message() {
                Some(e) => {
                    *done = true;
                    Err(ClientError::Stream(e.to_string()))
                }
                None => Ok(m),
            },
            Err(e) => {
                *done = true;
                Err(e)
            }
        };
        futures_util::future::ready(Some(out))
    }))
}

/// Reads output frames from a raw stream (everything is stdout) or a multiplexed one.
pub struct FrameReader {
    rd: Pin<Box<dyn AsyncRead + Send>>,
    demux: Option<Demuxer>,
    buf: Vec<u8>,
    done: bool,
}

impl FrameReader {
    /// Frames from a byte stream (an HTTP body such as logs).
    pub fn from_stream(s: ByteStream, multiplexed: bool) -> FrameReader {
        FrameReader::from_reader(Box::pin(stream_reader(s)), multiplexed)
    }

    /// Frames from any reader.
    pub fn from_reader(rd: Pin<Box<dyn AsyncRead + Send>>, multiplexed: bool) -> FrameReader {
        FrameReader {
            rd,
            demux: multiplexed.then(Demuxer::new),
            buf: vec![0; 32 * 1024],
            done: false,
        }
    }

    /// The next frame; None at the end.
    pub async fn next(&mut self) -> Result<Option<Frame>, ClientError> {
        loop {
            if let Some(d) = self.demux.as_mut() {
                if let Some(f) = d.next_frame()? {
                    return Ok(Some(f));
                }
            }
            if self.done {
                return Ok(None);
            }
            let n = self.rd.read(&mut self.buf).await?;
            if n == 0 {
                self.done = true;
                continue;
            }
            match self.demux.as_mut() {
                Some(d) => d.push(&self.buf[..n]),
                None => return Ok(Some(Frame::stdout(Bytes::copy_from_slice(&self.buf[..n])))),
            }
        }
    }

    /// Reads everything, returning (stdout, stderr).
    pub async fn collect(mut self) -> Result<(Vec<u8>, Vec<u8>), ClientError> {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        while let Some(f) = self.next().await? {
            match f.stream {
                crate::stream::StdStream::Stderr => err.extend_from_slice(&f.data),
                _ => out.extend_from_slice(&f.data),
            }
        }
        Ok((out, err))
    }

    /// As a [`Stream`].
    pub fn into_stream(self) -> impl Stream<Item = Result<Frame, ClientError>> + Send {
        stream::unfold(self, |mut r| async move {
            match r.next().await {
                Ok(Some(f)) => Some((Ok(f), r)),
                Ok(None) => None,
                Err(e) => {
                    r.done = true;
                    r.demux = None;
                    Some((Err(e), r))
                }
            }
        })
    }
}

type Io = TokioIo<Upgraded>;

/// A hijacked connection (attach, exec): a bidirectional byte stream; output is
/// multiplexed when [`HijackedStream::multiplexed`].
pub struct HijackedStream {
    io: Io,
    multiplexed: bool,
}

impl HijackedStream {
    pub(crate) fn new(io: Io, multiplexed: bool) -> HijackedStream {
        HijackedStream { io, multiplexed }
    }

    /// True when the output is multiplexed (no TTY).
    pub fn multiplexed(&self) -> bool {
        self.multiplexed
    }

    /// Splits into the output (frames) and the input (with half-close).
    pub fn split(self) -> (FrameReader, InputWriter) {
        let multiplexed = self.multiplexed;
        let (rd, wr): (ReadHalf<Io>, WriteHalf<Io>) = tokio::io::split(self.io);
        (
            FrameReader::from_reader(Box::pin(rd), multiplexed),
            InputWriter { wr },
        )
    }
}

impl AsyncRead for HijackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for HijackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The input side of a hijacked connection.
pub struct InputWriter {
    wr: WriteHalf<Io>,
}

impl InputWriter {
    /// Sends bytes to the session's stdin.
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.wr.write_all(data).await?;
        self.wr.flush().await
    }

    /// Closes the writing side only (the daemon reads end of file on stdin; output keeps
    /// coming), as the docker CLI's `CloseWrite`.
    pub async fn close_write(&mut self) -> io::Result<()> {
        self.wr.shutdown().await
    }
}

impl AsyncWrite for InputWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.wr).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.wr).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.wr).poll_shutdown(cx)
    }
}
