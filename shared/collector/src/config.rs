//! Configuration from the environment, loaded once. A bad value stops start-up naming the
//! variable and the value.

use std::path::PathBuf;

use crate::domain::export::DEFAULT_SYSTEM_PROMPT;
use crate::domain::platforms::{DEFAULT_MAX_PLATFORMS, DEFAULT_PLATFORMS, MAX_PLATFORMS_CEILING};
use crate::domain::stats::{Prices, Thresholds};
use crate::domain::types::Platform;

#[derive(Debug, thiserror::Error)]
#[error("bad configuration: {var}={value:?}: {reason}")]
pub struct ConfigError {
    pub var: String,
    pub value: String,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    Aws,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::Aws => "aws",
        }
    }
}

/// A secret that `Debug` does not print.
#[derive(Clone)]
pub struct Secret(String);
impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub enable_data_collection: bool,
    pub enable_data_archiving: bool,
    pub data_retention_days: u32,
    pub compression_threshold_kb: u64,
    pub backend: Backend,
    pub data_dir: PathBuf,
    pub jwt_secret: Option<Secret>,
    pub groups_claim: String,
    pub prices: Prices,
    pub thresholds: Thresholds,
    pub export_system_prompt: String,
    pub default_training_consent: bool,
    /// Estimated-token limit per exported line.
    pub export_max_tokens: u64,
    pub s3_endpoint: Option<String>,
    pub s3_access_key: Option<String>,
    pub s3_secret_key: Option<Secret>,
    pub s3_bucket_name: Option<String>,
    pub s3_region: Option<String>,
    pub table_name: Option<String>,
    pub archive_table_name: Option<String>,
    pub dynamodb_endpoint: Option<String>,
    /// `collector serve` runs the daily archive at this UTC time (`COLLECTOR_ARCHIVE_AT`,
    /// HH:MM, default 03:00; `off` turns it off, for a machine with its own scheduler).
    pub archive_at: Option<chrono::NaiveTime>,
    /// `PLATFORMS`: the platforms every caller may use, in the order given (no repeats).
    pub platforms: Vec<Platform>,
    /// `MAX_PLATFORMS`: configured plus admin-added platforms may not pass it.
    pub max_platforms: u32,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|k| std::env::var(k).ok())
    }

    /// Same as [`Config::from_env`] over any lookup (tests pass a map; no global env mutation).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env(&get);
        let d = Thresholds::default();
        let p = Prices::default();
        let platforms = platforms(get("PLATFORMS"))?;
        let max_platforms = env.num("MAX_PLATFORMS", DEFAULT_MAX_PLATFORMS, 1..=MAX_PLATFORMS_CEILING)?;
        if (max_platforms as usize) < platforms.len() {
            let value = get("MAX_PLATFORMS").unwrap_or_else(|| max_platforms.to_string());
            let reason = format!("must be at least the number of PLATFORMS ({})", platforms.len());
            return Err(bad("MAX_PLATFORMS", &value, &reason));
        }
        Ok(Config {
            enable_data_collection: env.bool("ENABLE_DATA_COLLECTION", true)?,
            enable_data_archiving: env.bool("ENABLE_DATA_ARCHIVING", true)?,
            data_retention_days: env.num("DATA_RETENTION_DAYS", 30u32, 1..=36_500)?,
            compression_threshold_kb: env.num("COMPRESSION_THRESHOLD_KB", 10u64, 0..=1024 * 1024)?,
            backend: match env.text("COLLECTOR_BACKEND").as_deref() {
                None | Some("local") => Backend::Local,
                Some("aws") => Backend::Aws,
                Some(other) => return Err(bad("COLLECTOR_BACKEND", other, "must be local or aws")),
            },
            data_dir: PathBuf::from(env.text("COLLECTOR_DATA_DIR").unwrap_or_else(|| "./data".into())),
            jwt_secret: env.text("COLLECTOR_JWT_SECRET").map(Secret),
            groups_claim: env.text("COLLECTOR_GROUPS_CLAIM").unwrap_or_else(|| "cognito:groups".into()),
            prices: Prices {
                hot_gb_month: env.num("PRICE_HOT_GB_MONTH", p.hot_gb_month, 0.0..=MAX_PRICE_GB_MONTH)?,
                archive_gb_month: env.num("PRICE_ARCHIVE_GB_MONTH", p.archive_gb_month, 0.0..=MAX_PRICE_GB_MONTH)?,
            },
            thresholds: Thresholds {
                total_examples: env.num("READINESS_MIN_TOTAL", d.total_examples, 0..=MAX_THRESHOLD)?,
                successful: env.num("READINESS_MIN_SUCCESSFUL", d.successful, 0..=MAX_THRESHOLD)?,
                with_feedback: env.num("READINESS_MIN_FEEDBACK", d.with_feedback, 0..=MAX_THRESHOLD)?,
                quality_examples: env.num("READINESS_MIN_QUALITY", d.quality_examples, 0..=MAX_THRESHOLD)?,
                min_score: env.num("READINESS_MIN_SCORE", d.min_score, 0..=100)?,
            },
            export_system_prompt: env.text("EXPORT_SYSTEM_PROMPT").unwrap_or_else(|| DEFAULT_SYSTEM_PROMPT.into()),
            default_training_consent: env.bool("DEFAULT_TRAINING_CONSENT", true)?,
            export_max_tokens: env.num(
                "EXPORT_MAX_TOKENS",
                crate::domain::formats::DEFAULT_MAX_TOKENS,
                1..=MAX_EXPORT_TOKENS,
            )?,
            s3_endpoint: env.text("S3_ENDPOINT"),
            s3_access_key: env.text("S3_ACCESS_KEY"),
            s3_secret_key: env.text("S3_SECRET_KEY").map(Secret),
            s3_bucket_name: env.text("S3_BUCKET_NAME"),
            s3_region: env.text("S3_REGION"),
            table_name: env.text("TABLE_NAME"),
            archive_table_name: env.text("ARCHIVE_TABLE_NAME"),
            dynamodb_endpoint: env.text("DYNAMODB_ENDPOINT"),
            archive_at: match env.text("COLLECTOR_ARCHIVE_AT") {
                None => chrono::NaiveTime::from_hms_opt(3, 0, 0),
                Some(v) if v.trim().eq_ignore_ascii_case("off") => None,
                Some(v) => Some(
                    chrono::NaiveTime::parse_from_str(v.trim(), "%H:%M")
                        .map_err(|_| bad("COLLECTOR_ARCHIVE_AT", &v, "must be HH:MM (UTC) or off"))?,
                ),
            },
            platforms,
            max_platforms,
        })
    }

    /// The names and endpoints the AWS backend needs; a missing or malformed one is a
    /// [`ConfigError`] naming it (checked at start-up, when `COLLECTOR_BACKEND=aws`).
    pub fn aws(&self) -> Result<AwsSettings, ConfigError> {
        let required = |var: &str, v: &Option<String>| {
            v.clone().ok_or_else(|| bad(var, "", "is required when COLLECTOR_BACKEND=aws"))
        };
        let endpoint = |var: &str, v: &Option<String>| match v {
            Some(url) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                Err(bad(var, url, "must be an http:// or https:// URL"))
            }
            other => Ok(other.clone()),
        };
        if self.s3_access_key.is_some() != self.s3_secret_key.is_some() {
            let (var, value) = if self.s3_access_key.is_some() { ("S3_SECRET_KEY", "") } else { ("S3_ACCESS_KEY", "") };
            return Err(bad(var, value, "S3_ACCESS_KEY and S3_SECRET_KEY go together"));
        }
        Ok(AwsSettings {
            table_name: required("TABLE_NAME", &self.table_name)?,
            archive_table_name: required("ARCHIVE_TABLE_NAME", &self.archive_table_name)?,
            bucket: required("S3_BUCKET_NAME", &self.s3_bucket_name)?,
            dynamodb_endpoint: endpoint("DYNAMODB_ENDPOINT", &self.dynamodb_endpoint)?,
            s3_endpoint: endpoint("S3_ENDPOINT", &self.s3_endpoint)?,
        })
    }

    pub fn compression_threshold_bytes(&self) -> u64 {
        self.compression_threshold_kb * 1024
    }
}

/// What [`Config::aws`] checked.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsSettings {
    pub table_name: String,
    pub archive_table_name: String,
    pub bucket: String,
    pub dynamodb_endpoint: Option<String>,
    pub s3_endpoint: Option<String>,
}

/// `PLATFORMS`: comma-separated slugs (spaces around them ignored, a repeat kept once).
/// Unset is the default; set but empty, or naming a bad slug, is an error.
fn platforms(raw: Option<String>) -> Result<Vec<Platform>, ConfigError> {
    let Some(raw) = raw else {
        return DEFAULT_PLATFORMS.iter().map(|p| Platform::parse(p).map_err(|m| bad("PLATFORMS", p, &m))).collect();
    };
    let mut out: Vec<Platform> = Vec::new();
    for part in raw.split(',') {
        let p = Platform::parse(part.trim()).map_err(|m| {
            let what = if part.trim().is_empty() {
                "must list platform slugs separated by commas, none empty".to_owned()
            } else {
                format!("each platform {m}")
            };
            bad("PLATFORMS", &raw, &what)
        })?;
        if !out.contains(&p) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Upper bounds of the numeric settings: past them a value is a typo, and some would overflow
/// cost or date arithmetic (every setting is checked at start-up, message naming it).
const MAX_PRICE_GB_MONTH: f64 = 1_000.0;
const MAX_THRESHOLD: i64 = 1_000_000_000;
const MAX_EXPORT_TOKENS: u64 = 10_000_000;

fn bad(var: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError { var: var.into(), value: value.into(), reason: reason.into() }
}

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    /// Unset or empty is "not given".
    fn text(&self, var: &str) -> Option<String> {
        (self.0)(var).filter(|v| !v.trim().is_empty())
    }

    fn bool(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.text(var) {
            None => Ok(default),
            Some(v) => match v.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(bad(var, &v, "must be true or false")),
            },
        }
    }

    /// A number within `range`; anything else stops start-up with the range in the message.
    fn num<T>(&self, var: &str, default: T, range: std::ops::RangeInclusive<T>) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
    {
        match self.text(var) {
            None => Ok(default),
            Some(v) => match v.trim().parse::<T>() {
                Ok(n) if range.contains(&n) => Ok(n),
                _ => Err(bad(var, &v, &format!("must be a number from {} to {}", range.start(), range.end()))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = load(&[]).unwrap();
        assert!(c.enable_data_collection && c.enable_data_archiving);
        assert_eq!((c.data_retention_days, c.compression_threshold_kb), (30, 10));
        assert_eq!(c.backend, Backend::Local);
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.groups_claim, "cognito:groups");
        assert_eq!((c.prices.hot_gb_month, c.prices.archive_gb_month), (0.25, 0.0125));
        assert_eq!(c.thresholds.total_examples, 50);
    }

    #[test]
    fn a_bad_value_names_the_variable_and_value() {
        let e = load(&[("DATA_RETENTION_DAYS", "soon")]).unwrap_err();
        assert_eq!((e.var.as_str(), e.value.as_str()), ("DATA_RETENTION_DAYS", "soon"));
        assert!(e.to_string().contains("DATA_RETENTION_DAYS") && e.to_string().contains("soon"));
        assert_eq!(load(&[("ENABLE_DATA_COLLECTION", "maybe")]).unwrap_err().var, "ENABLE_DATA_COLLECTION");
        assert_eq!(load(&[("COLLECTOR_BACKEND", "gcp")]).unwrap_err().var, "COLLECTOR_BACKEND");
        assert_eq!(load(&[("PRICE_HOT_GB_MONTH", "-1")]).unwrap_err().var, "PRICE_HOT_GB_MONTH");
        assert_eq!(load(&[("DATA_RETENTION_DAYS", "4000000000")]).unwrap_err().var, "DATA_RETENTION_DAYS");
        assert_eq!(load(&[("COLLECTOR_ARCHIVE_AT", "3pm")]).unwrap_err().var, "COLLECTOR_ARCHIVE_AT");
        assert_eq!(load(&[("COLLECTOR_ARCHIVE_AT", "off")]).unwrap().archive_at, None);
        assert_eq!(
            load(&[("COLLECTOR_ARCHIVE_AT", "22:30")]).unwrap().archive_at,
            chrono::NaiveTime::from_hms_opt(22, 30, 0)
        );
    }

    #[test]
    fn platforms_default_parse_and_bound_the_limit() {
        let names = |c: &Config| c.platforms.iter().map(|p| p.as_str().to_owned()).collect::<Vec<_>>();
        let c = load(&[]).unwrap();
        assert_eq!((names(&c), c.max_platforms), (vec!["n8n".to_owned(), "zapier".into(), "make".into()], 32));
        let c = load(&[("PLATFORMS", " n8n, airflow ,n8n"), ("MAX_PLATFORMS", "2")]).unwrap();
        assert_eq!((names(&c), c.max_platforms), (vec!["n8n".to_owned(), "airflow".into()], 2));
        for bad_list in ["", " ", "n8n,,make", "N8N", "n8n,a b", &"a".repeat(33)] {
            let e = load(&[("PLATFORMS", bad_list)]).unwrap_err();
            assert_eq!((e.var.as_str(), e.value.as_str()), ("PLATFORMS", bad_list));
        }
        for bad_max in ["0", "1001", "many", "-1"] {
            let e = load(&[("MAX_PLATFORMS", bad_max)]).unwrap_err();
            assert_eq!((e.var.as_str(), e.value.as_str()), ("MAX_PLATFORMS", bad_max));
        }
        let e = load(&[("PLATFORMS", "a,b,c"), ("MAX_PLATFORMS", "2")]).unwrap_err();
        assert_eq!((e.var.as_str(), e.value.as_str()), ("MAX_PLATFORMS", "2"));
        assert!(e.to_string().contains("PLATFORMS (3)"), "{e}");
        let many: Vec<String> = (0..33).map(|i| format!("p{i}")).collect();
        assert_eq!(load(&[("PLATFORMS", &many.join(","))]).unwrap_err().var, "MAX_PLATFORMS");
        assert_eq!(load(&[("PLATFORMS", &many.join(",")), ("MAX_PLATFORMS", "33")]).unwrap().platforms.len(), 33);
    }

    #[test]
    fn every_number_is_bounded_and_the_message_gives_the_range() {
        for (var, bad_value) in [
            ("DATA_RETENTION_DAYS", "0"),
            ("DATA_RETENTION_DAYS", "99999999999"),
            ("COMPRESSION_THRESHOLD_KB", "-1"),
            ("COMPRESSION_THRESHOLD_KB", "1048577"),
            ("PRICE_HOT_GB_MONTH", "1e300"),
            ("PRICE_ARCHIVE_GB_MONTH", "NaN"),
            ("PRICE_ARCHIVE_GB_MONTH", "inf"),
            ("READINESS_MIN_TOTAL", "-5"),
            ("READINESS_MIN_QUALITY", "10000000000"),
            ("READINESS_MIN_SCORE", "101"),
            ("EXPORT_MAX_TOKENS", "0"),
            ("MAX_PLATFORMS", "0"),
        ] {
            let e = load(&[(var, bad_value)]).unwrap_err();
            assert_eq!((e.var.as_str(), e.value.as_str()), (var, bad_value));
            assert!(e.to_string().contains("must be a number from"), "{var}={bad_value}: {e}");
        }
        let c = load(&[
            ("PRICE_HOT_GB_MONTH", "0"),
            ("READINESS_MIN_TOTAL", "1000000000"),
            ("COMPRESSION_THRESHOLD_KB", "0"),
        ])
        .unwrap();
        assert_eq!(
            (c.prices.hot_gb_month, c.thresholds.total_examples, c.compression_threshold_kb),
            (0.0, 1_000_000_000, 0)
        );
    }

    #[test]
    fn the_aws_backend_names_what_it_misses() {
        let full = [("TABLE_NAME", "hot"), ("ARCHIVE_TABLE_NAME", "arch"), ("S3_BUCKET_NAME", "b")];
        let ok = load(&full).unwrap().aws().unwrap();
        assert_eq!((ok.table_name.as_str(), ok.bucket.as_str(), ok.dynamodb_endpoint), ("hot", "b", None));
        assert_eq!(load(&full[1..]).unwrap().aws().unwrap_err().var, "TABLE_NAME");
        let mut bad_url = full.to_vec();
        bad_url.push(("DYNAMODB_ENDPOINT", "localhost:8000"));
        let e = load(&bad_url).unwrap().aws().unwrap_err();
        assert_eq!((e.var.as_str(), e.value.as_str()), ("DYNAMODB_ENDPOINT", "localhost:8000"));
        let mut half_keys = full.to_vec();
        half_keys.push(("S3_ACCESS_KEY", "AKIA"));
        assert_eq!(load(&half_keys).unwrap().aws().unwrap_err().var, "S3_SECRET_KEY");
    }

    #[test]
    fn secrets_do_not_print() {
        let c = load(&[("COLLECTOR_JWT_SECRET", "hunter2")]).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
