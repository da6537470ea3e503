//! berth's engine: containers made from images. Today it owns the *bundle* (a container's
//! directory with its overlay rootfs, config.json and generated /etc files); the daemon's
//! container lifecycle, state store and shim supervision build on it.

pub mod bundle;
pub mod daemon;
