//! Layers: unpacking a layer tar stream (plain, gzip or zstd, sniffed from its first bytes)
//! into a directory without ever writing outside it ([`apply_layer`]), and producing a layer
//! tar from an overlay upper directory ([`write_diff`]) or a whole directory ([`write_tar`]).
//!
//! Whiteouts follow the OCI image spec: `.wh.NAME` deletes NAME from the layers below and
//! `.wh..wh..opq` makes its directory opaque. On disk (overlay format) they become a 0/0
//! character device and the `trusted.overlay.opaque=y` xattr.

mod apply;
mod diff;
pub(crate) mod fsops;

use std::io::{self, Read, Write};

pub use apply::{apply_layer, AppliedLayer, ApplyOptions, WhiteoutMode};
pub use diff::{write_diff, write_path_tar, write_tar, TarOptions, TarSummary};

/// Prefix of a whiteout file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the opaque-directory marker.
pub const WHITEOUT_OPAQUE: &str = ".wh..wh..opq";
/// Prefix of whiteout-metadata names (aufs), which are skipped.
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// The overlayfs xattr marking an opaque directory.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What went wrong with a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// A filesystem operation failed.
    #[error("layer: {what} {path:?}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path inside the layer (or on the host).
        path: String,
        /// The OS error.
        source: io::Error,
    },
    /// The tar stream is malformed or could not be read.
    #[error("layer: reading the tar stream: {0} (the layer blob is corrupt or not a tar)")]
    Tar(io::Error),
    /// An entry tried to reach outside the target directory.
    #[error("layer: refusing entry {path:?}: {reason} (the layer is malicious or corrupt)")]
    Breakout {
        /// The entry's path as written in the tar.
        path: String,
        /// Why it was refused.
        reason: String,
    },
    /// The entry is of a type berth cannot unpack.
    #[error("layer: entry {path:?} has unsupported type {kind}")]
    Unsupported {
        /// The entry's path.
        path: String,
        /// Its type, as a description.
        kind: String,
    },
    /// An entry would replace a directory with a non-directory or the reverse, which the
    /// caller forbade.
    #[error("{0}")]
    Overwrite(String),
    /// The stream's compression is not supported.
    #[error("layer: unsupported compression {0} (use gzip, zstd or an uncompressed tar)")]
    Compression(&'static str),
}

/// The compression of a layer stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// An uncompressed tar.
    None,
    /// gzip.
    Gzip,
    /// zstd.
    Zstd,
}

impl Compression {
    /// Detects the compression from the first bytes of a stream.
    pub fn detect(head: &[u8]) -> Result<Compression, LayerError> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Ok(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Ok(Compression::Zstd)
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Err(LayerError::Compression("xz"))
        } else if head.starts_with(b"BZh") {
            Err(LayerError::Compression("bzip2"))
        } else {
            Ok(Compression::None)
        }
    }

    /// The OCI layer media type for this compression.
    pub fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
            Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

/// Wraps `r` in the right decompressor after sniffing its first bytes.
pub fn decompress<'a, R: Read + 'a>(
    mut r: R,
) -> Result<(Compression, Box<dyn Read + 'a>), LayerError> {
    let mut head = [0u8; 6];
    let mut n = 0;
    while n < head.len() {
        match r.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(LayerError::Tar(e)),
        }
    }
    let c = Compression::detect(&head[..n])?;
    let full = io::Cursor::new(head[..n].to_vec()).chain(r);
    let out: Box<dyn Read + 'a> = match c {
        Compression::None => Box::new(full),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(full)),
        Compression::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(full).map_err(LayerError::Tar)?)
        }
    };
    Ok((c, out))
}

/// A writer that compresses into `W`; call [`Compressor::finish`] to flush the trailer.
pub enum Compressor<W: Write> {
    /// No compression.
    None(W),
    /// gzip.
    Gzip(flate2::write::GzEncoder<W>),
    /// zstd.
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Compressor<W> {
    /// Starts compressing into `w`.
    pub fn new(w: W, c: Compression) -> io::Result<Self> {
        Ok(match c {
            Compression::None => Compressor::None(w),
            Compression::Gzip => Compressor::Gzip(flate2::write::GzEncoder::new(
                w,
                flate2::Compression::fast(),
            )),
            Compression::Zstd => Compressor::Zstd(zstd::stream::write::Encoder::new(w, 3)?),
        })
    }

    /// Finishes the stream and returns the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Compressor::None(w) => Ok(w),
            Compressor::Gzip(g) => g.finish(),
            Compressor::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Compressor<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Compressor::None(w) => w.write(buf),
            Compressor::Gzip(w) => w.write(buf),
            Compressor::Zstd(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Compressor::None(w) => w.flush(),
            Compressor::Gzip(w) => w.flush(),
            Compressor::Zstd(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests;
