//! Adapters: the ports implemented on real backends. They translate domain types to storage and
//! decide nothing; the rules stay in `domain`.
//!
//! The embedded store: [`sqlite::SqliteStore`] for hot records, counters and the archive
//! catalog, [`fs::FolderStore`] for archive objects in a local folder.

pub mod fs;
pub mod sqlite;
