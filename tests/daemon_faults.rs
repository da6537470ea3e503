//! Fault tests for `berth daemon` (placeholder, filled below).

#[path = "daemon_common/mod.rs"]
mod daemon_common;
