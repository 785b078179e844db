//! Adapters: the ports implemented on real backends. They translate domain types to storage and
//! decide nothing; the rules stay in `domain`.
//!
//! The embedded store: [`sqlite::SqliteStore`] for hot records, counters and the archive
//! catalog, [`fs::FolderStore`] for archive objects in a local folder.
//!
//! The AWS path: [`dynamodb`] for the same, on DynamoDB, and [`s3`] for archive objects.

pub mod encoding;
pub mod fs;
#[cfg(feature = "local")]
pub mod sqlite;

#[cfg(feature = "aws")]
pub mod aws_errors;
#[cfg(feature = "aws")]
pub mod dynamodb;
#[cfg(feature = "aws")]
pub mod s3;
