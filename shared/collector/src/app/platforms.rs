//! Known platforms (CONTRACT section 7a): the configured ones (`PLATFORMS`) plus those admins
//! added (in the store). This is the one place a platform a request names is checked: every use
//! case that takes a platform calls [`App::require_platform`] (or [`App::checked_platform`] for
//! a body), so handlers, Lambda functions and the CLI never check on their own.
//!
//! Each process keeps the added platforms it has seen. A platform it does not know makes it
//! read the store again, at most once per [`REREAD_AT_MOST_EVERY`] (concurrent misses share
//! one read): an add on another process or Lambda is seen by the first request that names it
//! after that, and a flood of unknown slugs costs at most one store read a second per process.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{App, AppError};
use crate::config::Config;
use crate::domain::input::Parsed;
use crate::domain::platforms::{self, AddPlatform, PlatformAdded, PlatformLimit, PlatformList};
use crate::domain::types::{FieldError, Platform};
use crate::ports::StoreError;

/// How often at most a process reads the added platforms again on a miss.
pub const REREAD_AT_MOST_EVERY: Duration = Duration::from_secs(1);

/// `POST /api/platforms` answer: 201 with `added: true`, 200 with `added: false` (already known).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PlatformAddOutcome {
    pub platform: String,
    pub added: bool,
}

/// A process's view of the known platforms.
pub(crate) struct KnownPlatforms {
    /// `PLATFORMS`, in order.
    configured: Vec<Platform>,
    limit: PlatformLimit,
    /// Admin-added platforms seen so far (they are never removed, so this only grows).
    added: RwLock<BTreeSet<Platform>>,
    /// When the store was last read (None: never). Held during a read, so misses that arrive
    /// meanwhile wait for it instead of reading too.
    last_read: tokio::sync::Mutex<Option<Instant>>,
}

impl KnownPlatforms {
    pub(crate) fn new(config: &Config) -> KnownPlatforms {
        KnownPlatforms {
            configured: config.platforms.clone(),
            limit: PlatformLimit { configured: config.platforms.iter().cloned().collect(), max: config.max_platforms },
            added: RwLock::new(BTreeSet::new()),
            last_read: tokio::sync::Mutex::new(None),
        }
    }

    fn knows(&self, p: &Platform) -> bool {
        self.limit.configured.contains(p) || self.added.read().map(|a| a.contains(p)).unwrap_or(false)
    }

    fn known(&self) -> BTreeSet<Platform> {
        let mut all = self.limit.configured.clone();
        if let Ok(a) = self.added.read() {
            all.extend(a.iter().cloned());
        }
        all
    }

    fn learn(&self, seen: impl IntoIterator<Item = Platform>) {
        if let Ok(mut a) = self.added.write() {
            a.extend(seen);
        }
    }

    /// Read the added platforms with `read`, unless a read finished less than
    /// [`REREAD_AT_MOST_EVERY`] ago. A failed read is not remembered (the next miss tries again).
    async fn reread<F, Fut>(&self, read: F) -> Result<(), StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<BTreeSet<Platform>, StoreError>>,
    {
        let mut last = self.last_read.lock().await;
        if last.is_some_and(|t| t.elapsed() < REREAD_AT_MOST_EVERY) {
            return Ok(());
        }
        let added = read().await?;
        self.learn(added);
        *last = Some(Instant::now());
        Ok(())
    }

    /// The 400 detail for `p` if it is not known, after a re-read if one is due.
    async fn problem<F, Fut>(&self, p: &Platform, read: F) -> Result<Option<FieldError>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<BTreeSet<Platform>, StoreError>>,
    {
        if self.knows(p) {
            return Ok(None);
        }
        self.reread(read).await?;
        Ok((!self.knows(p)).then(|| platforms::unknown(&self.known())))
    }
}

impl App {
    /// A platform a request names must be known: else 400 `validation_failed` with a detail on
    /// `platform` naming the known ones.
    pub async fn require_platform(&self, p: &Platform) -> Result<(), AppError> {
        match self.platforms.problem(p, || self.hot.added_platforms()).await? {
            None => Ok(()),
            Some(e) => Err(AppError::Validation(vec![e])),
        }
    }

    /// [`App::require_platform`] for an optional filter.
    pub async fn require_platform_if(&self, p: Option<&Platform>) -> Result<(), AppError> {
        match p {
            Some(p) => self.require_platform(p).await,
            None => Ok(()),
        }
    }

    /// A body's parse with its platform checked: an unknown platform is reported with the
    /// body's other problems, all at once (first, where the parsers report `platform`).
    pub(crate) async fn checked_platform<T>(&self, input: Parsed<T>) -> Result<T, AppError> {
        let problem = match &input.named_platform {
            Some(p) => self.platforms.problem(p, || self.hot.added_platforms()).await?,
            None => None,
        };
        match (input.result, problem) {
            (Ok(v), None) => Ok(v),
            (Ok(_), Some(e)) => Err(AppError::Validation(vec![e])),
            (Err(errors), None) => Err(AppError::Validation(errors)),
            (Err(mut errors), Some(e)) => {
                errors.insert(0, e);
                Err(AppError::Validation(errors))
            }
        }
    }

    /// `GET /api/platforms`: read from the store (and remembered), so it is always current.
    pub async fn platforms(&self) -> Result<PlatformList, AppError> {
        let added = self.hot.added_platforms().await?;
        self.platforms.learn(added.iter().cloned());
        Ok(PlatformList::new(&self.platforms.configured, &added, self.platforms.limit.max))
    }

    /// `POST /api/platforms` (the caller's role is the route's to check). A configured platform
    /// is known without a write; any other is added within `MAX_PLATFORMS`, or found added.
    pub async fn add_platform(&self, new: AddPlatform) -> Result<PlatformAddOutcome, AppError> {
        let p = new.platform;
        let outcome = |added| PlatformAddOutcome { platform: p.as_str().to_owned(), added };
        if self.platforms.limit.configured.contains(&p) {
            return Ok(outcome(false));
        }
        let added = match self.hot.add_platform(&p, &self.platforms.limit).await? {
            PlatformAdded::Added => true,
            PlatformAdded::AlreadyAdded => false,
            PlatformAdded::LimitReached => return Err(AppError::PlatformLimit { max: self.platforms.limit.max }),
        };
        self.platforms.learn([p.clone()]);
        // The slug is what an admin typed: not logged.
        tracing::info!(added, "platform add");
        Ok(outcome(added))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn known(names: &[&str]) -> KnownPlatforms {
        let list = names.join(",");
        let config = Config::from_lookup(|k| (k == "PLATFORMS").then(|| list.clone())).expect("config");
        KnownPlatforms::new(&config)
    }

    fn p(name: &str) -> Platform {
        Platform::parse(name).expect("slug")
    }

    /// A store whose added platforms are `names`, counting its reads.
    fn store(
        reads: &Arc<AtomicUsize>,
        names: &'static [&'static str],
    ) -> impl Fn() -> std::future::Ready<Result<BTreeSet<Platform>, StoreError>> {
        let reads = reads.clone();
        move || {
            reads.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok(names.iter().map(|n| p(n)).collect()))
        }
    }

    #[tokio::test]
    async fn configured_platforms_need_no_read_and_an_added_one_is_found_on_a_miss() {
        let k = known(&["n8n", "zapier"]);
        let reads = Arc::new(AtomicUsize::new(0));
        assert_eq!(k.problem(&p("n8n"), store(&reads, &["airflow"])).await.unwrap(), None);
        assert_eq!(reads.load(Ordering::SeqCst), 0);
        assert_eq!(k.problem(&p("airflow"), store(&reads, &["airflow"])).await.unwrap(), None);
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // Remembered: no read the next time.
        assert_eq!(k.problem(&p("airflow"), store(&reads, &["airflow"])).await.unwrap(), None);
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        let e = k.problem(&p("nope"), store(&reads, &["airflow"])).await.unwrap().expect("unknown");
        assert!(e.message.contains("airflow, n8n, zapier"), "{}", e.message);
    }

    #[tokio::test]
    async fn a_flood_of_unknown_slugs_reads_the_store_once_a_second() {
        let k = Arc::new(known(&["n8n"]));
        let reads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..50 {
            let (k, reads) = (k.clone(), reads.clone());
            tasks.push(tokio::spawn(async move { k.problem(&p(&format!("bad{i}")), store(&reads, &[])).await }));
        }
        for t in tasks {
            assert!(t.await.unwrap().unwrap().is_some());
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1, "concurrent misses share one read");
        tokio::time::sleep(REREAD_AT_MOST_EVERY + Duration::from_millis(50)).await;
        // An add elsewhere is seen once a re-read is due.
        assert_eq!(k.problem(&p("late"), store(&reads, &["late"])).await.unwrap(), None);
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_read_is_an_error_and_not_remembered() {
        let k = known(&["n8n"]);
        let failing = || std::future::ready(Err(StoreError::Unavailable("down".into())));
        assert!(k.problem(&p("airflow"), failing).await.is_err());
        let reads = Arc::new(AtomicUsize::new(0));
        assert_eq!(k.problem(&p("airflow"), store(&reads, &["airflow"])).await.unwrap(), None);
        assert_eq!(reads.load(Ordering::SeqCst), 1);
    }
}
