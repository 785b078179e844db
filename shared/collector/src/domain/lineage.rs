//! Dataset lineage (CONTRACT section 4a): the manifest of an export, and the records it held.
//!
//! Every export that writes at least one line records an [`ExportManifest`]: who asked, what
//! for (platform, format, filters, split), and what was served (lines, sha256 and size of the
//! exact bytes). The interaction ids it held are stored with it, grouped by owner
//! ([`HeldRecords`]), so that a delete can say which exports held a deleted record
//! (`affected_exports`) by an indexed lookup, by record or by user. Curated examples are not
//! held: they are no one's personal data.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::export::ExportFilter;
use super::formats::Split;
use super::types::{Id, Platform, UserId};

/// What one export served. `export_id` is a UUID v7, so id order is creation order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportManifest {
    #[schema(value_type = String, format = Uuid)]
    pub export_id: Id,
    pub created_at: DateTime<Utc>,
    /// The admin's `sub` for the route; `cli` for `collector export`.
    pub caller: String,
    #[schema(value_type = String)]
    pub platform: Platform,
    /// `openai`, `openai_dpo` or `bedrock`.
    pub format: String,
    pub filters: ManifestFilters,
    /// Present when the export asked for one side of the leakage-free split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<ManifestSplit>,
    /// Lines written.
    pub lines: u64,
    /// Lowercase hex sha256 of the exact bytes served.
    pub sha256: String,
    /// Size of the bytes served.
    pub bytes: u64,
}

/// The filters an export ran with: every one, set or not, so a manifest says how to reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ManifestFilters {
    pub success_only: bool,
    pub with_feedback_only: bool,
    pub include_archived: bool,
    pub include_metadata: bool,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<u64>,
    /// The per-line estimated-token limit (`EXPORT_MAX_TOKENS`) in force.
    pub max_tokens: u64,
}

/// One side of the leakage-free split (docs/EXPORTS.md): users are assigned by a stable hash
/// of their id, `validation_fraction` of them to `validation`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ManifestSplit {
    /// `train` or `validation`.
    pub side: String,
    pub validation_fraction: f64,
}

impl ManifestFilters {
    pub fn of(f: &ExportFilter) -> ManifestFilters {
        ManifestFilters {
            success_only: f.success_only,
            with_feedback_only: f.with_feedback_only,
            include_archived: f.include_archived,
            include_metadata: f.include_metadata,
            since: f.since,
            until: f.until,
            limit: f.limit,
            max_tokens: f.max_tokens,
        }
    }
}

impl ManifestSplit {
    pub fn of(f: &ExportFilter) -> Option<ManifestSplit> {
        f.split.map(|side| ManifestSplit {
            side: match side {
                Split::Train => "train",
                Split::Validation => "validation",
            }
            .to_owned(),
            validation_fraction: f.validation_fraction,
        })
    }
}

/// The interaction ids an export held, by owner; each id once. 16 bytes per record plus one
/// entry per user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeldRecords {
    by_user: BTreeMap<UserId, Vec<Id>>,
}

impl HeldRecords {
    /// Note that a line of `id` (owned by `user`) was written. A record's lines come together,
    /// so a repeat is caught by the last id; [`HeldRecords::by_user`] dedupes the rest.
    pub fn add(&mut self, user: &UserId, id: Id) {
        match self.by_user.get_mut(user) {
            Some(ids) => {
                if ids.last() != Some(&id) {
                    ids.push(id);
                }
            }
            None => {
                self.by_user.insert(user.clone(), vec![id]);
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_user.is_empty()
    }

    /// Every record held, whoever owns it.
    pub fn ids(&self) -> std::collections::HashSet<Id> {
        self.by_user.values().flatten().copied().collect()
    }

    /// Each user's ids, sorted and without repeats.
    pub fn by_user(&self) -> impl Iterator<Item = (&UserId, Vec<Id>)> {
        self.by_user.iter().map(|(u, ids)| {
            let mut ids = ids.clone();
            ids.sort_unstable();
            ids.dedup();
            (u, ids)
        })
    }

    /// How many records (distinct ids).
    pub fn len(&self) -> usize {
        self.by_user().map(|(_, ids)| ids.len()).sum()
    }
}

/// Which held records a lookup or an erasure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldBy<'a> {
    /// One interaction, with its owner (every record has one, and a delete knows it).
    Record { id: Id, user: &'a UserId },
    /// Every record of a user.
    User(&'a UserId),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_records_group_by_user_and_dedupe() {
        let (a, b) = (UserId::parse("alice").expect("user"), UserId::parse("bob").expect("user"));
        let (x, y, z) = (Id::new(), Id::new(), Id::new());
        let mut h = HeldRecords::default();
        assert!(h.is_empty());
        for (u, id) in [(&a, y), (&a, y), (&b, z), (&a, x), (&a, y)] {
            h.add(u, id);
        }
        let got: Vec<(UserId, Vec<Id>)> = h.by_user().map(|(u, ids)| (u.clone(), ids)).collect();
        let mut xy = vec![x, y];
        xy.sort();
        assert_eq!(got, vec![(a, xy), (b, vec![z])]);
        assert_eq!(h.len(), 3);
    }

    #[test]
    fn a_manifest_names_every_filter_and_a_split_only_when_asked() {
        let f = ExportFilter { limit: Some(5), ..ExportFilter::default() };
        let m = ExportManifest {
            export_id: Id::new(),
            created_at: Utc::now(),
            caller: "root".into(),
            platform: Platform::parse("n8n").expect("platform"),
            format: f.format.as_str().into(),
            filters: ManifestFilters::of(&f),
            split: ManifestSplit::of(&f),
            lines: 3,
            sha256: "00".repeat(32),
            bytes: 10,
        };
        let v = serde_json::to_value(&m).expect("json");
        assert!(v.get("split").is_none());
        assert_eq!(v["filters"]["limit"], 5);
        assert!(v["filters"]["since"].is_null());
        assert_eq!(serde_json::from_value::<ExportManifest>(v).expect("back"), m);
        let f = ExportFilter { split: Some(Split::Validation), validation_fraction: 0.2, ..ExportFilter::default() };
        let s = ManifestSplit::of(&f).expect("split");
        assert_eq!((s.side.as_str(), s.validation_fraction), ("validation", 0.2));
    }
}
