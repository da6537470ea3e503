//! berth's images: digests and the content-addressed blob store, image metadata (tags,
//! references, refcounts), layer unpacking and diffing, overlayfs snapshots keyed by chain ID,
//! `docker save`/`load`/`import`/`export` archives, and the OCI runtime spec made from an
//! image config plus `docker run` overrides.
//!
//! | module | owns |
//! |---|---|
//! | [`digest`] | `sha256:<hex>` digests, streaming verification |
//! | [`content`] | the blob store `<root>/blobs/sha256/<hex>` (verified, atomic writes) |
//! | [`mod@reference`] | image references (`busybox`, `host:5000/a/b:tag@sha256:…`) |
//! | [`config`] | image config, manifest and index documents |
//! | [`layer`] | escape-proof layer unpacking, layer diffs and tars |
//! | [`snapshot`] | overlayfs snapshots by chain ID, container rootfs mounts |
//! | [`store`] | image metadata in `<root>/metadata.redb`: tags, lookups, rmi, prune, refcounts |
//! | [`images`] | the service tying the above together (add, commit, rmi, gc, rootfs) |
//! | [`archive`] | `save`, `load`, `import`, `export` |
//! | [`spec`] | image config + `docker run` flags -> OCI runtime spec |

pub mod archive;
pub mod config;
pub mod content;
pub mod digest;
pub mod images;
pub mod layer;
pub mod reference;
pub mod snapshot;
pub mod spec;
pub mod store;

pub use digest::Digest;
pub use images::{Images, ImagesError};
pub use reference::Reference;
