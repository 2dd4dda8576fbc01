//! Names derived from a source object: its day, its folder, the stem of its outputs.

use chrono::{DateTime, NaiveDate, Utc};

use crate::util::hash::fnv1a;

/// The day an input belongs to: a `dt=YYYY-MM-DD` or `YYYY-MM-DD` segment of its key, else the
/// day it was last modified.
pub fn input_day(key: &str, last_modified: Option<DateTime<Utc>>) -> String {
    for segment in key.split('/').rev().skip(1) {
        let candidate = segment.strip_prefix("dt=").unwrap_or(segment);
        if NaiveDate::parse_from_str(candidate, "%Y-%m-%d").is_ok() {
            return candidate.to_string();
        }
    }
    last_modified
        .unwrap_or_else(Utc::now)
        .format("%Y-%m-%d")
        .to_string()
}

/// Midnight (UTC) of a `YYYY-MM-DD` day: the event time of outputs whose transform names none.
pub fn day_start(day: &str) -> Option<DateTime<Utc>> {
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// The folder of a key (`a/b/c.csv` → `a/b`).
pub fn folder(key: &str) -> &str {
    key.rsplit_once('/').map(|(f, _)| f).unwrap_or("")
}

/// A name for outputs derived from a source key: readable, safe, and unique per key.
pub fn output_stem(source_key: &str) -> String {
    let base = source_key.rsplit('/').next().unwrap_or(source_key);
    let base = base.split('.').next().unwrap_or(base);
    let readable: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    format!("{readable}-{:08x}", fnv1a(source_key.as_bytes()) as u32)
}

/// The first 12 characters of an ETag, without quotes: enough to tell versions of a key apart
/// in output and index names.
pub fn short_etag(etag: &str) -> String {
    etag.trim_matches('"')
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(12)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_comes_from_the_key_or_the_modification_time() {
        assert_eq!(
            input_day("raw/transactions/dt=2026-11-21/part-1.csv", None),
            "2026-11-21"
        );
        assert_eq!(input_day("raw/2026-11-20/part-1.csv", None), "2026-11-20");
        let t = DateTime::parse_from_rfc3339("2026-11-19T23:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(input_day("raw/part-1.csv", Some(t)), "2026-11-19");
        assert_eq!(
            input_day("2026-11-18.csv", Some(t)),
            "2026-11-19",
            "the file name itself is not a folder"
        );
        assert_eq!(
            day_start("2026-11-19").unwrap().to_rfc3339(),
            "2026-11-19T00:00:00+00:00"
        );
        assert_eq!(day_start("soon"), None);
    }

    #[test]
    fn output_stems_are_safe_and_distinct() {
        let a = output_stem("raw/dt=2026-11-22/part 0001 é.csv.gz");
        assert!(a.starts_with("part_0001__-"), "{a}");
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(a, output_stem("raw/dt=2026-11-23/part 0001 é.csv.gz"));
        assert_eq!(
            short_etag("\"d41d8cd98f00b204e9800998ecf8427e\""),
            "d41d8cd98f00"
        );
    }
}
