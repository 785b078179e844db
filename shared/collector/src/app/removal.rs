//! Deletes: one interaction, or all of a user's data, from the hot store and from archives.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::{App, AppError};
use crate::domain::lineage::HeldBy;
use crate::domain::types::{Caller, Id, UserId};
use crate::ports::{ArchivedEntry, HotDeleted};

/// `{"deleted": {...}}`. `interactions` counts every interaction removed, hot or archived;
/// `archived_records` how many of them came out of archive objects. Feedback and validation
/// counts include those that were inside archived records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeletedCounts {
    pub interactions: i64,
    pub feedback: i64,
    pub validation_logs: i64,
    pub examples: i64,
    pub archived_records: i64,
}

impl DeletedCounts {
    fn add_hot(&mut self, h: HotDeleted) {
        self.interactions += h.interactions;
        self.feedback += h.feedback;
        self.validation_logs += h.validation_logs;
    }
}

/// A delete's answer: the counts, how many archive objects still hold erased lines until the
/// next archive run compacts them (`pending_erasure`), and the exports that held any deleted
/// record (`affected_exports`, CONTRACT 4a), newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deletion {
    pub deleted: DeletedCounts,
    pub pending_erasure_objects: i64,
    pub affected_exports: Vec<Id>,
}

/// Retries of [`App::settle_lineage`]'s steps, after waits of 100, 400 and 1,600 ms.
const SETTLE_RETRIES: u32 = 3;
const SETTLE_BACKOFF: std::time::Duration = std::time::Duration::from_millis(100);

/// `step` until it succeeds, retrying a store error [`SETTLE_RETRIES`] times.
async fn retried<T, F, Fut>(mut step: F) -> Result<T, AppError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AppError>>,
{
    let mut attempt = 0;
    loop {
        match step().await {
            Err(AppError::Store(e)) if attempt < SETTLE_RETRIES => {
                tracing::warn!(error = %e, attempt, "a delete's lineage step failed after its data went; retrying");
                tokio::time::sleep(SETTLE_BACKOFF * 4u32.pow(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

impl App {
    /// Delete one interaction and everything linked to it. Owner or admin; someone else's: 404.
    /// The exports that held it are looked up once it is gone, then it leaves their held
    /// records (lineage: `forget_erased`).
    pub async fn delete_interaction(&self, caller: &Caller, id: Id) -> Result<Deletion, AppError> {
        let mut out = Deletion::default();
        if let Some(owner) = self.hot.hot_owner(id).await? {
            if !caller.can_access(&owner) {
                return Err(AppError::NotFound);
            }
            let held = HeldBy::Record { id, user: &owner };
            fail::fail_point!("delete.before_hot_delete");
            let hot = self.hot.delete_interaction(id).await?;
            fail::fail_point!("delete.after_hot_delete");
            out.deleted.add_hot(hot);
            if hot.interactions > 0 {
                out.affected_exports = self.settle_lineage(held).await?;
                return Ok(out);
            }
            // An archive commit moved it between the read and the delete: it is archived now.
        }
        let entry = self.hot.archived_entry(id).await?.ok_or(AppError::NotFound)?;
        if !caller.can_access(&entry.user_id) {
            return Err(AppError::NotFound);
        }
        let owner = entry.user_id.clone();
        let held = HeldBy::Record { id, user: &owner };
        self.remove_archived(vec![entry], &mut out).await?;
        if out.deleted.interactions == 0 {
            // Deleted by someone else between the read and the write.
            return Err(AppError::NotFound);
        }
        out.affected_exports = self.settle_lineage(held).await?;
        Ok(out)
    }

    /// Delete all of a user's data: hot records, unlinked validations, archived records; then
    /// the records any export held of theirs (the manifests stay). Safe to repeat: a second
    /// run finds and forgets whatever a failed first one left.
    pub async fn delete_user(&self, user: &UserId) -> Result<Deletion, AppError> {
        let mut out = Deletion::default();
        let held = HeldBy::User(user);
        out.deleted.add_hot(self.hot.delete_user(user).await?);
        fail::fail_point!("delete_user.after_hot_pass");
        let entries = self.hot.archived_entries_of_user(user).await?;
        self.remove_archived(entries, &mut out).await?;
        // A second hot pass. On DynamoDB the first one lists the user's records from an index
        // that lags writes by a moment, and the archived lookup, which reads it later, can see a
        // record the first pass missed; that record is hot, and only this pass removes it.
        out.deleted.add_hot(self.hot.delete_user(user).await?);
        // Looked up once the data is gone: an export recorded before that holds it is found,
        // and one recorded after finds the records gone and is not served (`record_export`).
        out.affected_exports = self.settle_lineage(held).await?;
        Ok(out)
    }

    /// A delete's steps once its data is gone: the exports that held it, then their held
    /// records of it forgotten. A store error in either is retried a few times (about 2 s in
    /// all) before the delete answers 5xx: a retry of a single-record delete by the client could
    /// not finish them, since the record is gone (it answers 404). The exports are looked up
    /// once: a forget cut part way (on DynamoDB, one held item at a time) leaves fewer to find.
    async fn settle_lineage(&self, held: HeldBy<'_>) -> Result<Vec<Id>, AppError> {
        let affected = retried(|| self.affected_exports(held)).await?;
        retried(|| async {
            self.forget_erased(held).await?;
            // Tests: the forget went through, its answer did not.
            fail::fail_point!("delete.settle_lineage", |_| Err(AppError::Store(
                crate::ports::StoreError::Unavailable("failpoint".into())
            )));
            Ok(())
        })
        .await?;
        Ok(affected)
    }

    /// The exports that held the record or the user's records, newest first.
    async fn affected_exports(&self, by: HeldBy<'_>) -> Result<Vec<Id>, AppError> {
        Ok(self.hot.exports_holding(by).await?.into_iter().rev().collect())
    }

    /// After the data is gone: the exports' held records of it go too (the exported files exist
    /// outside and the manifests keep their counts and hashes, but the store keeps no trace of
    /// whose records they were). Run even when the lookup found none, so an export recorded
    /// meanwhile keeps nothing of the deleted data either.
    async fn forget_erased(&self, by: HeldBy<'_>) -> Result<(), AppError> {
        Ok(self.hot.forget_held(by).await?)
    }

    /// Tombstone each archived record: gone from every read path when this returns; its line
    /// leaves the object's bytes at the next archive run. Feedback and validation counts come
    /// from the records' lines, each object read once.
    async fn remove_archived(&self, entries: Vec<ArchivedEntry>, out: &mut Deletion) -> Result<(), AppError> {
        let mut by_slot: BTreeMap<String, Vec<ArchivedEntry>> = BTreeMap::new();
        for e in entries {
            by_slot.entry(e.object_key.clone()).or_default().push(e);
        }
        for (_, group) in by_slot {
            let links = self.link_counts(&group).await;
            let mut erased_here = false;
            for e in group {
                if self.hot.delete_archived(e.interaction_id).await?.is_none() {
                    continue;
                }
                erased_here = true;
                out.deleted.interactions += 1;
                out.deleted.archived_records += 1;
                let (feedback, validations) =
                    links.get(&e.interaction_id).copied().unwrap_or((e.facts.feedback_count, 0));
                out.deleted.feedback += feedback;
                out.deleted.validation_logs += validations;
            }
            out.pending_erasure_objects += i64::from(erased_here);
        }
        Ok(())
    }

    /// (feedback, validations) in the lines of these records, which share one object. A
    /// delete must not fail because an object is unreadable: then the counts come from the
    /// entries alone (feedback only), and the failure is logged.
    async fn link_counts(&self, group: &[ArchivedEntry]) -> HashMap<Id, (i64, i64)> {
        let mut out = HashMap::new();
        let Some(first) = group.first() else { return out };
        let ids: HashSet<Id> = group.iter().map(|e| e.interaction_id).collect();
        let read = async {
            if let Some((_, mut lines)) = self.open_entry_slot(first).await? {
                while let Some(rec) = lines.next().await? {
                    if ids.contains(&rec.interaction_id) {
                        out.insert(rec.interaction_id, (rec.feedback.len() as i64, rec.validations.len() as i64));
                    }
                }
            }
            Ok::<(), AppError>(())
        }
        .await;
        if let Err(e) = read {
            tracing::warn!(error = %e, slot = %first.object_key, "delete: archive object unreadable; counts from the catalog");
        }
        out
    }
}
