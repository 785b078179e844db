//! Keys: the partition and sort keys of each kind of item, and the shard of an id (the layout
//! is described in the parent module).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};

use super::{Item, SHARDS, s};
use crate::domain::records::{Feedback, ValidationLog};
use crate::domain::types::{Id, Platform, UserId};

pub use crate::adapters::encoding::ts;

pub fn interaction_pk(id: Id) -> String {
    format!("I#{id}")
}

pub const INTERACTION_SK: &str = "A";

pub fn feedback_sk(fb: &Feedback) -> String {
    format!("F#{}#{}", ts(&fb.created_at), fb.feedback_id)
}

pub fn linked_validation_sk(v: &ValidationLog) -> String {
    format!("V#{}#{}", ts(&v.created_at), v.validation_id)
}

pub fn unlinked_validation_pk(id: Id) -> String {
    format!("V#{id}")
}

pub fn counter_pk(platform: &Platform, shard: u32) -> String {
    format!("C#{}#{shard}", platform.as_str())
}

pub const COUNTER_SK: &str = "C";
pub const REGISTRY_PK: &str = "REG";
pub const ADDED_PLATFORMS_PK: &str = "PLAT";
pub const PLATFORM_COUNT_PK: &str = "PLAT#N";
pub const PLATFORM_COUNT_SK: &str = "N";
pub const EXAMPLES_PK: &str = "EX";
pub const EXPORTS_PK: &str = "EXP";
/// Ids per held-records item: 8,000 ids of 36 bytes is about 290 KB, under the 400 KB item limit.
pub const HELD_CHUNK: usize = 8_000;
pub const METRICS_PK: &str = "MT";

/// The partition of the export records a user's ids are held in.
pub fn held_pk(user: &UserId) -> String {
    format!("XU#{}", user.as_str())
}

/// A held-records item's sort key: `{export_id}#{chunk}` (5 digits).
pub fn held_sk(export_id: Id, chunk: usize) -> String {
    format!("{export_id}#{chunk:05}")
}

pub fn platform_shard_pk(platform: &Platform, shard: u32) -> String {
    format!("P#{}#{shard}", platform.as_str())
}

pub fn user_pk(user: &UserId) -> String {
    format!("U#{}", user.as_str())
}

/// A global secondary index of the hot table: its key attributes and the non-key attributes it
/// projects (none: `KEYS_ONLY`; else `INCLUDE` exactly these). An index entry holds these and the
/// table's keys (`pk`, `sk`), nothing else: a query that needs a record reads it from the table
/// by key (`reads.rs`). template.yaml declares exactly these indexes, and a test holds it to them;
/// a query that filters on or reads an attribute its index does not project is refused
/// (`io::QuerySpec`), so the code and the template cannot drift apart unseen.
#[derive(Debug, PartialEq, Eq)]
pub struct Gsi {
    pub name: &'static str,
    pub pk: &'static str,
    pub sk: &'static str,
    /// The non-key attributes projected into the index.
    pub include: &'static [&'static str],
}

impl Gsi {
    /// Whether an entry of this index carries `attr`.
    pub fn projects(&self, attr: &str) -> bool {
        ["pk", "sk", self.pk, self.sk].contains(&attr) || self.include.contains(&attr)
    }
}

/// Platform and time, write-sharded: `P#{platform}#{shard}` / `{position}`. Keys only: every
/// query of it (listings by platform, the export and archive scans) reads the records from the
/// table, and merges the shards on the sort key.
pub const BY_PLATFORM: Gsi = Gsi { name: "by_platform_v2", pk: "gsi1pk", sk: "gsi1sk", include: &[] };

/// A user's records: `U#{user}` / `I#{position}` (hot), `A#{position}` (archived stubs),
/// `V#{position}` (unlinked validations). `platform` is the filter of a user's listing by
/// platform; `id` is all that the delete-all and the archived-entries lookup read; `ovf` names
/// the overflow object an unlinked validation's delete must remove (absent on nearly every item).
pub const BY_USER: Gsi = Gsi { name: "by_user_v2", pk: "gsi2pk", sk: "gsi2sk", include: &["id", "platform", "ovf"] };

/// Sort key of a record in the platform index: `{created_at}#{id}`.
pub fn position(created_at: &DateTime<Utc>, id: Id) -> String {
    format!("{}#{id}", ts(created_at))
}

/// The archive table's sort key: `{YYYY-MM-DD}#{object_key}`.
pub fn archive_sk(date: NaiveDate, object_key: &str) -> String {
    format!("{}#{object_key}", date.format("%Y-%m-%d"))
}

/// A stable shard in 0..SHARDS from an id (FNV-1a over its bytes: v7 ids start with the time).
pub fn shard_of(id: Id) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.0.as_bytes() {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h % SHARDS
}

pub const LEASE_PK: &str = "LEASE";
pub const LEASE_SK: &str = "archive";
pub const TOMB_PK: &str = "TOMB";

/// A tombstone's sort key: `{slot}#{id}`, so one slot's tombstones are one `begins_with`.
pub fn tombstone_sk(slot: &str, id: Id) -> String {
    format!("{slot}#{id}")
}

/// The archive table's key of a slot's row.
pub fn object_row_key(platform: &Platform, date: NaiveDate, slot: &str) -> Item {
    HashMap::from([("platform".to_owned(), s(platform.as_str())), ("object".to_owned(), s(archive_sk(date, slot)))])
}
