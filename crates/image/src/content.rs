//! The content-addressed blob store: `<root>/blobs/<alg>/<hex>`, written through
//! `<root>/ingest/<random>` and renamed into place only after the digest (and size) have been
//! verified and the data fsynced. A blob that is present is therefore always complete and
//! correct; a failed or abandoned write leaves nothing behind.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::digest::{Algorithm, Digest, DigestError, Verifier};

/// What went wrong in the content store.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// A filesystem operation failed.
    #[error("content store: {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On what path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The blob is not in the store.
    #[error("blob {0} not found in the content store (pull or load the image again)")]
    NotFound(Digest),
    /// The content does not match its digest or size.
    #[error("content store: {0}")]
    Verify(#[from] DigestError),
    /// The data stream failed while being written.
    #[error("content store: writing blob{}: {source}", .digest.as_ref().map(|d| format!(" {d}")).unwrap_or_default())]
    Write {
        /// The blob being written, when known.
        digest: Option<Digest>,
        /// The error.
        source: io::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A content-addressed blob store rooted at a directory.
#[derive(Debug, Clone)]
pub struct ContentStore {
    root: PathBuf,
}

/// Summary of a garbage collection.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs removed.
    pub removed: Vec<Digest>,
    /// Bytes freed.
    pub bytes_freed: u64,
}

impl ContentStore {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<ContentStore, ContentError> {
        let root = root.into();
        for sub in ["blobs/sha256", "blobs/sha512", "ingest"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(io_err("creating", &p))?;
        }
        Ok(ContentStore { root })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob lives (whether or not it exists).
    pub fn path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().name())
            .join(d.hex())
    }

    /// Whether the blob is present.
    pub fn has(&self, d: &Digest) -> bool {
        self.path(d).is_file()
    }

    /// The blob's size in bytes.
    pub fn size(&self, d: &Digest) -> Result<u64, ContentError> {
        let p = self.path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound(d.clone())),
            Err(e) => Err(io_err("stat", &p)(e)),
        }
    }

    /// Opens the blob for reading (unverified; see [`ContentStore::read_verified`]).
    pub fn read(&self, d: &Digest) -> Result<File, ContentError> {
        let p = self.path(d);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(ContentError::NotFound(d.clone())),
            Err(e) => Err(io_err("opening", &p)(e)),
        }
    }

    /// Opens the blob as a reader that fails at end of stream if the content does not hash to
    /// its digest (detects on-disk corruption while streaming).
    pub fn read_verified(&self, d: &Digest) -> Result<VerifiedReader<File>, ContentError> {
        let f = self.read(d)?;
        Ok(VerifiedReader::new(f, d.clone()))
    }

    /// Reads a whole blob into memory and verifies it (for manifests, configs, indexes).
    pub fn get_bytes(&self, d: &Digest) -> Result<Vec<u8>, ContentError> {
        let p = self.path(d);
        let data = match fs::read(&p) {
            Ok(v) => v,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ContentError::NotFound(d.clone()))
            }
            Err(e) => return Err(io_err("reading", &p)(e)),
        };
        d.verify(&data)?;
        Ok(data)
    }

    /// Re-hashes a stored blob; an error if it is missing or corrupt.
    pub fn verify(&self, d: &Digest) -> Result<(), ContentError> {
        let f = self.read(d)?;
        let (actual, _) =
            Digest::of_reader(d.algorithm(), f).map_err(|e| io_err("reading", &self.path(d))(e))?;
        if &actual != d {
            return Err(DigestError::Mismatch {
                expected: d.clone(),
                actual,
            }
            .into());
        }
        Ok(())
    }

    /// Starts writing a blob. With `expected`, `commit` checks the digest and size; without,
    /// the blob is stored under the SHA-256 of what was written.
    pub fn writer(&self, expected: Option<(&Digest, u64)>) -> Result<BlobWriter, ContentError> {
        self.writer_with(expected.map(|(d, s)| (d.clone(), Some(s))))
    }

    /// Like [`ContentStore::writer`], with an expected digest whose size may be unknown.
    pub fn writer_with(
        &self,
        expected: Option<(Digest, Option<u64>)>,
    ) -> Result<BlobWriter, ContentError> {
        let ingest = self.root.join("ingest");
        let (file, path) = create_unique(&ingest)?;
        let (exp_d, exp_s) = match expected {
            Some((d, s)) => (Some(d), s),
            None => (None, None),
        };
        Ok(BlobWriter {
            store: self.clone(),
            verifier: Some(Verifier::new(
                io::BufWriter::with_capacity(128 * 1024, file),
                Algorithm::Sha256,
                exp_d,
                exp_s,
            )),
            tmp: path,
        })
    }

    /// Stores `data`; returns its SHA-256 digest. Idempotent.
    pub fn put_bytes(&self, data: &[u8]) -> Result<Digest, ContentError> {
        let d = Digest::sha256(data);
        if self.has(&d) {
            return Ok(d);
        }
        let mut w = self.writer(Some((&d, data.len() as u64)))?;
        w.write_all(data).map_err(|source| ContentError::Write {
            digest: Some(d.clone()),
            source,
        })?;
        w.commit()
    }

    /// Streams `r` into the store, verifying against `expected` when given. Returns the digest
    /// and size.
    pub fn put_reader<R: Read>(
        &self,
        mut r: R,
        expected: Option<(Digest, Option<u64>)>,
    ) -> Result<(Digest, u64), ContentError> {
        let exp = expected.as_ref().map(|(d, _)| d.clone());
        let mut w = self.writer_with(expected)?;
        io::copy(&mut r, &mut w).map_err(|source| ContentError::Write {
            digest: exp,
            source,
        })?;
        let n = w.written();
        let d = w.commit()?;
        Ok((d, n))
    }

    /// Removes a blob. Not an error if it is absent.
    pub fn delete(&self, d: &Digest) -> Result<(), ContentError> {
        let p = self.path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("removing", &p)(e)),
        }
    }

    /// Every blob in the store (files whose names are not valid digests are skipped).
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let mut out = Vec::new();
        for alg in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("blobs").join(alg.name());
            let rd = match fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("listing", &dir)(e)),
            };
            for ent in rd {
                let ent = ent.map_err(io_err("listing", &dir))?;
                if let Some(name) = ent.file_name().to_str() {
                    if let Ok(d) = Digest::from_hex(alg, name) {
                        out.push(d);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes every blob not in `keep`, and ingest files abandoned more than an hour ago.
    pub fn gc(&self, keep: &HashSet<Digest>) -> Result<GcReport, ContentError> {
        let mut rep = GcReport::default();
        for d in self.list()? {
            if keep.contains(&d) {
                continue;
            }
            let size = self.size(&d).unwrap_or(0);
            self.delete(&d)?;
            rep.bytes_freed += size;
            rep.removed.push(d);
        }
        self.clean_ingest(Duration::from_secs(3600))?;
        Ok(rep)
    }

    /// Removes ingest files not modified for `older_than` (left by crashed writers).
    pub fn clean_ingest(&self, older_than: Duration) -> Result<(), ContentError> {
        let dir = self.root.join("ingest");
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err("listing", &dir)(e)),
        };
        let now = SystemTime::now();
        for ent in rd.flatten() {
            let old = ent
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default() >= older_than)
                .unwrap_or(false);
            if old {
                let _ = fs::remove_file(ent.path());
            }
        }
        Ok(())
    }
}

/// Creates `<dir>/<random hex>` exclusively.
pub fn create_unique(dir: &Path) -> Result<(File, PathBuf), ContentError> {
    loop {
        let name = random_hex(16)?;
        let path = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .read(true)
            .open(&path)
        {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("creating ingest file in", dir)(e)),
        }
    }
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> Result<String, ContentError> {
    let mut buf = vec![0u8; n];
    getrandom::getrandom(&mut buf).map_err(|e| ContentError::Io {
        what: "getting random bytes for",
        path: PathBuf::from("ingest name"),
        source: io::Error::other(e.to_string()),
    })?;
    Ok(hex::encode(buf))
}

/// Fsyncs a directory so a rename inside it is durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A blob being written. Write the data, then [`BlobWriter::commit`]. Dropping it without
/// committing removes the partial data.
pub struct BlobWriter {
    store: ContentStore,
    verifier: Option<Verifier<io::BufWriter<File>>>,
    tmp: PathBuf,
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.verifier.as_ref().map(|v| v.written()).unwrap_or(0)
    }

    /// Path of the partial file (in ingest/).
    pub fn ingest_path(&self) -> &Path {
        &self.tmp
    }

    /// Verifies the digest and size, fsyncs and moves the blob into place. On any error the
    /// partial data is removed and nothing is added to the store.
    pub fn commit(mut self) -> Result<Digest, ContentError> {
        let res = self.commit_inner();
        if res.is_err() {
            let _ = fs::remove_file(&self.tmp);
        }
        res
    }

    fn commit_inner(&mut self) -> Result<Digest, ContentError> {
        let v = match self.verifier.take() {
            Some(v) => v,
            None => {
                return Err(ContentError::Write {
                    digest: None,
                    source: io::Error::other("blob writer already committed"),
                })
            }
        };
        let (digest, _, buf) = v.finish()?;
        let file = buf.into_inner().map_err(|e| ContentError::Write {
            digest: Some(digest.clone()),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err("fsync", &self.tmp))?;
        drop(file);
        let dst = self.store.path(&digest);
        if dst.is_file() {
            // Someone stored the same content meanwhile: content-addressed, so it is identical.
            let _ = fs::remove_file(&self.tmp);
            return Ok(digest);
        }
        fs::rename(&self.tmp, &dst).map_err(io_err("moving blob into", &dst))?;
        if let Some(parent) = dst.parent() {
            fsync_dir(parent).map_err(io_err("fsync", parent))?;
        }
        Ok(digest)
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.verifier.as_mut() {
            Some(v) => v.write(buf),
            None => Err(io::Error::other("blob writer already committed")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self.verifier.as_mut() {
            Some(v) => v.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.verifier.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// A reader that returns an error at end of stream when the data read does not hash to the
/// expected digest.
pub struct VerifiedReader<R: Read> {
    inner: R,
    hasher: Option<crate::digest::Hasher>,
    expected: Digest,
}

impl<R: Read> VerifiedReader<R> {
    /// Wraps `inner`, expecting `expected`.
    pub fn new(inner: R, expected: Digest) -> Self {
        VerifiedReader {
            inner,
            hasher: Some(expected.algorithm().hasher()),
            expected,
        }
    }
}

impl<R: Read> Read for VerifiedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            if let Some(h) = self.hasher.as_mut() {
                h.update(&buf[..n]);
            }
        } else if !buf.is_empty() {
            if let Some(h) = self.hasher.take() {
                let actual = h.finish();
                if actual != self.expected {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        DigestError::Mismatch {
                            expected: self.expected.clone(),
                            actual,
                        },
                    ));
                }
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest_empty(s: &ContentStore) -> bool {
        fs::read_dir(s.root().join("ingest"))
            .unwrap()
            .next()
            .is_none()
    }

    #[test]
    fn put_read_list_delete() {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path()).unwrap();
        let d = s.put_bytes(b"hello").unwrap();
        assert!(s.has(&d));
        assert_eq!(s.size(&d).unwrap(), 5);
        assert_eq!(s.get_bytes(&d).unwrap(), b"hello");
        assert_eq!(s.put_bytes(b"hello").unwrap(), d);
        let mut r = s.read_verified(&d).unwrap();
        let mut v = Vec::new();
        r.read_to_end(&mut v).unwrap();
        assert_eq!(v, b"hello");
        s.verify(&d).unwrap();
        assert_eq!(s.list().unwrap(), vec![d.clone()]);
        assert!(s.path(&d).ends_with(format!("blobs/sha256/{}", d.hex())));
        s.delete(&d).unwrap();
        assert!(!s.has(&d));
        assert!(matches!(s.read(&d), Err(ContentError::NotFound(_))));
        assert!(ingest_empty(&s));
    }

    #[test]
    fn mismatch_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path()).unwrap();
        let want = Digest::sha256(b"the real content");
        let mut w = s.writer(Some((&want, 16))).unwrap();
        w.write_all(b"evil content!!!!").unwrap();
        assert!(matches!(
            w.commit(),
            Err(ContentError::Verify(DigestError::Mismatch { .. }))
        ));
        assert!(!s.has(&want));
        assert!(s.list().unwrap().is_empty());
        assert!(ingest_empty(&s));

        // truncated
        let mut w = s.writer(Some((&want, 16))).unwrap();
        w.write_all(b"the real").unwrap();
        assert!(matches!(
            w.commit(),
            Err(ContentError::Verify(DigestError::Size { .. }))
        ));
        assert!(s.list().unwrap().is_empty());
        assert!(ingest_empty(&s));

        // abandoned
        let mut w = s.writer(None).unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert!(ingest_empty(&s));

        // too long: refused while writing
        let mut w = s.writer(Some((&want, 16))).unwrap();
        assert!(w.write_all(b"the real content and more").is_err());
        drop(w);
        assert!(ingest_empty(&s));
    }

    #[test]
    fn corruption_detected_and_gc() {
        let t = tempfile::tempdir().unwrap();
        let s = ContentStore::open(t.path()).unwrap();
        let a = s.put_bytes(b"aaaa").unwrap();
        let (b, n) = s.put_reader(&b"bbbbbb"[..], None).unwrap();
        assert_eq!(n, 6);
        fs::write(s.path(&a), b"aaab").unwrap();
        assert!(s.verify(&a).is_err());
        assert!(s.get_bytes(&a).is_err());
        let mut v = Vec::new();
        assert!(s.read_verified(&a).unwrap().read_to_end(&mut v).is_err());
        let keep: HashSet<Digest> = [b.clone()].into_iter().collect();
        let rep = s.gc(&keep).unwrap();
        assert_eq!(rep.removed, vec![a]);
        assert_eq!(rep.bytes_freed, 4);
        assert_eq!(s.list().unwrap(), vec![b]);
    }
}
