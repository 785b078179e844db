//! S3 archive object store.
