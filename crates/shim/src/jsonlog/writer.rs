//! Writing the json-file log: splitting a stream into lines and rotating the file.
//!
//! Owns: [`LineSplitter`] (docker's copier: a line per '\n', the newline kept; a line longer
//! than 16 KiB goes out in 16 KiB partial pieces; what is left at EOF goes out as a partial
//! line) and [`LogWriter`] (entries encoded straight into one large buffer that is written with
//! one `write(2)` per flush; when the file has reached `max_size` it is rotated like dockerd's:
//! `file.(n-1)` -> `file.n`, …, `file` -> `file.1`, keeping `max_files` files in all, and with
//! `max_files` = 1 the file is truncated instead).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::{encode_entry, Stream};

/// Longest piece of a line docker logs as one entry (its copier's buffer size).
pub const MAX_LINE: usize = 16 * 1024;

/// Write the buffer out once it holds this much.
const FLUSH_AT: usize = 1024 * 1024;

/// Splits a byte stream into log lines.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// Feeds bytes; `emit` gets every complete line (with its '\n') and every 16 KiB piece of
    /// an overlong one. Bytes of an unfinished short line are kept for the next call.
    pub fn feed(&mut self, mut data: &[u8], mut emit: impl FnMut(&[u8])) {
        while !data.is_empty() {
            let room = MAX_LINE - self.pending.len();
            let window = &data[..data.len().min(room + 1)];
            match memchr::memchr(b'\n', window) {
                Some(i) => {
                    if self.pending.is_empty() {
                        emit(&data[..=i]);
                    } else {
                        self.pending.extend_from_slice(&data[..=i]);
                        emit(&self.pending);
                        self.pending.clear();
                    }
                    data = &data[i + 1..];
                }
                None if data.len() >= room => {
                    if self.pending.is_empty() {
                        emit(&data[..room]);
                    } else {
                        self.pending.extend_from_slice(&data[..room]);
                        emit(&self.pending);
                        self.pending.clear();
                    }
                    data = &data[room..];
                }
                None => {
                    self.pending.extend_from_slice(data);
                    return;
                }
            }
        }
    }

    /// End of stream: emits the unfinished line, if any.
    pub fn finish(&mut self, mut emit: impl FnMut(&[u8])) {
        if !self.pending.is_empty() {
            emit(&self.pending);
            self.pending.clear();
        }
    }
}

/// Where and how much to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The log file.
    pub path: PathBuf,
    /// Rotate once the file has reached this many bytes (`None`: never).
    pub max_size: Option<u64>,
    /// Files to keep, the current one included (at least 1).
    pub max_files: u32,
}

/// The json-file log of one container.
#[derive(Debug)]
pub struct LogWriter {
    cfg: LogConfig,
    file: File,
    /// Bytes in the file (not counting `buf`).
    size: u64,
    buf: Vec<u8>,
}

fn open_log(path: &Path, truncate: bool) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).mode(0o640).custom_flags(libc::O_CLOEXEC);
    if truncate {
        o.write(true).truncate(true);
    } else {
        o.append(true);
    }
    o.open(path)
}

/// The path of rotated file number `n` (`file.1`, `file.2`, …; 0 is the file itself).
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

impl LogWriter {
    /// Opens (appending to) the log file, creating it and its directory.
    pub fn open(cfg: LogConfig) -> io::Result<LogWriter> {
        if let Some(dir) = cfg.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = open_log(&cfg.path, false)?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            cfg: LogConfig {
                max_files: cfg.max_files.max(1),
                ..cfg
            },
            file,
            size,
            buf: Vec::with_capacity(FLUSH_AT + 64 * 1024),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &LogConfig {
        &self.cfg
    }

    /// Appends one entry (`time` is the formatted RFC3339Nano stamp).
    pub fn append(&mut self, stream: Stream, log: &[u8], time: &[u8]) -> io::Result<()> {
        if let Some(max) = self.cfg.max_size {
            if self.size + self.buf.len() as u64 >= max && self.size + (self.buf.len() as u64) > 0 {
                self.rotate()?;
            }
        }
        encode_entry(&mut self.buf, log, stream, time);
        if self.buf.len() >= FLUSH_AT {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes buffered entries to the file (one write; entries are never split).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let r = self.file.write_all(&self.buf);
        // On error (disk full…) the entries are dropped rather than retried forever.
        self.size += self.buf.len() as u64;
        self.buf.clear();
        r
    }

    /// Rotates now: flushes, renames the files one step up, starts an empty file.
    pub fn rotate(&mut self) -> io::Result<()> {
        self.flush()?;
        let path = self.cfg.path.clone();
        if self.cfg.max_files >= 2 {
            for n in (1..self.cfg.max_files).rev() {
                let from = rotated_path(&path, n - 1);
                match std::fs::rename(&from, rotated_path(&path, n)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.file = open_log(&path, true)?;
        self.size = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, |l| out.push(l.to_vec()));
        }
        s.finish(|l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn splits_lines_keeping_newlines() {
        assert_eq!(
            split(&[b"a\nbb\nc", b"c\n", b"tail"]),
            vec![
                b"a\n".to_vec(),
                b"bb\n".to_vec(),
                b"cc\n".to_vec(),
                b"tail".to_vec()
            ]
        );
    }

    #[test]
    fn long_lines_go_out_in_16k_pieces() {
        let mut long = vec![b'x'; MAX_LINE * 2 + 10];
        long.push(b'\n');
        let out = split(&[&long[..100], &long[100..]]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1].len(), MAX_LINE);
        assert_eq!(out[2], b"xxxxxxxxxx\n");
        // A line of exactly 16 KiB plus its newline stays one entry.
        let mut exact = vec![b'y'; MAX_LINE];
        exact.push(b'\n');
        assert_eq!(split(&[&exact]).len(), 1);
    }

    #[test]
    fn rotates_like_dockerd() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let mut w = LogWriter::open(LogConfig {
            path: path.clone(),
            max_size: Some(200),
            max_files: 3,
        })
        .unwrap();
        for i in 0..40 {
            w.append(
                Stream::Stdout,
                format!("line {i}\n").as_bytes(),
                b"2023-11-14T22:13:20Z",
            )
            .unwrap();
        }
        w.flush().unwrap();
        assert!(path.exists());
        assert!(rotated_path(&path, 1).exists());
        assert!(rotated_path(&path, 2).exists());
        assert!(!rotated_path(&path, 3).exists());
        for n in 0..3 {
            let len = std::fs::metadata(rotated_path(&path, n)).unwrap().len();
            assert!(len < 200 + 80, "file {n} is {len} bytes");
        }
        let last = std::fs::read_to_string(&path).unwrap();
        assert!(last.ends_with(
            "\"log\":\"line 39\\n\",\"stream\":\"stdout\",\"time\":\"2023-11-14T22:13:20Z\"}\n"
        ));

        // max_files = 1: the file is truncated.
        let p1 = dir.path().join("one.log");
        let mut w = LogWriter::open(LogConfig {
            path: p1.clone(),
            max_size: Some(100),
            max_files: 1,
        })
        .unwrap();
        for _ in 0..20 {
            w.append(Stream::Stderr, b"abcdefghij\n", b"2023-11-14T22:13:20Z")
                .unwrap();
        }
        w.flush().unwrap();
        assert!(!rotated_path(&p1, 1).exists());
        assert!(std::fs::metadata(&p1).unwrap().len() < 200);
    }
}
