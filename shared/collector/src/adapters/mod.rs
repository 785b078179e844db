//! Adapters: the embedded store (SQLite + folder).
