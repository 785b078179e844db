//! The write side: one thread owns the only write connection and commits queued writes together
//! (group commit), or a large write alone ([`SqliteStore::write_alone`]). Every write method of
//! the store goes through [`SqliteStore::write`] or [`SqliteStore::write_alone`].

use std::panic::AssertUnwindSafe;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::SqliteStore;
use super::codec::Db;
use crate::ports::StoreError;

/// Most writes committed together.
const MAX_BATCH: usize = 256;
/// The write connection's page cache, in KiB (SQLite's default): the pages a batch of small
/// writes changes.
pub(super) const WRITER_CACHE_KIB: i64 = 2_000;
/// The page cache of a large write ([`SqliteStore::write_alone`]: an archive commit), in KiB.
/// An archive commit changes pages all over the hot table's and the catalog's indexes (every
/// user with records in the object has a page in each user index); with SQLite's 2 MB it
/// spilled changed pages to the WAL and read them back over and over (half of the 1 GB run's
/// CPU was kernel time). Measured on the 1 GB archive bench (docs/PERFORMANCE.md, "Archive
/// with a larger commit cache and a sorted delete list"): at 32 MiB the run took about as long
/// as at 2 MB; at 40 and 48 MiB its kernel time halved (CPU 15 -> 13 s), and 40 costs about
/// 8 MiB less peak RSS. Only while the write runs: the cache goes back down after it.
const LARGE_WRITE_CACHE_KIB: i64 = 40 * 1024;
/// Writes waiting for the writer before callers wait to enqueue.
pub(super) const QUEUE_DEPTH: usize = 1024;

impl SqliteStore {
    /// Run `f` on the writer thread inside a write transaction; the answer comes after the commit.
    /// `f`'s writes are kept exactly when it returns Ok.
    pub(super) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_as(false, f).await
    }

    /// [`SqliteStore::write`] for a large write (an archive commit: thousands of rows): it runs
    /// as its own transaction, between batches, not inside a batch's savepoint. Every page a
    /// savepoint's write changes is first copied to its statement journal (a temp file past
    /// 64 KiB), and pages freed inside a savepoint are still written to the WAL; on its own the
    /// write skips both (the writer's CPU in the archive bench fell by about a third). Atomic
    /// the same way: kept exactly when `f` returns Ok.
    pub(super) async fn write_alone<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.write_as(true, f).await
    }

    async fn write_as<T, F>(&self, alone: bool, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = WriteJob { f: Some(f), out: None, reply, span: tracing::Span::current(), alone };
        let gone = || StoreError::Internal("the sqlite writer has stopped".into());
        let jobs = self.inner.jobs.as_ref().ok_or_else(gone)?;
        jobs.send(Box::new(job)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

// -- group commit -------------------------------------------------------------------------------
//
// Writes queue up for one thread that owns the write connection. It runs whatever is queued (up
// to MAX_BATCH) in one transaction, each write inside its own savepoint so a failing write is
// undone alone, then commits once and answers everyone. Under load this turns many small commits
// (WAL appends, file locks, thread wake-ups) into one, and no answer is sent before its commit.

/// A queued write.
pub(super) trait Job: Send {
    /// Run inside the batch transaction; true when its writes are to be kept.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answer the caller: `Ok` when the batch committed, else the batch's error.
    fn finish(self: Box<Self>, batch: Result<(), &StoreError>);
    /// Runs as its own transaction, not in a batch ([`SqliteStore::write_alone`]).
    fn alone(&self) -> bool;
}

struct WriteJob<F, T> {
    f: Option<F>,
    out: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    span: tracing::Span,
    alone: bool,
}

impl<F, T> Job for WriteJob<F, T>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(f) = self.f.take() else { return false };
        // A panicking write must not take the writer thread (and every later write) down with it.
        let out = self.span.in_scope(|| std::panic::catch_unwind(AssertUnwindSafe(|| f(conn))));
        let out = out.unwrap_or_else(|_| Err(StoreError::Internal("sqlite write panicked".into())));
        let keep = out.is_ok();
        self.out = Some(out);
        keep
    }

    fn finish(self: Box<Self>, batch: Result<(), &StoreError>) {
        let answer = match (self.out, batch) {
            (Some(Err(own)), _) => Err(own),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (_, Err(e)) => Err(copy_error(e)),
            (None, Ok(())) => Err(StoreError::Internal("sqlite write did not run".into())),
        };
        // The caller may have gone away; the write stands either way.
        let _ = self.reply.send(answer);
    }

    fn alone(&self) -> bool {
        self.alone
    }
}

fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound => StoreError::NotFound,
        StoreError::Conflict(m) => StoreError::Conflict(m),
        StoreError::Throttled { retry_after } => StoreError::Throttled { retry_after: *retry_after },
        StoreError::Unavailable(m) => StoreError::Unavailable(m.clone()),
        StoreError::Internal(m) => StoreError::Internal(m.clone()),
        StoreError::Backend { what, source } => StoreError::Backend { what, source: source.clone() },
        StoreError::Fenced => StoreError::Fenced,
    }
}

pub(super) fn writer_loop(conn: Connection, mut queue: mpsc::Receiver<Box<dyn Job>>) {
    // A job that runs alone, taken from the queue while a batch was being gathered: it runs
    // right after that batch, so the queue's order is kept.
    let mut next: Option<Box<dyn Job>> = None;
    loop {
        let first = match next.take() {
            Some(job) => job,
            None => match queue.blocking_recv() {
                Some(job) => job,
                None => break,
            },
        };
        if first.alone() {
            run_alone(&conn, first);
            continue;
        }
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) if job.alone() => {
                    next = Some(job);
                    break;
                }
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&conn, batch);
    }
}

/// One job in its own transaction: committed when it returns Ok, rolled back otherwise. The
/// writer's page cache is [`LARGE_WRITE_CACHE_KIB`] for it, and back to [`WRITER_CACHE_KIB`]
/// (its clean pages freed) before the job is answered.
fn run_alone(conn: &Connection, mut job: Box<dyn Job>) {
    set_cache_size(conn, LARGE_WRITE_CACHE_KIB);
    let result = commit_alone(conn, job.as_mut());
    set_cache_size(conn, WRITER_CACHE_KIB);
    job.finish(result.as_ref().map(|_| ()));
}

fn commit_alone(conn: &Connection, job: &mut dyn Job) -> Result<(), StoreError> {
    begin(conn)?;
    let keep = job.run(conn);
    let result = if conn.is_autocommit() {
        // An I/O error made SQLite roll the transaction back.
        Err(StoreError::Internal("sqlite transaction was rolled back".into()))
    } else if keep {
        exec(conn, "COMMIT")
    } else {
        // The job answers its own error.
        exec(conn, "ROLLBACK")
    };
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

/// The page cache only sets how many pages SQLite keeps in memory, so a failure to set it is
/// logged and the write goes on.
pub(super) fn set_cache_size(conn: &Connection, kib: i64) {
    if let Err(e) = conn.execute_batch(&format!("PRAGMA cache_size = -{kib}")) {
        tracing::warn!(error = %e, kib, "sqlite: setting the writer's page cache failed");
    }
}

fn exec(conn: &Connection, sql: &str) -> Result<(), StoreError> {
    conn.prepare_cached(sql).db()?.execute([]).db()?;
    Ok(())
}

/// `BEGIN IMMEDIATE`, on a file still at this build's schema version (else rolled back).
fn begin(conn: &Connection) -> Result<(), StoreError> {
    exec(conn, "BEGIN IMMEDIATE")?;
    if let Err(e) = super::schema::check_version(conn) {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    Ok(())
}

fn run_batch(conn: &Connection, mut batch: Vec<Box<dyn Job>>) {
    if let Err(e) = begin(conn) {
        for job in batch {
            job.finish(Err(&e));
        }
        return;
    }
    let mut broken = None;
    for job in &mut batch {
        // An I/O error can make SQLite roll the whole transaction back; nothing more may run then.
        if conn.is_autocommit() {
            broken = Some(StoreError::Internal("sqlite transaction was rolled back".into()));
            break;
        }
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            broken = Some(e);
            break;
        }
        let end = if job.run(conn) { exec(conn, "RELEASE job") } else { undo_savepoint(conn) };
        if let Err(e) = end {
            broken = Some(e);
            break;
        }
    }
    let result = match broken {
        None if conn.is_autocommit() => Err(StoreError::Internal("sqlite transaction was rolled back".into())),
        None => exec(conn, "COMMIT"),
        Some(e) => Err(e),
    };
    if result.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for job in batch {
        job.finish(result.as_ref().map(|_| ()));
    }
}

fn undo_savepoint(conn: &Connection) -> Result<(), StoreError> {
    exec(conn, "ROLLBACK TO job")?;
    exec(conn, "RELEASE job")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_size(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA cache_size", [], |r| r.get(0)).expect("read cache_size")
    }

    /// Runs `f` as a large write on `conn`; returns the cache size `f` saw and the answer.
    fn alone_write(
        conn: &Connection,
        f: impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static,
    ) -> (i64, Result<(), StoreError>) {
        let (seen_tx, seen) = std::sync::mpsc::channel();
        let (reply, mut answer) = oneshot::channel();
        let job = WriteJob {
            f: Some(move |c: &Connection| {
                let _ = seen_tx.send(cache_size(c));
                f(c)
            }),
            out: None,
            reply,
            span: tracing::Span::none(),
            alone: true,
        };
        run_alone(conn, Box::new(job));
        (seen.recv().expect("the job ran"), answer.try_recv().expect("answered"))
    }

    /// A large write (an archive commit) runs with the large page cache, and the writer is back
    /// to its own cache afterwards whether the write was kept or undone: a long-running server
    /// does not keep the large write's pages in memory.
    #[test]
    fn a_large_write_has_the_large_cache_only_while_it_runs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = Connection::open(dir.path().join("db.sqlite3")).expect("open");
        super::super::schema::migrate(&mut conn).expect("schema");
        set_cache_size(&conn, WRITER_CACHE_KIB);
        assert_eq!(cache_size(&conn), -WRITER_CACHE_KIB);

        let (during, answer) = alone_write(&conn, |c| {
            c.execute("INSERT INTO platforms (platform) VALUES ('n8n')", [])
                .map(|_| ())
                .map_err(|e| StoreError::Internal(e.to_string()))
        });
        assert!(answer.is_ok(), "{answer:?}");
        assert_eq!(during, -LARGE_WRITE_CACHE_KIB);
        assert_eq!(cache_size(&conn), -WRITER_CACHE_KIB);

        let (during, answer) = alone_write(&conn, |_| Err(StoreError::Conflict("undone")));
        assert!(matches!(answer, Err(StoreError::Conflict("undone"))), "{answer:?}");
        assert_eq!(during, -LARGE_WRITE_CACHE_KIB);
        assert_eq!(cache_size(&conn), -WRITER_CACHE_KIB);
        let rows: i64 = conn.query_row("SELECT count(*) FROM platforms", [], |r| r.get(0)).expect("count");
        assert_eq!(rows, 1, "the kept write stays, the undone one is gone");
    }
}
