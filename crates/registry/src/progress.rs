//! Progress reporting for pull and push, in the shape of Docker's JSON message stream (an
//! optional `id` — a short layer ID or a tag —, a `status` such as `Downloading`, `Pull
//! complete`, `Already exists`, `Layer already exists`, and byte counts), so the daemon can
//! forward it to API clients unchanged; plus a terminal renderer that draws it like the docker
//! CLI: one line per layer (`9ad63333ebc9: Downloading [=====>     ] 1.2MB/3.4MB`), then the
//! `Digest:` and `Status:` lines.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Byte counts of an ongoing transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressDetail {
    /// Bytes done.
    pub current: u64,
    /// Bytes in all, when known.
    pub total: Option<u64>,
}

/// One progress message (Docker's `JSONMessage` without the error fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressMessage {
    /// What the line is about: a short layer ID, a tag, or None for a free-standing line.
    pub id: Option<String>,
    /// `Pulling fs layer`, `Downloading`, `Pull complete`, `Digest: sha256:…`, …
    pub status: String,
    /// Byte counts, for `Downloading` / `Pushing`.
    pub detail: Option<ProgressDetail>,
}

impl ProgressMessage {
    /// A line about `id`.
    pub fn with_id(id: impl Into<String>, status: impl Into<String>) -> ProgressMessage {
        ProgressMessage {
            id: Some(id.into()),
            status: status.into(),
            detail: None,
        }
    }

    /// A free-standing line.
    pub fn line(status: impl Into<String>) -> ProgressMessage {
        ProgressMessage {
            id: None,
            status: status.into(),
            detail: None,
        }
    }

    /// A transfer update about `id`.
    pub fn transfer(id: &str, status: &str, current: u64, total: Option<u64>) -> ProgressMessage {
        ProgressMessage {
            id: Some(id.to_string()),
            status: status.to_string(),
            detail: Some(ProgressDetail { current, total }),
        }
    }

    /// Docker's `progress` string for this message (`[====>    ] 1.2MB/3.4MB`), empty when
    /// there are no byte counts.
    pub fn progress_string(&self) -> String {
        match self.detail {
            Some(d) => progress_bar(d.current, d.total.unwrap_or(0)),
            None => String::new(),
        }
    }

    /// The text after `id: ` on a terminal line: the status, then the bar if any.
    pub fn display_text(&self) -> String {
        let p = self.progress_string();
        if p.is_empty() {
            self.status.clone()
        } else {
            format!("{} {}", self.status, p)
        }
    }

    /// The message as Docker's engine API streams it:
    /// `{"status":…,"progressDetail":{"current":…,"total":…},"progress":…,"id":…}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("status".into(), self.status.clone().into());
        if let Some(d) = self.detail {
            let mut pd = serde_json::Map::new();
            pd.insert("current".into(), d.current.into());
            if let Some(t) = d.total {
                pd.insert("total".into(), t.into());
            }
            m.insert("progressDetail".into(), pd.into());
            m.insert("progress".into(), self.progress_string().into());
        } else if self.id.is_some() {
            m.insert("progressDetail".into(), serde_json::json!({}));
        }
        if let Some(id) = &self.id {
            m.insert("id".into(), id.clone().into());
        }
        serde_json::Value::Object(m)
    }
}

/// Receives progress messages. Implemented by [`TerminalProgress`], [`NoProgress`], and any
/// `Fn(&ProgressMessage) + Send + Sync` closure (the daemon's JSON streamer, tests).
pub trait Progress: Send + Sync {
    /// Handles one message.
    fn update(&self, msg: &ProgressMessage);
}

impl<F: Fn(&ProgressMessage) + Send + Sync> Progress for F {
    fn update(&self, msg: &ProgressMessage) {
        self(msg)
    }
}

/// Discards all progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _msg: &ProgressMessage) {}
}

/// Docker's size format (go-units `HumanSize`): decimal units, four significant digits
/// (`1.235MB`, `3.4MB`, `512B`, `10kB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", format_g4(v), UNITS[i])
}

/// `%.4g` for 0 <= v < 1000.
fn format_g4(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let exp = v.abs().log10().floor() as i32;
    let decimals = (3 - exp).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Docker's progress bar: `[` + `=`×(percent/2) + `>` + spaces to 50 + `] ` + `current/total`
/// (current right-aligned in 8 columns); just the current size when the total is unknown.
pub fn progress_bar(current: u64, total: u64) -> String {
    if total == 0 {
        if current == 0 {
            return String::new();
        }
        return format!("{:>8}", human_size(current));
    }
    let pct = (((current as f64 / total as f64) * 100.0) as i64 / 2).clamp(0, 50) as usize;
    let bar = format!("[{}>{}] ", "=".repeat(pct), " ".repeat(50 - pct));
    let numbers = if current > total {
        format!("{:>8}", human_size(current))
    } else {
        format!("{:>8}/{}", human_size(current), human_size(total))
    };
    bar + &numbers
}

/// Draws progress on the terminal like the docker CLI: with `indicatif` when standard output
/// is a terminal (one live line per id), else as plain lines, one per status change.
pub struct TerminalProgress {
    state: Mutex<TermState>,
}

enum TermState {
    Live {
        multi: Option<MultiProgress>,
        bars: HashMap<String, ProgressBar>,
    },
    Plain {
        out: Box<dyn Write + Send>,
        last: HashMap<String, String>,
    },
}

impl TerminalProgress {
    /// Renders to standard output: live lines on a terminal, plain lines otherwise.
    pub fn stdout() -> TerminalProgress {
        if std::io::stdout().is_terminal() {
            TerminalProgress {
                state: Mutex::new(TermState::Live {
                    multi: None,
                    bars: HashMap::new(),
                }),
            }
        } else {
            TerminalProgress::plain(Box::new(std::io::stdout()))
        }
    }

    /// Renders plain lines (one per status change, no live bars) to `out`.
    pub fn plain(out: Box<dyn Write + Send>) -> TerminalProgress {
        TerminalProgress {
            state: Mutex::new(TermState::Plain {
                out,
                last: HashMap::new(),
            }),
        }
    }

    /// Leaves every live line as it is last drawn and stops drawing (call at the end).
    pub fn finish(&self) {
        if let Ok(mut st) = self.state.lock() {
            if let TermState::Live { multi, bars } = &mut *st {
                close_group(multi, bars);
            }
        }
    }
}

fn close_group(multi: &mut Option<MultiProgress>, bars: &mut HashMap<String, ProgressBar>) {
    for (_, b) in bars.drain() {
        b.finish();
    }
    *multi = None;
}

impl Progress for TerminalProgress {
    fn update(&self, msg: &ProgressMessage) {
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        match &mut *st {
            TermState::Live { multi, bars } => match &msg.id {
                Some(id) => {
                    let m = multi.get_or_insert_with(|| {
                        MultiProgress::with_draw_target(ProgressDrawTarget::stdout())
                    });
                    let bar = bars.entry(id.clone()).or_insert_with(|| {
                        let b = m.add(ProgressBar::new(0));
                        b.set_style(
                            ProgressStyle::with_template("{msg}")
                                .unwrap_or_else(|_| ProgressStyle::default_bar()),
                        );
                        b
                    });
                    bar.set_message(format!("{id}: {}", msg.display_text()));
                }
                None => {
                    // A free-standing line ends the current group of live lines.
                    close_group(multi, bars);
                    println!("{}", msg.status);
                }
            },
            TermState::Plain { out, last } => {
                let line = match &msg.id {
                    Some(id) => {
                        if last.get(id) == Some(&msg.status) {
                            return;
                        }
                        last.insert(id.clone(), msg.status.clone());
                        format!("{id}: {}", msg.status)
                    }
                    None => msg.status.clone(),
                };
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn sizes_like_go_units() {
        for (n, s) in [
            (0, "0B"),
            (512, "512B"),
            (1000, "1kB"),
            (1234, "1.234kB"),
            (1_234_567, "1.235MB"),
            (3_400_000, "3.4MB"),
            (10_000, "10kB"),
            (2_147_483_648, "2.147GB"),
        ] {
            assert_eq!(human_size(n), s, "{n}");
        }
    }

    #[test]
    fn bars_like_docker() {
        let b = progress_bar(1_200_000, 3_400_000);
        assert_eq!(
            b,
            format!(
                "[{}>{}] {:>8}/3.4MB",
                "=".repeat(17),
                " ".repeat(33),
                "1.2MB"
            )
        );
        assert_eq!(
            progress_bar(5, 5),
            format!("[{}>] {:>8}/5B", "=".repeat(50), "5B")
        );
        assert_eq!(progress_bar(0, 0), "");
        assert_eq!(progress_bar(2000, 0), "     2kB");
        let m = ProgressMessage::transfer("abc", "Downloading", 1, Some(2));
        let j = m.to_json();
        assert_eq!(j["progressDetail"]["total"], 2);
        assert_eq!(j["id"], "abc");
        assert!(j["progress"]
            .as_str()
            .unwrap()
            .starts_with("[=========================>"));
        assert_eq!(
            ProgressMessage::line("Digest: x").to_json(),
            serde_json::json!({"status": "Digest: x"})
        );
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn plain_rendering_prints_status_changes() {
        let buf = Buf::default();
        let p = TerminalProgress::plain(Box::new(buf.clone()));
        p.update(&ProgressMessage::with_id(
            "latest",
            "Pulling from library/busybox",
        ));
        p.update(&ProgressMessage::with_id("abc", "Pulling fs layer"));
        p.update(&ProgressMessage::transfer(
            "abc",
            "Downloading",
            1,
            Some(10),
        ));
        p.update(&ProgressMessage::transfer(
            "abc",
            "Downloading",
            5,
            Some(10),
        ));
        p.update(&ProgressMessage::with_id("abc", "Pull complete"));
        p.update(&ProgressMessage::line("Digest: sha256:x"));
        p.finish();
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            out,
            "latest: Pulling from library/busybox\nabc: Pulling fs layer\nabc: Downloading\nabc: Pull complete\nDigest: sha256:x\n"
        );
    }
}
