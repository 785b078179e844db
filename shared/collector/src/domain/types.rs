//! Validated input types: parsed once at the edge, trusted everywhere after.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `t` if its UTC year is within 0000..=9999, the years stored times are written in (fixed-width
/// text, compared as text): a query bound or cursor outside them would compare wrongly.
pub fn storable_time(t: chrono::DateTime<chrono::Utc>) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::Datelike;
    (0..=9999).contains(&t.year()).then_some(t)
}

/// One problem with one input field. The message names the field's rule, never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

/// A platform slug: `^[a-z0-9][a-z0-9_-]{0,31}$`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Platform(String);

impl Platform {
    pub fn parse(raw: &str) -> Result<Platform, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 32
            && raw
                .bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && (b == b'_' || b == b'-')));
        if ok {
            Ok(Platform(raw.to_owned()))
        } else {
            Err("must be a slug of 1-32 characters: lowercase letters, digits, '_' or '-', starting with a letter or digit".into())
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Platform {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Platform::parse(&s)
    }
}
impl From<Platform> for String {
    fn from(p: Platform) -> String {
        p.0
    }
}
impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A record id (interaction, feedback, validation, example, metric, run): a UUID, v7 when we make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Id(pub Uuid);

impl Id {
    pub fn new() -> Id {
        Id(Uuid::now_v7())
    }
    pub fn parse(raw: &str) -> Result<Id, String> {
        Uuid::parse_str(raw).map(Id).map_err(|_| "must be a UUID".to_string())
    }
}
impl Default for Id {
    fn default() -> Self {
        Id::new()
    }
}
impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A user id: the JWT `sub`. Opaque, non-empty, bounded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(pub(crate) String);

impl UserId {
    pub fn parse(raw: &str) -> Result<UserId, String> {
        // Characters, as the message says (not bytes: 256 letters of a non-Latin script pass).
        if raw.is_empty() || raw.chars().count() > 256 || raw.chars().any(char::is_control) {
            Err("must be 1-256 characters without control characters".into())
        } else {
            Ok(UserId(raw.to_owned()))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Service,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Service => "service",
            Role::Admin => "admin",
        }
    }
}

/// Who is calling: the same whether the claims came from API Gateway or a local JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub sub: UserId,
    pub role: Role,
}

impl Caller {
    /// Service and admin act on anyone's records; a user only on their own.
    pub fn can_access(&self, owner: &UserId) -> bool {
        matches!(self.role, Role::Admin | Role::Service) || &self.sub == owner
    }
    pub fn is_privileged(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Service)
    }
}

/// `limit` for paged lists: 1..=100, default 20.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(u32);

impl PageLimit {
    pub const DEFAULT: PageLimit = PageLimit(20);
    pub fn parse(raw: &str) -> Result<PageLimit, String> {
        match raw.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => Ok(PageLimit(n)),
            _ => Err("must be an integer from 1 to 100".into()),
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Conversation,
    WorkflowGeneration,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Conversation => "conversation",
            Kind::WorkflowGeneration => "workflow_generation",
        }
    }
    pub fn parse(raw: &str) -> Option<Kind> {
        match raw {
            "conversation" => Some(Kind::Conversation),
            "workflow_generation" => Some(Kind::WorkflowGeneration),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_slug_rules() {
        for ok in ["n8n", "zapier", "a", "my-platform_2", &"a".repeat(32)] {
            assert!(Platform::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "N8N", "-x", "_x", "a b", "é", &"a".repeat(33), "a/b"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_id_bounds_count_characters() {
        assert!(UserId::parse(&"é".repeat(256)).is_ok(), "256 characters, 512 bytes");
        assert!(UserId::parse(&"a".repeat(257)).is_err());
        for bad in ["", "a\u{0}b", "tab\there", "\u{85}"] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn page_limit_bounds() {
        assert!(PageLimit::parse("0").is_err());
        assert!(PageLimit::parse("101").is_err());
        assert!(PageLimit::parse("x").is_err());
        assert_eq!(PageLimit::parse("100").map(PageLimit::get), Ok(100));
    }

    #[test]
    fn callers_reach_only_their_own_records_unless_privileged() {
        let alice = UserId::parse("alice").unwrap();
        let bob = UserId::parse("bob").unwrap();
        let user = Caller { sub: alice.clone(), role: Role::User };
        assert!(user.can_access(&alice));
        assert!(!user.can_access(&bob));
        assert!(Caller { sub: alice, role: Role::Service }.can_access(&bob));
    }
}
