//! Reading the json-file log back (what `docker logs` serves).
//!
//! Owns: [`read_logs`] and [`LogReader`]. The rotated files are read oldest first
//! (`file.N` … `file.1`, `file`), all opened up front so a rotation while reading loses
//! nothing; `tail` is found by reading the files backwards in 64 KiB blocks from the end;
//! lines are read with one `read(2)` per 1 MiB and decoded with the fast path of
//! [`super::decode_entry`]; `follow` waits on inotify (with a 250 ms poll as a backstop),
//! follows rotation by inode and truncation by size, and ends on a cancel flag or once a stop
//! file (the shim's `exit.json`) exists and everything before it has been read.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use super::writer::rotated_path;
use super::{decode_entry, Stream};
use crate::timefmt;

/// What to read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Keep reading as the log grows (and across rotations) until cancelled or stopped.
    pub follow: bool,
    /// Only the last N lines (counted over both streams, across rotated files).
    pub tail: Option<usize>,
    /// Skip entries older than this.
    pub since: Option<SystemTime>,
    /// Stop at the first entry newer than this.
    pub until: Option<SystemTime>,
    /// [`LogReader::copy_to`] prefixes each entry with its time (RFC3339Nano, nine digits)
    /// and a space, as `docker logs -t` does.
    pub timestamps: bool,
    /// Include stdout entries.
    pub stdout: bool,
    /// Include stderr entries.
    pub stderr: bool,
    /// With `follow`: stop once this file exists and the log has been read to its end (pass
    /// the shim's `exit.json`: it is written after the last log entry is flushed).
    pub stop_file: Option<PathBuf>,
    /// With `follow`: stop as soon as this is set.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            follow: false,
            tail: None,
            since: None,
            until: None,
            timestamps: false,
            stdout: true,
            stderr: true,
            stop_file: None,
            cancel: None,
        }
    }
}

/// Errors reading a log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A log file could not be opened or read.
    #[error("cannot {what} log file {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// Writing the output failed (the client went away).
    #[error("cannot write logs: {0}")]
    Write(io::Error),
}

/// How [`LogReader::copy_to`] frames entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// The bytes only (a container with a terminal).
    Raw,
    /// docker's multiplexed stream: an 8-byte header `[stream, 0, 0, 0, len (big endian)]`
    /// before each entry.
    Multiplexed,
}

/// One entry, borrowed from the reader's buffers.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// stdout or stderr.
    pub stream: Stream,
    /// The time stamp as written (RFC3339Nano).
    pub time: &'a [u8],
    /// The logged bytes (a line with its '\n', or a partial line).
    pub log: &'a [u8],
}

impl Entry<'_> {
    /// The time stamp in nanoseconds since the epoch (`None` if it does not parse).
    pub fn time_nanos(&self) -> Option<i64> {
        timefmt::parse_rfc3339_nanos(self.time)
    }
}

/// One entry, owned (what the [`Iterator`] yields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// stdout or stderr.
    pub stream: Stream,
    /// When the shim read it (the epoch if the stamp does not parse).
    pub time: SystemTime,
    /// The logged bytes.
    pub log: Vec<u8>,
}

#[derive(Debug)]
struct OpenFile {
    file: File,
    path: PathBuf,
    dev: u64,
    ino: u64,
    /// Bytes read from the file so far (its offset).
    pos: u64,
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn open_file(path: &Path) -> Result<Option<OpenFile>, Error> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let m = file.metadata().map_err(io_err("stat", path))?;
    Ok(Some(OpenFile {
        file,
        path: path.to_path_buf(),
        dev: m.dev(),
        ino: m.ino(),
        pos: 0,
    }))
}

/// The log and its rotated files, oldest first, each opened once (duplicates from a rotation
/// during the listing are dropped by inode).
fn open_all(path: &Path) -> Result<Vec<OpenFile>, Error> {
    let mut newest_first: Vec<OpenFile> = Vec::new();
    let mut n = 0u32;
    loop {
        let p = rotated_path(path, n);
        match open_file(&p)? {
            Some(f) => {
                if !newest_first
                    .iter()
                    .any(|o| o.dev == f.dev && o.ino == f.ino)
                {
                    newest_first.push(f);
                }
            }
            // The current file may be missing (between rename and create); rotated ones end
            // the list at the first gap.
            None if n == 0 => {}
            None => break,
        }
        n += 1;
        if n > 100_000 {
            break;
        }
    }
    newest_first.reverse();
    Ok(newest_first)
}

enum TailStart {
    /// The N lines start at this offset of this file.
    At(u64),
    /// The whole file holds only this many (complete) lines.
    Short(usize),
}

/// Finds where the last `need` complete lines of `f` begin, reading backwards.
fn tail_start(f: &OpenFile, need: usize) -> Result<TailStart, Error> {
    const BLOCK: u64 = 64 * 1024;
    let len = f.file.metadata().map_err(io_err("stat", &f.path))?.len();
    let mut buf = vec![0u8; BLOCK as usize];
    let mut end = len;
    // Index just past the last '\n' (a trailing partial line is not counted).
    let mut last_nl: Option<u64> = None;
    let mut count = 0usize;
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let chunk = &mut buf[..(end - start) as usize];
        f.file
            .read_exact_at(chunk, start)
            .map_err(io_err("read", &f.path))?;
        for i in memchr::memrchr_iter(b'\n', chunk) {
            let at = start + i as u64;
            if last_nl.is_none() {
                last_nl = Some(at);
                if need == 0 {
                    return Ok(TailStart::At(at + 1));
                }
                continue;
            }
            count += 1;
            if count == need {
                return Ok(TailStart::At(at + 1));
            }
        }
        end = start;
    }
    match last_nl {
        None if need == 0 => Ok(TailStart::At(0)),
        None => Ok(TailStart::Short(0)),
        Some(_) => {
            // The first line of the file.
            count += 1;
            if count == need {
                Ok(TailStart::At(0))
            } else {
                Ok(TailStart::Short(count))
            }
        }
    }
}

/// Opens a container's log for reading. See [`ReadOptions`].
pub fn read_logs(path: &Path, opts: ReadOptions) -> Result<LogReader, Error> {
    let mut files = open_all(path)?;
    if let Some(n) = opts.tail {
        let mut need = n;
        let mut first = 0;
        let mut offset = 0;
        for idx in (0..files.len()).rev() {
            match tail_start(&files[idx], need)? {
                TailStart::At(off) => {
                    first = idx;
                    offset = off;
                    break;
                }
                TailStart::Short(c) => need -= c,
            }
        }
        files.drain(..first);
        if let Some(f) = files.first_mut() {
            f.file
                .seek(SeekFrom::Start(offset))
                .map_err(io_err("seek", &f.path))?;
            f.pos = offset;
        }
    }
    let inotify = if opts.follow {
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)
            .ok()
            .filter(|i| {
                i.add_watch(
                    dir,
                    AddWatchFlags::IN_MODIFY
                        | AddWatchFlags::IN_CREATE
                        | AddWatchFlags::IN_MOVED_TO
                        | AddWatchFlags::IN_MOVED_FROM
                        | AddWatchFlags::IN_DELETE
                        | AddWatchFlags::IN_CLOSE_WRITE
                        | AddWatchFlags::IN_ATTRIB,
                )
                .is_ok()
            })
    } else {
        None
    };
    let mut queue: VecDeque<OpenFile> = files.into();
    let cur = queue.pop_front();
    Ok(LogReader {
        path: path.to_path_buf(),
        since: opts.since.map(timefmt::system_time_nanos),
        until: opts.until.map(timefmt::system_time_nanos),
        opts,
        queue,
        cur,
        buf: vec![0u8; 1024 * 1024],
        start: 0,
        end: 0,
        log: Vec::with_capacity(16 * 1024),
        time: Vec::with_capacity(40),
        stream: Stream::Stdout,
        finished: false,
        final_pass: false,
        skipped: 0,
        inotify,
    })
}

enum Step {
    /// An entry is in `self.log` / `self.time` / `self.stream`.
    Line,
    /// Following and at the end: call `wait`.
    Idle,
    /// Nothing more.
    End,
}

/// A reader over a container's log; see [`read_logs`].
pub struct LogReader {
    path: PathBuf,
    opts: ReadOptions,
    since: Option<i64>,
    until: Option<i64>,
    queue: VecDeque<OpenFile>,
    cur: Option<OpenFile>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    log: Vec<u8>,
    time: Vec<u8>,
    stream: Stream,
    finished: bool,
    final_pass: bool,
    skipped: u64,
    inotify: Option<Inotify>,
}

impl std::fmt::Debug for LogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("path", &self.path)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl LogReader {
    /// Lines that were not log entries and were skipped (a torn write after a crash).
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    fn cancelled(&self) -> bool {
        self.opts
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// Reads more of the current file into the buffer; Ok(0) at its end.
    fn fill(&mut self) -> Result<usize, Error> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                // One line longer than the buffer: grow it.
                let n = self.buf.len() * 2;
                self.buf.resize(n, 0);
            }
        }
        let Some(cur) = self.cur.as_mut() else {
            return Ok(0);
        };
        loop {
            match cur.file.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    cur.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("read", &cur.path)(e)),
            }
        }
    }

    fn advance(&mut self) -> Result<Step, Error> {
        loop {
            if self.finished {
                return Ok(Step::End);
            }
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                let line = self.start..self.start + i;
                self.start += i + 1;
                let stream = match decode_entry(&self.buf[line], &mut self.log, &mut self.time) {
                    Ok(s) => s,
                    Err(_) => {
                        self.skipped += 1;
                        continue;
                    }
                };
                let wanted = match stream {
                    Stream::Stdout => self.opts.stdout,
                    Stream::Stderr => self.opts.stderr,
                    Stream::Stdin => false,
                };
                if self.since.is_some() || self.until.is_some() {
                    let t = timefmt::parse_rfc3339_nanos(&self.time).unwrap_or(0);
                    if self.until.is_some_and(|u| t > u) {
                        self.finished = true;
                        return Ok(Step::End);
                    }
                    if self.since.is_some_and(|s| t < s) {
                        continue;
                    }
                }
                if !wanted {
                    continue;
                }
                self.stream = stream;
                return Ok(Step::Line);
            }
            if self.cur.is_none() {
                match self.queue.pop_front() {
                    Some(f) => {
                        self.cur = Some(f);
                        continue;
                    }
                    None if self.opts.follow => return Ok(Step::Idle),
                    None => {
                        self.finished = true;
                        return Ok(Step::End);
                    }
                }
            }
            if self.fill()? > 0 {
                continue;
            }
            // End of the current file.
            if let Some(next) = self.queue.pop_front() {
                // A torn last line of a rotated file is dropped.
                self.start = 0;
                self.end = 0;
                self.cur = Some(next);
                continue;
            }
            if !self.opts.follow {
                self.finished = true;
                return Ok(Step::End);
            }
            return Ok(Step::Idle);
        }
    }

    /// Looks for new data: growth, truncation, rotation, the file appearing. True if found.
    fn check_changes(&mut self) -> Result<bool, Error> {
        let Some(cur) = self.cur.as_mut() else {
            if let Some(f) = open_file(&self.path)? {
                self.cur = Some(f);
                return Ok(true);
            }
            return Ok(false);
        };
        let len = cur
            .file
            .metadata()
            .map_err(io_err("stat", &cur.path))?
            .len();
        if len > cur.pos {
            return Ok(true);
        }
        if len < cur.pos {
            // Truncated in place (max-file 1): start over.
            cur.file
                .seek(SeekFrom::Start(0))
                .map_err(io_err("seek", &cur.path))?;
            cur.pos = 0;
            self.start = 0;
            self.end = 0;
            return Ok(true);
        }
        let (dev, ino) = (cur.dev, cur.ino);
        let now = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("stat", &self.path)(e)),
        };
        if now.dev() == dev && now.ino() == ino {
            return Ok(false);
        }
        // Rotated: our file moved to file.k; read file.(k-1) … file.1, file after it.
        let mut newer: Vec<OpenFile> = Vec::new();
        let mut k = 1u32;
        loop {
            let p = rotated_path(&self.path, k);
            match std::fs::metadata(&p) {
                Ok(m) if m.dev() == dev && m.ino() == ino => break,
                Ok(_) => {}
                Err(_) => break,
            }
            k += 1;
        }
        for n in (0..k).rev() {
            if let Some(f) = open_file(&rotated_path(&self.path, n))? {
                if (f.dev, f.ino) != (dev, ino)
                    && !newer.iter().any(|o| (o.dev, o.ino) == (f.dev, f.ino))
                {
                    newer.push(f);
                }
            }
        }
        let found = !newer.is_empty();
        self.queue.extend(newer);
        Ok(found)
    }

    /// Blocks until there may be more to read, or marks the reader finished.
    fn wait(&mut self) -> Result<(), Error> {
        loop {
            if self.cancelled() {
                self.finished = true;
                return Ok(());
            }
            if self.check_changes()? {
                return Ok(());
            }
            if let Some(stop) = &self.opts.stop_file {
                if stop.exists() {
                    if self.final_pass {
                        self.finished = true;
                    }
                    // One more pass over anything written before the stop file.
                    self.final_pass = true;
                    return Ok(());
                }
            }
            match &self.inotify {
                Some(ino) => {
                    let mut fds = [PollFd::new(ino.as_fd(), PollFlags::POLLIN)];
                    let _ = poll(&mut fds, PollTimeout::from(250u16));
                    // Drain the events; only "something changed" matters.
                    while let Ok(ev) = ino.read_events() {
                        if ev.is_empty() {
                            break;
                        }
                    }
                }
                None => std::thread::sleep(std::time::Duration::from_millis(50)),
            }
        }
    }

    /// The next entry; with `follow`, blocks for new entries. `Ok(None)` at the end.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_>>, Error> {
        loop {
            match self.advance()? {
                Step::Line => {
                    return Ok(Some(Entry {
                        stream: self.stream,
                        time: &self.time,
                        log: &self.log,
                    }))
                }
                Step::Idle => self.wait()?,
                Step::End => return Ok(None),
            }
        }
    }

    /// Writes every (remaining) entry to `out` as `docker logs` sends it: raw or multiplexed,
    /// with time stamps if asked. Output is gathered into large writes and flushed before
    /// waiting for more. Returns the bytes written.
    pub fn copy_to<W: Write + ?Sized>(
        &mut self,
        out: &mut W,
        framing: Framing,
    ) -> Result<u64, Error> {
        const CHUNK: usize = 256 * 1024;
        let mut ob: Vec<u8> = Vec::with_capacity(CHUNK + 32 * 1024);
        let mut total = 0u64;
        loop {
            match self.advance()? {
                Step::Line => {
                    let at = ob.len();
                    if framing == Framing::Multiplexed {
                        ob.extend_from_slice(&[self.stream as u8, 0, 0, 0, 0, 0, 0, 0]);
                    }
                    let body = ob.len();
                    if self.opts.timestamps {
                        match timefmt::parse_rfc3339_nanos(&self.time) {
                            Some(n) => timefmt::push_rfc3339_nano_fixed(
                                &mut ob,
                                n.div_euclid(1_000_000_000),
                                n.rem_euclid(1_000_000_000) as u32,
                            ),
                            None => ob.extend_from_slice(&self.time),
                        }
                        ob.push(b' ');
                    }
                    ob.extend_from_slice(&self.log);
                    if framing == Framing::Multiplexed {
                        let len = (ob.len() - body) as u32;
                        ob[at + 4..at + 8].copy_from_slice(&len.to_be_bytes());
                    }
                    if ob.len() >= CHUNK {
                        out.write_all(&ob).map_err(Error::Write)?;
                        total += ob.len() as u64;
                        ob.clear();
                    }
                }
                Step::Idle => {
                    out.write_all(&ob).map_err(Error::Write)?;
                    out.flush().map_err(Error::Write)?;
                    total += ob.len() as u64;
                    ob.clear();
                    self.wait()?;
                }
                Step::End => {
                    out.write_all(&ob).map_err(Error::Write)?;
                    out.flush().map_err(Error::Write)?;
                    total += ob.len() as u64;
                    return Ok(total);
                }
            }
        }
    }
}

impl Iterator for LogReader {
    type Item = Result<LogEntry, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_entry() {
            Ok(Some(e)) => Some(Ok(LogEntry {
                stream: e.stream,
                time: timefmt::nanos_system_time(e.time_nanos().unwrap_or(0)),
                log: e.log.to_vec(),
            })),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::writer::{LogConfig, LogWriter};
    use super::*;
    use std::time::Duration;

    fn stamp(i: u64) -> Vec<u8> {
        let mut v = Vec::new();
        timefmt::push_rfc3339_nano(&mut v, 1_700_000_000 + i as i64, 0);
        v
    }

    fn write_lines(path: &Path, n: u64, max_size: Option<u64>, max_files: u32) {
        let mut w = LogWriter::open(LogConfig {
            path: path.to_path_buf(),
            max_size,
            max_files,
        })
        .unwrap();
        for i in 0..n {
            let s = if i % 3 == 0 {
                Stream::Stderr
            } else {
                Stream::Stdout
            };
            w.append(s, format!("line {i}\n").as_bytes(), &stamp(i))
                .unwrap();
        }
        w.flush().unwrap();
    }

    fn lines(r: LogReader) -> Vec<String> {
        r.map(|e| String::from_utf8(e.unwrap().log).unwrap())
            .collect()
    }

    #[test]
    fn reads_across_rotated_files_in_order_with_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-json.log");
        write_lines(&path, 1000, Some(4096), 100);
        assert!(rotated_path(&path, 5).exists());
        let all = lines(read_logs(&path, ReadOptions::default()).unwrap());
        assert_eq!(all.len(), 1000);
        for (i, l) in all.iter().enumerate() {
            assert_eq!(l, &format!("line {i}\n"));
        }
        for n in [0usize, 1, 7, 60, 61, 999, 1000, 5000] {
            let got = lines(
                read_logs(
                    &path,
                    ReadOptions {
                        tail: Some(n),
                        ..Default::default()
                    },
                )
                .unwrap(),
            );
            let want: Vec<String> = (1000u64.saturating_sub(n as u64)..1000)
                .map(|i| format!("line {i}\n"))
                .collect();
            assert_eq!(got, want, "tail {n}");
        }
    }

    #[test]
    fn filters_streams_and_times() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-json.log");
        write_lines(&path, 30, None, 1);
        let err = lines(
            read_logs(
                &path,
                ReadOptions {
                    stdout: false,
                    ..Default::default()
                },
            )
            .unwrap(),
        );
        assert_eq!(err.len(), 10);
        assert_eq!(err[1], "line 3\n");
        let base = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let window = lines(
            read_logs(
                &path,
                ReadOptions {
                    since: Some(base + Duration::from_secs(10)),
                    until: Some(base + Duration::from_secs(12)),
                    ..Default::default()
                },
            )
            .unwrap(),
        );
        assert_eq!(window, ["line 10\n", "line 11\n", "line 12\n"]);
    }

    #[test]
    fn copy_to_frames_and_stamps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x-json.log");
        write_lines(&path, 2, None, 1);
        let mut out = Vec::new();
        read_logs(
            &path,
            ReadOptions {
                timestamps: true,
                ..Default::default()
            },
        )
        .unwrap()
        .copy_to(&mut out, Framing::Multiplexed)
        .unwrap();
        let first = b"2023-11-14T22:13:20.000000000Z line 0\n";
        assert_eq!(out[0], 2);
        assert_eq!(&out[4..8], &(first.len() as u32).to_be_bytes());
        assert_eq!(&out[8..8 + first.len()], first);
        assert_eq!(out[8 + first.len()], 1);
    }

    #[test]
    fn follow_sees_appends_and_rotation_and_stops_on_stop_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f-json.log");
        let stop = dir.path().join("exit.json");
        let mut w = LogWriter::open(LogConfig {
            path: path.clone(),
            max_size: Some(300),
            max_files: 3,
        })
        .unwrap();
        w.append(Stream::Stdout, b"first\n", &stamp(0)).unwrap();
        w.flush().unwrap();
        let r = read_logs(
            &path,
            ReadOptions {
                follow: true,
                tail: Some(0),
                stop_file: Some(stop.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        let reader = std::thread::spawn(move || lines(r));
        std::thread::sleep(Duration::from_millis(100));
        for i in 0..20 {
            w.append(
                Stream::Stdout,
                format!("follow {i}\n").as_bytes(),
                &stamp(i),
            )
            .unwrap();
            w.flush().unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        std::fs::write(&stop, "{}").unwrap();
        let got = reader.join().unwrap();
        let want: Vec<String> = (0..20).map(|i| format!("follow {i}\n")).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn follow_ends_on_cancel_and_waits_for_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late-json.log");
        let cancel = Arc::new(AtomicBool::new(false));
        let r = read_logs(
            &path,
            ReadOptions {
                follow: true,
                cancel: Some(cancel.clone()),
                ..Default::default()
            },
        )
        .unwrap();
        let reader = std::thread::spawn(move || lines(r));
        std::thread::sleep(Duration::from_millis(100));
        write_lines(&path, 3, None, 1);
        std::thread::sleep(Duration::from_millis(400));
        cancel.store(true, Ordering::Relaxed);
        assert_eq!(reader.join().unwrap().len(), 3);
    }
}
