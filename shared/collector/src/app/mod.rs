//! Use cases: what each route does, over the ports. The HTTP layer parses and maps; the
//! Lambda functions and the CLI call the same functions.

pub(crate) mod archive;
#[cfg(feature = "aws")]
mod aws;
mod error;
mod export;
mod ingest;
mod lineage;
mod platforms;
mod removal;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

pub use archive::{ArchiveReport, ArchivedObjectReport, HOUSEKEEPING_EVERY, LEASE_TTL, Maintenance};
pub use error::AppError;
pub use export::{AccessSummary, ExportRequest, ExportSummary, LineStream, RejectSample};
pub use ingest::{IngestOutcome, ValidationResult};
pub use lineage::CLI_CALLER;
pub use platforms::{PlatformAddOutcome, REREAD_AT_MOST_EVERY};
pub use removal::{DeletedCounts, Deletion};

use crate::config::Config;
use crate::domain::input::{NewExample, NewMetric, Parsed};
use crate::domain::records::{CuratedExample, FullRecord, PageBudget, TrainingMetric};
use crate::domain::stats::{self, Readiness, Stats};
use crate::domain::types::{Caller, Id, PageLimit, Platform, Role, UserId};
use crate::ports::{Cursor, HotStore, ListQuery, ObjectStore};

/// Everything a request needs, built once per process.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub hot: Arc<dyn HotStore>,
    pub objects: Arc<dyn ObjectStore>,
    /// Runs of this process queue here before they take the store's lease, so the server's own
    /// housekeeping (erasure, the daily run) never makes a request answer `archive_running`.
    local_runs: Arc<tokio::sync::Mutex<()>>,
    /// Inflating a legacy `workflow_gzip_hex` may build up to `MAX_JSON_COST` of `Value`s; only
    /// this many run at once per process, so concurrent imports cannot add up past the memory
    /// budget (docs/DESIGN.md, "Hostile input").
    inflations: Arc<tokio::sync::Semaphore>,
    /// The platforms this process knows (configured, and added ones it has seen).
    platforms: Arc<platforms::KnownPlatforms>,
}

/// Legacy workflow inflations that may run at once in one process.
pub const CONCURRENT_INFLATIONS: usize = 1;

/// Record bytes (`Interaction::answer_bytes`: texts, metadata and the workflow inflated, as the
/// answer carries them) one listing page holds at most besides its first record; past it the
/// page ends early and `next_cursor` goes on from there. 4 MiB keeps a page inside Lambda's 6 MB
/// answer once the JSON is escaped into the response envelope (a page of 100 records with 50 KB
/// workflows did not fit), and one page's memory small whatever its records hold.
pub const PAGE_BYTES: u64 = 4 * 1024 * 1024;

/// Records a listing reads from the store per call while it fills a page.
const PAGE_CHUNK: u32 = 20;

impl App {
    pub fn new(config: Config, hot: Arc<dyn HotStore>, objects: Arc<dyn ObjectStore>) -> App {
        App {
            hot,
            objects,
            local_runs: Arc::new(tokio::sync::Mutex::new(())),
            inflations: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_INFLATIONS)),
            platforms: Arc::new(platforms::KnownPlatforms::new(&config)),
            config: Arc::new(config),
        }
    }

    #[cfg(feature = "local")]
    /// The embedded default: SQLite file and archive folder under `COLLECTOR_DATA_DIR`.
    pub fn open_local(config: Config) -> Result<App, AppError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| AppError::internal_from("cannot create the data directory", e))?;
        let hot = crate::adapters::sqlite::SqliteStore::open(&dir.join("collector.sqlite3"))?;
        let objects = crate::adapters::fs::FolderStore::new(dir.join("archive-store"));
        Ok(App::new(config, Arc::new(hot), Arc::new(objects)))
    }

    pub fn now() -> DateTime<Utc> {
        Utc::now()
    }

    // -- reads ---------------------------------------------------------------------------

    /// The whole record, hot or archived, if the caller may see it (else NotFound).
    pub async fn get_interaction(&self, caller: &Caller, id: Id) -> Result<FullRecord, AppError> {
        // A user's read of someone else's hot record stops at its owner: it never loads the
        // record (its links, an overflow payload), so it answers 404 as fast as an unknown id
        // does, and not 5xx should that payload be unreadable.
        if !caller.is_privileged()
            && let Some(owner) = self.hot.hot_owner(id).await?
            && !caller.can_access(&owner)
        {
            return Err(AppError::NotFound);
        }
        if let Some(l) = self.hot.get_linked(id).await? {
            if !caller.can_access(&l.interaction.user_id) {
                return Err(AppError::NotFound);
            }
            return Ok(FullRecord::build(&l.interaction, l.feedback, l.validations, false)?);
        }
        let entry = self.hot.archived_entry(id).await?.ok_or(AppError::NotFound)?;
        if !caller.can_access(&entry.user_id) {
            return Err(AppError::NotFound);
        }
        self.read_archived(&entry).await
    }

    pub async fn list_interactions(
        &self,
        caller: &Caller,
        user_id: Option<UserId>,
        platform: Option<Platform>,
        limit: PageLimit,
        cursor: Option<Cursor>,
    ) -> Result<(Vec<FullRecord>, Option<Cursor>), AppError> {
        let user_id = match (caller.role, user_id) {
            (Role::Admin, u) => u,
            (Role::User, None) => Some(caller.sub.clone()),
            (Role::User, Some(u)) if u == caller.sub => Some(u),
            _ => return Err(AppError::Forbidden("listing is for a user's own records, or an admin's")),
        };
        self.require_platform_if(platform.as_ref()).await?;
        // Read in chunks, and stop before a record that would take the page past PAGE_BYTES (a
        // page always has its first record): one user's large records (a 20 MiB workflow stores
        // as a few KB of gzip; texts take up to the 6 MiB body) cannot make a page of 100 take
        // gigabytes.
        let want = limit.get();
        let (mut items, mut budget, mut before, mut last) = (Vec::new(), PageBudget::new(PAGE_BYTES), cursor, None);
        let mut more = true;
        'fill: while more && (items.len() as u32) < want {
            let ask = (want - items.len() as u32).min(PAGE_CHUNK);
            let q = ListQuery { user_id: user_id.clone(), platform: platform.clone(), before, limit: ask };
            let chunk = self.hot.list_interactions(&q).await?;
            more = chunk.len() as u32 == ask;
            for r in &chunk {
                if !budget.admits(r.answer_bytes()) {
                    more = true;
                    break 'fill;
                }
                // Listings carry the record without its links; GET by id gives them.
                items.push(FullRecord::build(r, vec![], vec![], false)?);
                last = Some(Cursor { created_at: r.created_at, id: r.id });
            }
            before = last;
        }
        Ok((items, if more { last } else { None }))
    }

    pub async fn stats(&self) -> Result<Stats, AppError> {
        let c = self.counters_by_name().await?;
        Ok(stats::stats(&c, &self.config.thresholds, &self.config.prices, Utc::now()))
    }

    pub async fn readiness(&self, platform: &Platform) -> Result<Readiness, AppError> {
        self.require_platform(platform).await?;
        let all = self.hot.counters().await?;
        let c = all.get(platform).copied().unwrap_or_default();
        Ok(stats::readiness(platform.as_str(), &c, &self.config.thresholds))
    }

    pub(crate) async fn counters_by_name(
        &self,
    ) -> Result<std::collections::BTreeMap<String, crate::domain::counters::PlatformCounters>, AppError> {
        Ok(self.hot.counters().await?.into_iter().map(|(p, c)| (p.to_string(), c)).collect())
    }

    // -- curated examples and training metrics ---------------------------------------------

    pub async fn add_example(&self, caller: &Caller, input: Parsed<NewExample>) -> Result<Id, AppError> {
        let n = self.checked_platform(input).await?;
        let ex = CuratedExample {
            example_id: Id::new(),
            platform: n.platform,
            user_message: n.user_message,
            workflow: n.workflow.map(Value::Object),
            ai_response: n.ai_response,
            description: n.description,
            tags: n.tags,
            usage_count: 0,
            created_by: caller.sub.clone(),
            created_at: Utc::now(),
        };
        self.hot.insert_example(&ex).await?;
        Ok(ex.example_id)
    }

    pub async fn list_examples(&self, platform: Option<&Platform>) -> Result<Vec<CuratedExample>, AppError> {
        self.require_platform_if(platform).await?;
        Ok(self.hot.list_examples(platform).await?)
    }

    pub async fn delete_example(&self, id: Id) -> Result<(), AppError> {
        if self.hot.delete_example(id).await? { Ok(()) } else { Err(AppError::NotFound) }
    }

    pub async fn add_metric(&self, caller: &Caller, input: Parsed<NewMetric>) -> Result<Id, AppError> {
        let n = self.checked_platform(input).await?;
        let m = TrainingMetric {
            metric_id: Id::new(),
            platform: n.platform,
            model: n.model,
            dataset_size: n.dataset_size,
            run_id: n.run_id,
            metrics: n.metrics,
            notes: n.notes,
            created_by: caller.sub.clone(),
            created_at: Utc::now(),
        };
        self.hot.insert_metric(&m).await?;
        Ok(m.metric_id)
    }

    pub async fn list_metrics(&self, platform: Option<&Platform>) -> Result<Vec<TrainingMetric>, AppError> {
        self.require_platform_if(platform).await?;
        Ok(self.hot.list_metrics(platform).await?)
    }
}
