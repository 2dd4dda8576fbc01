//! `{{name}}`: clickstream events from Kinesis, checked, filtered and normalised into page views,
//! landed in S3 as gzip NDJSON partitioned by the hour of the click.
//!
//! Replace [`Click`], [`PageView`] and [`Clicks`] with your own records and rules; decoding,
//! quarantine of bad records, retries, idempotent writes, logs and metrics come from runnel.

use chrono::{DateTime, Utc};
use runnel::prelude::*;
use runnel::timestamp::rfc3339;
use serde::{Deserialize, Serialize};

/// The pipeline's name: the service in logs and metrics, and the default output prefix.
pub const NAME: &str = "{{name}}";

/// A click as the website sends it, one JSON document per Kinesis record:
/// `{"user_id":"u-1001","page":"/pricing","ts":"2026-11-22T07:15:00Z","referrer":"https://…"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Click {
    pub user_id: String,
    pub page: String,
    /// RFC 3339 text or epoch milliseconds; a bad value is a field error, not a JSON error.
    pub ts: EventTime,
    #[serde(default)]
    pub referrer: Option<String>,
}

/// A page view as it lands in S3. Fields a click has beyond these are dropped, so the table's
/// schema stays fixed when the website adds some.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageView {
    pub user_id: String,
    pub page: String,
    #[serde(serialize_with = "rfc3339")]
    pub event_time: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referrer_host: Option<String>,
}

/// User ids of synthetic monitors: not visitors, so their clicks are dropped, not quarantined.
pub const MONITOR_PREFIX: &str = "synthetic-";

/// The transform: field rules, filtering and normalisation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Clicks;

impl Transform for Clicks {
    type Input = Click;
    type Output = PageView;

    /// Reports every broken rule at once; the click is quarantined with all of them.
    fn validate(&self, click: &Click) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if click.user_id.trim().is_empty() {
            errors.push(FieldError::new("user_id", "must not be empty"));
        }
        if !click.page.starts_with('/') {
            errors.push(FieldError::new("page", "must be a path starting with '/'"));
        }
        if let Err(reason) = click.ts.get() {
            errors.push(FieldError::new("ts", reason));
        }
        check(errors)
    }

    fn apply(
        &self,
        click: Click,
        _ctx: &RecordContext<'_>,
        out: &mut Outputs<PageView>,
    ) -> Result<(), TransformError> {
        if click.user_id.starts_with(MONITOR_PREFIX) {
            // No output: filtered out, neither written nor quarantined.
            return Ok(());
        }
        // Validation has refused clicks without a time already; this only names the reason.
        let event_time = click
            .ts
            .get()
            .map_err(|reason| TransformError::Reject(reason.to_string()))?;
        out.push(PageView {
            user_id: click.user_id.trim().to_string(),
            page: normalise_page(&click.page),
            event_time,
            referrer_host: click.referrer.as_deref().and_then(referrer_host),
        });
        Ok(())
    }

    /// The click's own time picks the hour partition, so a late record lands where it belongs.
    fn event_time(&self, view: &PageView) -> Option<DateTime<Utc>> {
        Some(view.event_time)
    }
}

/// One spelling per page (`/Pricing/?utm_source=ad` → `/pricing`), so page counts add up.
pub fn normalise_page(page: &str) -> String {
    let path = page
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .trim_end_matches('/');
    if path.is_empty() {
        "/".to_string()
    } else {
        path.to_ascii_lowercase()
    }
}

/// The host of a referrer URL, lowercased; `None` for a direct visit (no or empty referrer).
pub fn referrer_host(referrer: &str) -> Option<String> {
    let rest = referrer.split_once("://").map_or(referrer, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The function's pipeline: Kinesis in, [`Clicks`], gzip NDJSON by hour to S3. `main` runs it;
/// the tests build the same pipeline with an in-memory store.
pub fn pipeline() -> StreamPipeline<Kinesis, Clicks> {
    Pipeline::new(NAME).source(Kinesis).transform(Clicks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel::records::{decompress, DecodeLimits};
    use runnel::source::kinesis::KinesisBatch;
    use runnel::source::BatchOutcome;

    /// The outputs of one click that passes its rules.
    fn views(json: &str) -> Vec<PageView> {
        let click: Click = serde_json::from_str(json).unwrap();
        Clicks.validate(&click).unwrap();
        let ctx = RecordContext {
            stream: "shardId-000000000000",
            position: "1",
            index: 0,
            partition_key: None,
            arrival: None,
        };
        let mut out = Outputs::default();
        Clicks.apply(click, &ctx, &mut out).unwrap();
        out.drain().map(|(_, view)| view).collect()
    }

    #[test]
    fn pages_users_and_referrers_are_normalised() {
        let views = views(
            r#"{"user_id":" u-1 ","page":"/Pricing/?utm_source=ad","ts":"2026-11-22T08:15:00+01:00","referrer":"https://www.Example.com/blog"}"#,
        );
        let expected = PageView {
            user_id: "u-1".into(),
            page: "/pricing".into(),
            event_time: "2026-11-22T07:15:00Z".parse().unwrap(),
            referrer_host: Some("www.example.com".into()),
        };
        assert_eq!(views, [expected]);
        assert_eq!(normalise_page("/"), "/");
        assert_eq!(referrer_host(""), None);
    }

    #[test]
    fn synthetic_monitors_are_filtered_out() {
        let views = views(r#"{"user_id":"synthetic-uptime","page":"/health","ts":1795331100000}"#);
        assert!(views.is_empty());
    }

    #[test]
    fn every_broken_rule_is_reported() {
        let click: Click =
            serde_json::from_str(r#"{"user_id":"","page":"pricing","ts":"yesterday"}"#).unwrap();
        let fields: Vec<String> = Clicks
            .validate(&click)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["user_id", "page", "ts"]);
    }

    /// The whole pipeline on a sample event, with objects kept in memory instead of S3.
    async fn run(event: &str) -> (BatchOutcome, MemoryStore) {
        let store = MemoryStore::new();
        let runner = pipeline()
            .store(store.clone())
            .config(StreamConfig::new(NAME, "output"))
            .build()
            .unwrap();
        let event: KinesisBatch = serde_json::from_str(event).unwrap();
        let (response, outcome) = runner.handle(&event).await;
        let failures = response.unwrap().batch_item_failures;
        assert!(failures.is_empty(), "bad data is never retried");
        (outcome, store)
    }

    /// Every document in the objects under `prefix`, in key order.
    fn documents(store: &MemoryStore, prefix: &str) -> Vec<serde_json::Value> {
        let mut docs = Vec::new();
        for ((_, key), body) in store.objects() {
            if key.starts_with(prefix) {
                let text = decompress(&body, DecodeLimits::default()).unwrap();
                for line in String::from_utf8_lossy(&text).lines() {
                    docs.push(serde_json::from_str(line).unwrap());
                }
            }
        }
        docs
    }

    #[tokio::test]
    async fn a_clean_batch_lands_in_hourly_partitions() {
        let (outcome, store) = run(include_str!("../events/clean.json")).await;
        assert_eq!(outcome.stats.documents_written, 3);
        let seven = documents(&store, &format!("{NAME}/dt=2026-11-22/hour=07/"));
        assert_eq!(seven.len(), 2);
        assert_eq!(seven[0]["page"], "/pricing");
        assert_eq!(seven[0]["referrer_host"], "www.example.com");
        let eight = documents(&store, &format!("{NAME}/dt=2026-11-22/hour=08/"));
        assert_eq!(eight.len(), 1);
    }

    #[tokio::test]
    async fn bad_records_are_quarantined_and_monitors_dropped() {
        let (outcome, store) = run(include_str!("../events/poison.json")).await;
        let stats = &outcome.stats;
        let counts = (stats.documents_written, stats.documents_quarantined);
        assert_eq!(counts, (1, 2));
        assert_eq!(documents(&store, &format!("{NAME}/")).len(), 1);
        let quarantined = documents(&store, &format!("quarantine/{NAME}/"));
        let kinds: Vec<&str> = quarantined
            .iter()
            .filter_map(|q| q["kind"].as_str())
            .collect();
        assert_eq!(kinds, ["json", "validation"]);
    }
}
