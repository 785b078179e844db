//! Deletes: one interaction, or all of a user's data, from the hot store and from archives.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use super::archive::for_each_line;
use super::{App, AppError};
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

/// A delete's answer: the counts, and how many archive objects still hold erased lines until
/// the next archive run compacts them (`pending_erasure`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deletion {
    pub deleted: DeletedCounts,
    pub pending_erasure_objects: i64,
}

impl App {
    /// Delete one interaction and everything linked to it. Owner or admin; someone else's: 404.
    pub async fn delete_interaction(&self, caller: &Caller, id: Id) -> Result<Deletion, AppError> {
        let mut out = Deletion::default();
        if let Some(l) = self.hot.get_linked(id).await? {
            if !caller.can_access(&l.interaction.user_id) {
                return Err(AppError::NotFound);
            }
            out.deleted.add_hot(self.hot.delete_interaction(id).await?);
            return Ok(out);
        }
        let entry = self.hot.archived_entry(id).await?.ok_or(AppError::NotFound)?;
        if !caller.can_access(&entry.user_id) {
            return Err(AppError::NotFound);
        }
        self.remove_archived(vec![entry], &mut out).await?;
        if out.deleted.interactions == 0 {
            // Deleted by someone else between the read and the write.
            return Err(AppError::NotFound);
        }
        Ok(out)
    }

    /// Delete all of a user's data: hot records, unlinked validations, archived records.
    pub async fn delete_user(&self, user: &UserId) -> Result<Deletion, AppError> {
        let mut out = Deletion::default();
        out.deleted.add_hot(self.hot.delete_user(user).await?);
        let entries = self.hot.archived_entries_of_user(user).await?;
        self.remove_archived(entries, &mut out).await?;
        Ok(out)
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
            let obj = self.object_of(first).await?;
            for_each_line(self.objects.as_ref(), &obj.object_key, |rec| {
                if ids.contains(&rec.interaction_id) {
                    out.insert(rec.interaction_id, (rec.feedback.len() as i64, rec.validations.len() as i64));
                }
                Ok(())
            })
            .await
        }
        .await;
        if let Err(e) = read {
            tracing::warn!(error = %e, slot = %first.object_key, "delete: archive object unreadable; counts from the catalog");
        }
        out
    }
}
