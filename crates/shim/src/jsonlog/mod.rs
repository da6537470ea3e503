//! docker's `json-file` log format: one JSON object per line,
//! `{"log":"<chunk incl. newline>","stream":"stdout"|"stderr","time":"<RFC3339Nano UTC>"}`.
//!
//! Owns: encoding an entry byte-for-byte as dockerd does (its escaping: `\n`, `\r`, `\"`, `\\`,
//! other control bytes and `<`, `>`, `&` as `\u00XX`, invalid UTF-8 as `\ufffd`, U+2028/U+2029
//! escaped), decoding one back with a fast path for exactly that shape (and serde_json for any
//! other), the rotating writer ([`writer`]) and the reader behind `docker logs` ([`reader`]).

pub mod reader;
pub mod writer;

use serde::{Deserialize, Serialize};

/// Which output stream an entry came from. The numbers are docker's attach/logs framing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// The container's stdin (only in attach framing).
    Stdin = 0,
    /// The container's stdout (and a terminal's output).
    Stdout = 1,
    /// The container's stderr.
    Stderr = 2,
}

impl Stream {
    /// The name used in the log file.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdin => "stdin",
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    /// From docker's framing byte.
    pub fn from_u8(b: u8) -> Option<Stream> {
        match b {
            0 => Some(Stream::Stdin),
            1 => Some(Stream::Stdout),
            2 => Some(Stream::Stderr),
            _ => None,
        }
    }
}

/// A line of the log file that is not a log entry.
#[derive(Debug, thiserror::Error)]
#[error("not a json-file log entry ({reason}): {excerpt:?}")]
pub struct DecodeError {
    /// What was wrong.
    pub reason: String,
    /// The start of the offending line.
    pub excerpt: String,
}

fn decode_error(line: &[u8], reason: impl Into<String>) -> DecodeError {
    DecodeError {
        reason: reason.into(),
        excerpt: String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned(),
    }
}

/// 0: copy as is; 1: escape (ASCII); 2: start of a multi-byte sequence (check UTF-8).
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i < 0x20
            || i == b'"' as usize
            || i == b'\\' as usize
            || i == b'<' as usize
            || i == b'>' as usize
            || i == b'&' as usize
        {
            1
        } else if i >= 0x80 {
            2
        } else {
            0
        };
        i += 1;
    }
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Length of the valid UTF-8 sequence at the start of `s` (which starts with a byte >= 0x80),
/// or `None` where Go's `utf8.DecodeRune` would return `RuneError, 1`.
fn utf8_len(s: &[u8]) -> Option<usize> {
    let cont = |i: usize, lo: u8, hi: u8| s.get(i).is_some_and(|&b| (lo..=hi).contains(&b));
    match s[0] {
        0xC2..=0xDF if cont(1, 0x80, 0xBF) => Some(2),
        0xE0 if cont(1, 0xA0, 0xBF) && cont(2, 0x80, 0xBF) => Some(3),
        0xE1..=0xEC | 0xEE..=0xEF if cont(1, 0x80, 0xBF) && cont(2, 0x80, 0xBF) => Some(3),
        0xED if cont(1, 0x80, 0x9F) && cont(2, 0x80, 0xBF) => Some(3),
        0xF0 if cont(1, 0x90, 0xBF) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) => Some(4),
        0xF1..=0xF3 if cont(1, 0x80, 0xBF) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) => Some(4),
        0xF4 if cont(1, 0x80, 0x8F) && cont(2, 0x80, 0xBF) && cont(3, 0x80, 0xBF) => Some(4),
        _ => None,
    }
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Non-zero if some byte of `x` is zero (exact as a yes/no answer).
#[inline]
fn has_zero(x: u64) -> u64 {
    x.wrapping_sub(LO) & !x & HI
}

/// Does any of these 8 bytes need escaping or a UTF-8 check? (SWAR: bytes >= 0x80, < 0x20,
/// '\\', '<' or '>' (0x3c/0x3e differ in bit 1), '"' or '&' (0x22/0x26 differ in bit 2).)
#[inline]
fn needs_attention(w: u64) -> bool {
    let below_space = w.wrapping_sub(0x20 * LO) & !w & HI;
    (w & HI)
        | below_space
        | has_zero(w ^ (u64::from(b'\\') * LO))
        | has_zero((w | (0x02 * LO)) ^ (0x3e * LO))
        | has_zero((w | (0x04 * LO)) ^ (0x26 * LO))
        != 0
}

/// Appends `s` as the body of a JSON string (no quotes), escaped exactly as dockerd does.
pub fn escape_into(out: &mut Vec<u8>, s: &[u8]) {
    out.reserve(s.len() + 8);
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        // Skip plain ASCII eight bytes at a time.
        while i + 8 <= s.len() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&s[i..i + 8]);
            if needs_attention(u64::from_le_bytes(w)) {
                break;
            }
            i += 8;
        }
        if i >= s.len() {
            break;
        }
        let b = s[i];
        match CLASS[b as usize] {
            0 => {
                i += 1;
            }
            1 => {
                out.extend_from_slice(&s[start..i]);
                match b {
                    b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    _ => out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[(b >> 4) as usize],
                        HEX[(b & 15) as usize],
                    ]),
                }
                i += 1;
                start = i;
            }
            _ => match utf8_len(&s[i..]) {
                None => {
                    out.extend_from_slice(&s[start..i]);
                    out.extend_from_slice(b"\\ufffd");
                    i += 1;
                    start = i;
                }
                Some(3) if b == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] & 0xFE) == 0xA8 => {
                    out.extend_from_slice(&s[start..i]);
                    out.extend_from_slice(if s[i + 2] == 0xA8 {
                        b"\\u2028"
                    } else {
                        b"\\u2029"
                    });
                    i += 3;
                    start = i;
                }
                Some(n) => i += n,
            },
        }
    }
    out.extend_from_slice(&s[start..]);
}

/// Appends one entry, newline-terminated, exactly as dockerd writes it. `time` is the
/// already formatted RFC3339Nano time stamp. An empty `log` is left out, as docker does.
pub fn encode_entry(out: &mut Vec<u8>, log: &[u8], stream: Stream, time: &[u8]) {
    if log.is_empty() {
        out.extend_from_slice(b"{\"stream\":\"");
    } else {
        out.extend_from_slice(b"{\"log\":\"");
        escape_into(out, log);
        out.extend_from_slice(b"\",\"stream\":\"");
    }
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(time);
    out.extend_from_slice(b"\"}\n");
}

fn hex4(s: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in s.get(..4)? {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

fn push_char(out: &mut Vec<u8>, c: u32) {
    let ch = char::from_u32(c).unwrap_or('\u{FFFD}');
    let mut b = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
}

/// Decodes the JSON string body starting at `pos` (just after the opening quote) into `out`;
/// returns the index just after the closing quote.
fn unescape_string(s: &[u8], mut pos: usize, out: &mut Vec<u8>) -> Option<usize> {
    loop {
        let j = pos + memchr::memchr2(b'"', b'\\', s.get(pos..)?)?;
        out.extend_from_slice(&s[pos..j]);
        if s[j] == b'"' {
            return Some(j + 1);
        }
        let e = *s.get(j + 1)?;
        pos = j + 2;
        match e {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'"' => out.push(b'"'),
            b'\\' => out.push(b'\\'),
            b'/' => out.push(b'/'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'u' => {
                let hi = hex4(s.get(pos..)?)?;
                pos += 4;
                if (0xD800..0xDC00).contains(&hi)
                    && s.get(pos) == Some(&b'\\')
                    && s.get(pos + 1) == Some(&b'u')
                {
                    if let Some(lo) =
                        hex4(s.get(pos + 2..)?).filter(|l| (0xDC00..0xE000).contains(l))
                    {
                        pos += 6;
                        push_char(out, 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
                        continue;
                    }
                }
                push_char(out, hi);
            }
            _ => return None,
        }
    }
}

/// The loose shape, for lines the fast path does not recognise.
#[derive(Deserialize)]
struct Loose {
    #[serde(default)]
    log: String,
    #[serde(default)]
    stream: String,
    #[serde(default)]
    time: String,
}

fn stream_named(name: &[u8]) -> Option<Stream> {
    match name {
        b"stdout" => Some(Stream::Stdout),
        b"stderr" => Some(Stream::Stderr),
        _ => None,
    }
}

/// Decodes one line of the log file (without its newline): the log bytes go to `log`, the
/// time stamp text to `time` (both cleared first); returns the stream.
pub fn decode_entry(
    line: &[u8],
    log: &mut Vec<u8>,
    time: &mut Vec<u8>,
) -> Result<Stream, DecodeError> {
    log.clear();
    time.clear();
    if let Some(s) = decode_fast(line, log, time) {
        return Ok(s);
    }
    log.clear();
    time.clear();
    let v: Loose = serde_json::from_slice(line).map_err(|e| decode_error(line, e.to_string()))?;
    let stream = stream_named(v.stream.as_bytes())
        .ok_or_else(|| decode_error(line, format!("unknown stream {:?}", v.stream)))?;
    log.extend_from_slice(v.log.as_bytes());
    time.extend_from_slice(v.time.as_bytes());
    Ok(stream)
}

/// The shape dockerd (and the shim) writes, decoded without a JSON parser.
fn decode_fast(line: &[u8], log: &mut Vec<u8>, time: &mut Vec<u8>) -> Option<Stream> {
    const LOG: &[u8] = b"{\"log\":\"";
    const STREAM: &[u8] = b",\"stream\":\"";
    const STREAM_FIRST: &[u8] = b"{\"stream\":\"";
    const TIME: &[u8] = b"\",\"time\":\"";
    let rest = if line.starts_with(LOG) {
        let end = unescape_string(line, LOG.len(), log)?;
        line.get(end..)?.strip_prefix(STREAM)?
    } else {
        line.strip_prefix(STREAM_FIRST)?
    };
    let q = memchr::memchr(b'"', rest)?;
    let stream = stream_named(&rest[..q])?;
    let rest = rest[q..].strip_prefix(TIME)?;
    let q = memchr::memchr(b'"', rest)?;
    if &rest[q..] != b"\"}" {
        return None;
    }
    time.extend_from_slice(&rest[..q]);
    Some(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &[u8]) -> String {
        let mut v = Vec::new();
        escape_into(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes_like_dockerd() {
        assert_eq!(esc(b"hello\n"), "hello\\n");
        assert_eq!(esc(b"a\"b\\c\r\t\x01"), "a\\\"b\\\\c\\r\\u0009\\u0001");
        assert_eq!(esc(b"<a&b>"), "\\u003ca\\u0026b\\u003e");
        assert_eq!(esc("héllo €𝄞".as_bytes()), "héllo €𝄞");
        assert_eq!(esc(b"bad\xff\xc3"), "bad\\ufffd\\ufffd");
        assert_eq!(esc("x\u{2028}y\u{2029}".as_bytes()), "x\\u2028y\\u2029");
        // Surrogates encoded in UTF-8 and overlong forms are invalid, byte by byte.
        assert_eq!(esc(b"\xed\xa0\x80"), "\\ufffd\\ufffd\\ufffd");
        assert_eq!(esc(b"\xc0\xaf"), "\\ufffd\\ufffd");
    }

    #[test]
    fn the_word_scan_agrees_with_the_table() {
        for b in 0..=255u8 {
            for pos in 0..8 {
                let mut w = *b"abcdefgh";
                w[pos] = b;
                assert_eq!(
                    needs_attention(u64::from_le_bytes(w)),
                    CLASS[b as usize] != 0,
                    "byte {b:#x} at {pos}"
                );
            }
        }
    }

    #[test]
    fn entries_round_trip_through_both_decoders() {
        let cases: [&[u8]; 6] = [
            b"hello\n",
            b"partial",
            b"tab\there \"q\" \\ <&>\n",
            "ünïcödé 𝄞\u{2028}\n".as_bytes(),
            b"\x00\x1f\x7f\n",
            b"",
        ];
        for (i, c) in cases.iter().enumerate() {
            let stream = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            let mut line = Vec::new();
            encode_entry(&mut line, c, stream, b"2023-11-14T22:13:20.5Z");
            assert_eq!(line.last(), Some(&b'\n'));
            let body = &line[..line.len() - 1];
            // serde_json agrees it is valid JSON with the same content.
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            assert_eq!(v["stream"], stream.as_str());
            let (mut log, mut time) = (Vec::new(), Vec::new());
            assert_eq!(decode_entry(body, &mut log, &mut time).unwrap(), stream);
            assert_eq!(log, *c, "case {i}");
            assert_eq!(time, b"2023-11-14T22:13:20.5Z");
        }
    }

    #[test]
    fn other_shapes_fall_back_to_serde() {
        let line = br#"{"log":"x\u00e9\n","stream":"stderr","attrs":{"a":"b"},"time":"2023-11-14T22:13:20Z"}"#;
        let (mut log, mut time) = (Vec::new(), Vec::new());
        assert_eq!(
            decode_entry(line, &mut log, &mut time).unwrap(),
            Stream::Stderr
        );
        assert_eq!(log, "xé\n".as_bytes());
        assert!(decode_entry(b"not json", &mut log, &mut time).is_err());
        assert!(decode_entry(
            br#"{"log":"x","stream":"other","time":"t"}"#,
            &mut log,
            &mut time
        )
        .is_err());
    }

    #[test]
    fn docker_written_line_decodes() {
        // A line as dockerd 20.10 writes it.
        let line = br#"{"log":"\u003chtml\u003e \u0026 caf\u00e9\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}"#;
        let (mut log, mut time) = (Vec::new(), Vec::new());
        decode_entry(line, &mut log, &mut time).unwrap();
        assert_eq!(log, "<html> & café\n".as_bytes());
    }
}
