//! Deletes: one interaction, or all of a user's data, from the hot store and from archives.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

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

impl App {
    /// Delete one interaction and everything linked to it. Owner or admin; someone else's: 404.
    pub async fn delete_interaction(&self, caller: &Caller, id: Id) -> Result<DeletedCounts, AppError> {
        let mut out = DeletedCounts::default();
        if let Some(l) = self.hot.get_linked(id).await? {
            if !caller.can_access(&l.interaction.user_id) {
                return Err(AppError::NotFound);
            }
            out.add_hot(self.hot.delete_interaction(id).await?);
            return Ok(out);
        }
        let entry = self.hot.archived_entry(id).await?.ok_or(AppError::NotFound)?;
        if !caller.can_access(&entry.user_id) {
            return Err(AppError::NotFound);
        }
        self.remove_archived(vec![entry], &mut out).await?;
        Ok(out)
    }

    /// Delete all of a user's data: hot records, unlinked validations, archived records.
    pub async fn delete_user(&self, user: &UserId) -> Result<DeletedCounts, AppError> {
        let mut out = DeletedCounts::default();
        out.add_hot(self.hot.delete_user(user).await?);
        let entries = self.hot.archived_entries_of_user(user).await?;
        self.remove_archived(entries, &mut out).await?;
        Ok(out)
    }

    /// Rewrite each affected archive object without these records.
    async fn remove_archived(&self, entries: Vec<ArchivedEntry>, out: &mut DeletedCounts) -> Result<(), AppError> {
        let mut by_object: BTreeMap<String, HashSet<Id>> = BTreeMap::new();
        for e in entries {
            by_object.entry(e.object_key).or_default().insert(e.interaction_id);
        }
        if by_object.is_empty() {
            return Ok(());
        }
        let objects = self.hot.list_archive_objects(None).await?;
        for (key, ids) in by_object {
            let Some(obj) = objects.iter().find(|o| o.object_key == key) else {
                return Err(AppError::Internal("archived entry points at an unknown object".into()));
            };
            for rec in self.remove_from_object(obj, &ids).await? {
                out.interactions += 1;
                out.archived_records += 1;
                out.feedback += rec.feedback.len() as i64;
                out.validation_logs += rec.validations.len() as i64;
            }
        }
        Ok(())
    }
}
