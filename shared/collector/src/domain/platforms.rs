//! Platforms (CONTRACT section 7a): the slugs a request may name. Known platforms are the
//! configured ones (`PLATFORMS`) plus those admins added (kept in the store), at most
//! `MAX_PLATFORMS` in all. Only n8n, zapier and make have a structural validator (section 5).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::input::Fields;
use super::types::{FieldError, Platform};

/// `PLATFORMS` when unset.
pub const DEFAULT_PLATFORMS: [&str; 3] = ["n8n", "zapier", "make"];
/// `MAX_PLATFORMS` when unset.
pub const DEFAULT_MAX_PLATFORMS: u32 = 32;
/// The largest `MAX_PLATFORMS` accepted: every request that misses the known set may read
/// them all, so the set stays small.
pub const MAX_PLATFORMS_CEILING: u32 = 1000;

/// The platforms whose workflows have structural rules (`validators::validate`); any other
/// gets the generic checks and the `unknown_platform` warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    N8n,
    Zapier,
    Make,
}

impl Validator {
    pub const ALL: [Validator; 3] = [Validator::N8n, Validator::Zapier, Validator::Make];

    pub fn slug(self) -> &'static str {
        match self {
            Validator::N8n => "n8n",
            Validator::Zapier => "zapier",
            Validator::Make => "make",
        }
    }

    /// The rules a platform's workflows follow, if it has any.
    pub fn of(platform: &Platform) -> Option<Validator> {
        Validator::ALL.into_iter().find(|v| v.slug() == platform.as_str())
    }
}

pub fn has_validator(platform: &Platform) -> bool {
    Validator::of(platform).is_some()
}

/// What an admin add may not pass: the configured platforms and `MAX_PLATFORMS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformLimit {
    pub configured: BTreeSet<Platform>,
    pub max: u32,
}

impl PlatformLimit {
    /// How many admin-added platforms the store may hold: `max` less the configured platforms
    /// that are not also added (a platform both configured and added counts once). Added
    /// platforms are never removed, so a cap computed from an older read of `added` is never
    /// above the true one: a conditional write on the stored count with it cannot pass the limit.
    pub fn added_cap(&self, added: &BTreeSet<Platform>) -> u64 {
        let configured_only = self.configured.difference(added).count() as u64;
        u64::from(self.max).saturating_sub(configured_only)
    }

    /// Whether one more platform fits next to `added`.
    pub fn has_room(&self, added: &BTreeSet<Platform>) -> bool {
        (added.len() as u64) < self.added_cap(added)
    }
}

/// What [`crate::ports::HotStore::add_platform`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformAdded {
    /// Stored now.
    Added,
    /// Already stored (by an earlier or a concurrent add): nothing written.
    AlreadyAdded,
    /// Adding it would pass `MAX_PLATFORMS`: nothing written.
    LimitReached,
}

/// `POST /api/platforms` body: `{"platform": slug}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPlatform {
    pub platform: Platform,
}

impl AddPlatform {
    pub fn parse(body: &Value) -> Result<AddPlatform, Vec<FieldError>> {
        let mut f = Fields::of(body)?;
        let platform = f.platform();
        f.finish(|| Some(AddPlatform { platform: platform? }))
    }
}

/// The 400 detail for a platform that is not known. It names the known ones (never what the
/// caller sent).
pub fn unknown(known: &BTreeSet<Platform>) -> FieldError {
    let names: Vec<&str> = known.iter().map(Platform::as_str).collect();
    FieldError::new(
        "platform",
        format!(
            "is not a known platform; known platforms: {} (an admin adds one with POST /api/platforms)",
            names.join(", ")
        ),
    )
}

/// One entry of `GET /api/platforms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PlatformInfo {
    pub platform: String,
    /// In `PLATFORMS` (else an admin added it).
    pub configured: bool,
    /// Has structural validation rules (n8n, zapier, make).
    pub validator: bool,
}

/// `GET /api/platforms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PlatformList {
    /// Configured platforms in `PLATFORMS` order, then added ones by name.
    pub items: Vec<PlatformInfo>,
    pub max_platforms: u32,
}

impl PlatformList {
    pub fn new(configured: &[Platform], added: &BTreeSet<Platform>, max_platforms: u32) -> PlatformList {
        let info = |p: &Platform, configured: bool| PlatformInfo {
            platform: p.as_str().to_owned(),
            configured,
            validator: has_validator(p),
        };
        let mut items: Vec<PlatformInfo> = configured.iter().map(|p| info(p, true)).collect();
        items.extend(added.iter().filter(|p| !configured.contains(p)).map(|p| info(p, false)));
        PlatformList { items, max_platforms }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(names: &[&str]) -> BTreeSet<Platform> {
        names.iter().map(|n| Platform::parse(n).unwrap()).collect()
    }

    #[test]
    fn the_cap_counts_a_platform_both_configured_and_added_once() {
        let limit = PlatformLimit { configured: set(&["n8n", "zapier", "make"]), max: 5 };
        assert_eq!(limit.added_cap(&set(&[])), 2);
        assert!(limit.has_room(&set(&["a"])));
        assert!(!limit.has_room(&set(&["a", "b"])));
        // "n8n" added and later configured: three known plus a and b is five.
        assert_eq!(limit.added_cap(&set(&["n8n", "a"])), 3);
        assert!(limit.has_room(&set(&["n8n", "a"])));
        assert!(!limit.has_room(&set(&["n8n", "a", "b"])));
        let full = PlatformLimit { configured: set(&["a", "b"]), max: 2 };
        assert_eq!(full.added_cap(&set(&[])), 0);
        assert!(!full.has_room(&set(&[])));
    }

    #[test]
    fn only_the_three_have_validators_and_the_validators_agree() {
        for p in ["n8n", "zapier", "make", "airflow"] {
            let p = Platform::parse(p).unwrap();
            let report = super::super::validators::validate(&p, &json!({"x": 1})).unwrap();
            let generic =
                report.warnings.iter().any(|w| w.code == super::super::validators::IssueCode::UnknownPlatform);
            assert_eq!(has_validator(&p), !generic, "{p}");
        }
    }

    #[test]
    fn the_unknown_message_names_the_known_platforms() {
        let e = unknown(&set(&["zapier", "n8n", "make", "airflow"]));
        assert_eq!(e.field, "platform");
        assert!(e.message.contains("airflow, make, n8n, zapier"), "{}", e.message);
    }

    #[test]
    fn the_list_puts_configured_first_then_added() {
        let configured: Vec<Platform> = ["n8n", "zapier", "make"].iter().map(|p| Platform::parse(p).unwrap()).collect();
        let l = PlatformList::new(&configured, &set(&["n8n", "airflow"]), 32);
        let names: Vec<(&str, bool, bool)> =
            l.items.iter().map(|i| (i.platform.as_str(), i.configured, i.validator)).collect();
        assert_eq!(
            names,
            [("n8n", true, true), ("zapier", true, true), ("make", true, true), ("airflow", false, false)]
        );
    }

    #[test]
    fn the_add_body_is_a_slug() {
        assert_eq!(AddPlatform::parse(&json!({"platform": "airflow"})).unwrap().platform.as_str(), "airflow");
        assert_eq!(AddPlatform::parse(&json!({"platform": "Air Flow"})).unwrap_err()[0].field, "platform");
        assert_eq!(AddPlatform::parse(&json!({})).unwrap_err()[0].field, "platform");
        assert_eq!(AddPlatform::parse(&json!([1])).unwrap_err()[0].field, "body");
    }
}
