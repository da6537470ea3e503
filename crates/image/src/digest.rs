//! Content digests (`sha256:<64 hex>`, `sha512:<128 hex>`): parsing, validation, hashing, and a
//! streaming [`Verifier`] that hashes data as it is written and checks the final digest and
//! size. Every blob that enters or leaves berth goes through this module.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256, Sha512};

/// What went wrong with a digest.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    /// The string is not `algorithm:hex`.
    #[error("invalid digest {0:?}: expected \"sha256:<64 lowercase hex digits>\"")]
    Format(String),
    /// The algorithm is not one berth supports.
    #[error("unsupported digest algorithm {0:?} in {1:?}: use sha256 or sha512")]
    Algorithm(String, String),
    /// The hex part has the wrong length or characters.
    #[error("invalid {algorithm} digest {digest:?}: expected {expected} lowercase hex digits")]
    Hex {
        /// The algorithm named.
        algorithm: &'static str,
        /// The offending string.
        digest: String,
        /// The number of hex digits the algorithm needs.
        expected: usize,
    },
    /// The data does not hash to the expected digest.
    #[error("digest mismatch: expected {expected}, content hashes to {actual}")]
    Mismatch {
        /// The digest the content should have had.
        expected: Digest,
        /// The digest the content has.
        actual: Digest,
    },
    /// The data has the wrong length.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    Size {
        /// The digest of the content.
        digest: Digest,
        /// The size the content should have had.
        expected: u64,
        /// The size the content has.
        actual: u64,
    },
}

/// A hash algorithm usable in a digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256 (the one every registry and image uses).
    Sha256,
    /// SHA-512.
    Sha512,
}

impl Algorithm {
    /// The name used in digest strings.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The number of hex digits of a digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }

    /// A fresh incremental hasher for this algorithm.
    pub fn hasher(self) -> Hasher {
        match self {
            Algorithm::Sha256 => Hasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => Hasher::Sha512(Sha512::new()),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A content digest: an algorithm and the lowercase hex of the hash.
///
/// Ordered and hashable so it can key maps and sets. Serialises as its string form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// Parses and validates `algorithm:hex` (lowercase hex of the right length).
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Format(s.to_string()))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            "" => return Err(DigestError::Format(s.to_string())),
            other => return Err(DigestError::Algorithm(other.to_string(), s.to_string())),
        };
        Digest::from_hex(algorithm, hex).map_err(|_| DigestError::Hex {
            algorithm: algorithm.name(),
            digest: s.to_string(),
            expected: algorithm.hex_len(),
        })
    }

    /// Builds a digest from an algorithm and its hex string (validated).
    pub fn from_hex(algorithm: Algorithm, hex: &str) -> Result<Digest, DigestError> {
        let ok = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err(DigestError::Hex {
                algorithm: algorithm.name(),
                digest: format!("{}:{}", algorithm.name(), hex),
                expected: algorithm.hex_len(),
            });
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_string(),
        })
    }

    /// The SHA-256 digest of `data`.
    pub fn sha256(data: &[u8]) -> Digest {
        Digest::of(Algorithm::Sha256, data)
    }

    /// The digest of `data` under `algorithm`.
    pub fn of(algorithm: Algorithm, data: &[u8]) -> Digest {
        let mut h = algorithm.hasher();
        h.update(data);
        h.finish()
    }

    /// Hashes everything `r` yields with SHA-256; returns the digest and byte count.
    pub fn sha256_reader<R: Read>(r: R) -> io::Result<(Digest, u64)> {
        Digest::of_reader(Algorithm::Sha256, r)
    }

    /// Hashes everything `r` yields; returns the digest and byte count.
    pub fn of_reader<R: Read>(algorithm: Algorithm, mut r: R) -> io::Result<(Digest, u64)> {
        let mut h = algorithm.hasher();
        let mut buf = vec![0u8; 64 * 1024];
        let mut n = 0u64;
        loop {
            let k = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            h.update(&buf[..k]);
            n += k as u64;
        }
        Ok((h.finish(), n))
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex of the hash (no algorithm prefix).
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 12 hex digits, as `docker images` shows IDs.
    pub fn short(&self) -> &str {
        &self.hex[..12]
    }

    /// Checks `data` against this digest.
    pub fn verify(&self, data: &[u8]) -> Result<(), DigestError> {
        let actual = Digest::of(self.algorithm, data);
        if &actual != self {
            return Err(DigestError::Mismatch {
                expected: self.clone(),
                actual,
            });
        }
        Ok(())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An incremental hasher for one [`Algorithm`].
#[derive(Clone)]
pub enum Hasher {
    /// SHA-256 state.
    Sha256(Sha256),
    /// SHA-512 state.
    Sha512(Sha512),
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// Finishes and returns the digest.
    pub fn finish(self) -> Digest {
        match self {
            Hasher::Sha256(h) => Digest {
                algorithm: Algorithm::Sha256,
                hex: hex::encode(h.finalize()),
            },
            Hasher::Sha512(h) => Digest {
                algorithm: Algorithm::Sha512,
                hex: hex::encode(h.finalize()),
            },
        }
    }
}

impl Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A writer that hashes everything passing through it on the way to an inner writer, and at
/// the end checks the digest (and optionally the size) it was told to expect.
///
/// With `W = std::io::Sink` it is a pure verifier. Writing more bytes than an expected size is
/// refused at once (so an over-long download stops early).
pub struct Verifier<W: Write> {
    inner: W,
    hasher: Hasher,
    written: u64,
    expected: Option<Digest>,
    expected_size: Option<u64>,
}

impl Verifier<io::Sink> {
    /// A verifier that only hashes (no inner writer).
    pub fn sink(expected: Option<Digest>, expected_size: Option<u64>) -> Self {
        Verifier::new(io::sink(), Algorithm::Sha256, expected, expected_size)
    }
}

impl<W: Write> Verifier<W> {
    /// Wraps `inner`. The hash algorithm is the expected digest's, or `algorithm` when none is
    /// expected.
    pub fn new(
        inner: W,
        algorithm: Algorithm,
        expected: Option<Digest>,
        expected_size: Option<u64>,
    ) -> Self {
        let alg = expected.as_ref().map(|d| d.algorithm).unwrap_or(algorithm);
        Verifier {
            inner,
            hasher: alg.hasher(),
            written: 0,
            expected,
            expected_size,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// The inner writer, mutably (writes to it bypass the hash).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Finishes hashing and checks size and digest; returns the digest, the byte count and the
    /// inner writer. Fails on any mismatch.
    pub fn finish(self) -> Result<(Digest, u64, W), DigestError> {
        let actual = self.hasher.finish();
        if let Some(size) = self.expected_size {
            if size != self.written {
                return Err(DigestError::Size {
                    digest: self.expected.clone().unwrap_or(actual),
                    expected: size,
                    actual: self.written,
                });
            }
        }
        if let Some(exp) = self.expected {
            if exp != actual {
                return Err(DigestError::Mismatch {
                    expected: exp,
                    actual,
                });
            }
        }
        Ok((actual, self.written, self.inner))
    }
}

impl<W: Write> Write for Verifier<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(size) = self.expected_size {
            if self.written + buf.len() as u64 > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "content is longer than the expected {size} bytes{}",
                        self.expected
                            .as_ref()
                            .map(|d| format!(" of {d}"))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader adapter that hashes what is read through it (used to compute a diffID while a
/// decompressed layer streams through the unpacker).
pub struct HashingReader<R: Read> {
    inner: R,
    hasher: Hasher,
    read: u64,
}

impl<R: Read> HashingReader<R> {
    /// Wraps `inner`, hashing with SHA-256.
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Algorithm::Sha256.hasher(),
            read: 0,
        }
    }

    /// Reads the rest of the stream (so the hash covers all of it) and returns the digest and
    /// total byte count.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        Ok((self.hasher.finish(), self.read))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_and_display() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d.algorithm(), Algorithm::Sha256);
        assert_eq!(d.short(), "e3b0c44298fc");
        assert_eq!(Digest::sha256(b""), d);
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{EMPTY}\""));
        let back: Digest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn rejects_bad() {
        for bad in [
            "",
            "sha256",
            "sha256:",
            "sha256:abc",
            "md5:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
            "sha256:../../../../etc/passwd/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            ":e3b0",
        ] {
            assert!(Digest::parse(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<Digest>("\"sha256:x\"").is_err());
        let d512 = Digest::of(Algorithm::Sha512, b"x");
        assert_eq!(Digest::parse(&d512.to_string()).unwrap(), d512);
    }

    #[test]
    fn verifier() {
        let data = b"hello world";
        let d = Digest::sha256(data);
        let mut v = Verifier::new(Vec::new(), Algorithm::Sha256, Some(d.clone()), Some(11));
        v.write_all(data).unwrap();
        let (got, n, out) = v.finish().unwrap();
        assert_eq!((got, n, out.as_slice()), (d.clone(), 11, &data[..]));

        let mut v = Verifier::sink(Some(d.clone()), Some(11));
        v.write_all(b"hello").unwrap();
        assert!(matches!(v.finish(), Err(DigestError::Size { .. })));

        let mut v = Verifier::sink(Some(d.clone()), Some(5));
        assert!(v.write_all(data).is_err());

        let mut v = Verifier::sink(Some(d), None);
        v.write_all(b"hello there").unwrap();
        assert!(matches!(v.finish(), Err(DigestError::Mismatch { .. })));
    }

    #[test]
    fn hashing_reader() {
        let r = HashingReader::new(&b"abc"[..]);
        let (d, n) = r.finish().unwrap();
        assert_eq!(n, 3);
        assert_eq!(d, Digest::sha256(b"abc"));
    }
}
