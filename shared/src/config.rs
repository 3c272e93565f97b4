//! Configuration, read once at cold start from the environment. AWS endpoints are not here: the
//! SDK reads `AWS_ENDPOINT_URL` itself, so one binary runs against AWS, LocalStack or the local
//! emulators.

use thiserror::Error;
use time::Duration;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("environment variable {0} is required")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
    /// The AWS configuration lacks what a client needs (a region, credentials).
    #[error("AWS configuration: {0}")]
    Aws(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub table_name: String,
    /// How long an online order's stock is held awaiting payment.
    pub hold_duration: Duration,
    /// How long a cash-on-delivery order's stock is held awaiting review.
    pub cod_hold_duration: Duration,
    /// Number of partitions the expiring-holds index is spread over.
    pub expiry_buckets: u32,
}

impl Config {
    pub const DEFAULT_HOLD_MINUTES: i64 = 30;
    pub const DEFAULT_COD_HOLD_MINUTES: i64 = 24 * 60;
    pub const DEFAULT_EXPIRY_BUCKETS: u32 = 16;

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Build from any name → value lookup (the environment, or a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |name: &'static str| get(name).filter(|v| !v.is_empty()).ok_or(ConfigError::Missing(name));
        let number = |name: &'static str,
                      default: i64,
                      range: std::ops::RangeInclusive<i64>|
         -> Result<i64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(raw) => match raw.trim().parse::<i64>() {
                    Ok(v) if range.contains(&v) => Ok(v),
                    _ => Err(ConfigError::Invalid { name, reason: format!("expected a whole number in {range:?}") }),
                },
            }
        };
        Ok(Self {
            table_name: required("TABLE_NAME")?,
            hold_duration: Duration::minutes(number("HOLD_MINUTES", Self::DEFAULT_HOLD_MINUTES, 1..=7 * 24 * 60)?),
            cod_hold_duration: Duration::minutes(number(
                "COD_HOLD_MINUTES",
                Self::DEFAULT_COD_HOLD_MINUTES,
                1..=14 * 24 * 60,
            )?),
            expiry_buckets: number("EXPIRY_BUCKETS", i64::from(Self::DEFAULT_EXPIRY_BUCKETS), 1..=256)? as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn hold_defaults_to_thirty_minutes() {
        let c = config(&[("TABLE_NAME", "t")]).unwrap();
        assert_eq!(c.hold_duration, Duration::minutes(30));
    }

    #[test]
    fn missing_table_is_an_error() {
        assert!(matches!(config(&[("HOLD_MINUTES", "30")]), Err(ConfigError::Missing("TABLE_NAME"))));
    }

    #[test]
    fn a_nonsense_hold_is_an_error() {
        let r = config(&[("TABLE_NAME", "t"), ("HOLD_MINUTES", "0")]);
        assert!(matches!(r, Err(ConfigError::Invalid { name: "HOLD_MINUTES", .. })));
    }
}
