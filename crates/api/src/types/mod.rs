//! The Engine API's JSON shapes as serde types, field names exactly as Docker spells them.
//!
//! Conventions, mirroring how Docker's Go types encode:
//! - a Go scalar (string, bool, number) is a plain Rust field that defaults when missing —
//!   and, in request bodies, also when `null` (docker-py sends `"User": null`);
//! - a Go pointer, slice or map is an `Option` (`null` when absent, as Go writes nil), since
//!   nil and empty can differ (`"Entrypoint": null` keeps the image's, `[""]` clears it);
//! - the larger objects keep fields this crate does not model in `extra`, so nothing a client
//!   sends or a backend returns is lost on the way through.

pub mod container;
pub mod exec;
pub mod image;
pub mod network;
pub mod system;
pub mod volume;

pub use container::*;
pub use exec::*;
pub use image::*;
pub use network::*;
pub use system::*;
pub use volume::*;

use serde::{Deserialize, Deserializer};

/// Fields of an object this crate does not model, kept as they came.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// `deserialize_with` helper: `null` reads as the type's default (Go's decoding of `null`
/// into a non-pointer field).
pub(crate) fn nd<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `skip_serializing_if` helper for `extra` maps.
pub(crate) fn is_empty_map(m: &Extra) -> bool {
    m.is_empty()
}

/// `{"Id": "..."}`: what creating an exec instance or committing a container answers.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct IdResponse {
    /// The ID of the new object.
    #[serde(rename = "Id")]
    pub id: String,
}
