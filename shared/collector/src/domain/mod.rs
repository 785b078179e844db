//! Pure rules: types, parsing, validators, diff, formulas, export lines, archive planning.
//! No I/O and no AWS, SQLite or HTTP types here.

pub mod archive;
pub mod counters;
pub mod diff;
pub mod export;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod formats;
pub mod input;
pub mod json;
pub mod lineage;
pub mod platforms;
pub mod records;
pub mod stats;
pub mod types;
pub mod validators;
pub mod workflow;
