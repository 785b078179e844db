//! The read side: a small pool of query-only connections, which WAL lets run alongside the
//! writer; each read runs in one read transaction on tokio's blocking pool.

use rusqlite::Connection;

use super::codec::Db;
use super::{Inner, SqliteStore};
use crate::ports::StoreError;

impl SqliteStore {
    /// Run `f` in one read transaction (a consistent snapshot) on a pooled reader.
    pub(super) async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            span.in_scope(|| {
                let mut lease = Lease::take(&inner)?;
                let tx = lease.conn()?.transaction().db()?;
                let out = f(&tx)?;
                tx.commit().db()?;
                Ok(out)
            })
        })
        .await
        .map_err(|e| StoreError::Internal(format!("sqlite task failed: {e}")))?
    }
}

/// A reader borrowed from the pool, returned on drop.
struct Lease<'a> {
    inner: &'a Inner,
    conn: Option<Connection>,
}

impl<'a> Lease<'a> {
    fn take(inner: &'a Inner) -> Result<Lease<'a>, StoreError> {
        let poisoned = || StoreError::Internal("sqlite reader pool lock poisoned".into());
        let mut idle = inner.readers.lock().map_err(|_| poisoned())?;
        loop {
            if let Some(conn) = idle.pop() {
                return Ok(Lease { inner, conn: Some(conn) });
            }
            idle = inner.reader_free.wait(idle).map_err(|_| poisoned())?;
        }
    }

    fn conn(&mut self) -> Result<&mut Connection, StoreError> {
        self.conn.as_mut().ok_or_else(|| StoreError::Internal("sqlite reader lease is empty".into()))
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && let Ok(mut idle) = self.inner.readers.lock()
        {
            idle.push(conn);
            self.inner.reader_free.notify_one();
        }
    }
}
