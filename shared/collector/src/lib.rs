//! collector: collects the data a team needs to fine-tune its own model.
//!
//! `domain` is pure; `ports` are the storage traits; `adapters` implement them (SQLite and a
//! folder for the embedded default); `app` holds the use cases; `http` maps them to the API.

pub mod adapters;
pub mod app;
pub mod config;
pub mod domain;
pub mod http;
pub mod ports;

/// Test support for the AWS adapters: the emulator and per-test tables and bucket.
#[cfg(all(feature = "test-suite", feature = "aws"))]
pub mod testing;

/// Property tests of the parsers at the edge (issue 14).
#[cfg(test)]
mod properties;
