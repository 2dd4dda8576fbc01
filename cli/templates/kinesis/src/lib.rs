//! `{{name}}`: clickstream events from Kinesis, checked, filtered, normalised and enriched with
//! their page's section into page views, landed in S3 as gzip NDJSON partitioned by the hour of
//! the click.
//!
//! Replace [`Click`], [`PageView`] and [`Clicks`] with your own records and rules; decoding,
//! quarantine of bad records, retries, idempotent writes, logs and metrics come from runnel.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use runnel::prelude::*;
use runnel::sink::ObjectStore;
use runnel::timestamp::rfc3339;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

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
    /// Not in the event: the page's section, filled in by [`Clicks::enrich`].
    #[serde(skip)]
    pub section: Option<String>,
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
    /// The page's section (`marketing`, `docs`), when [`Sections`] are configured and know it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
}

/// User ids of synthetic monitors: not visitors, so their clicks are dropped, not quarantined.
pub const MONITOR_PREFIX: &str = "synthetic-";

/// Where a page's section comes from: one JSON object in S3 mapping pages to sections
/// (`{"/pricing":"marketing","/docs":"docs"}`), read at the first lookup and kept while the
/// function stays warm. A page not in it has no section; a read that fails is transient, so the
/// click is retried, never quarantined, and the next lookup reads again.
pub struct Sections {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    key: String,
    cache: OnceCell<HashMap<String, String>>,
}

impl Sections {
    /// The sections in `s3://{bucket}/{key}` of `store`.
    pub fn new(store: Arc<dyn ObjectStore>, bucket: &str, key: &str) -> Self {
        Sections {
            store,
            bucket: bucket.to_string(),
            key: key.to_string(),
            cache: OnceCell::new(),
        }
    }

    /// The sections named by `PAGE_SECTIONS` (`s3://bucket/key`), or `None` when it is unset
    /// or empty.
    pub fn from_env(store: Arc<dyn ObjectStore>) -> Result<Option<Self>, String> {
        let url = std::env::var("PAGE_SECTIONS").unwrap_or_default();
        if url.is_empty() {
            return Ok(None);
        }
        let (bucket, key) = url
            .strip_prefix("s3://")
            .and_then(|rest| rest.split_once('/'))
            .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
            .ok_or_else(|| format!("PAGE_SECTIONS must be s3://bucket/key, not {url:?}"))?;
        Ok(Some(Sections::new(store, bucket, key)))
    }

    /// The section of `page`, reading the object at the first lookup.
    pub async fn section(&self, page: &str) -> Result<Option<String>, TransformError> {
        let sections = self.cache.get_or_try_init(|| self.load()).await?;
        Ok(sections.get(page).cloned())
    }

    async fn load(&self) -> Result<HashMap<String, String>, TransformError> {
        let (bucket, key) = (&self.bucket, &self.key);
        let bytes = self
            .store
            .read(bucket, key)
            .await
            .map_err(|e| TransformError::transient(&e))?
            .ok_or_else(|| TransformError::Transient(format!("s3://{bucket}/{key} is missing")))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            TransformError::Transient(format!("s3://{bucket}/{key} is not a JSON map: {e}"))
        })
    }
}

/// The transform: field rules, filtering, normalisation and, with [`Sections`], the lookup of
/// each page's section.
#[derive(Default)]
pub struct Clicks {
    pub sections: Option<Sections>,
}

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

    /// The transform awaits [`Clicks::enrich`] between `validate` and `apply`; clicks sharing a
    /// partition key are looked up in order, different keys concurrently.
    const ENRICHES: bool = true;

    async fn enrich(
        &self,
        mut click: Click,
        _ctx: &RecordContext<'_>,
    ) -> Result<Click, TransformError> {
        if let Some(sections) = &self.sections {
            click.section = sections.section(&normalise_page(&click.page)).await?;
        }
        Ok(click)
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
            section: click.section,
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

/// The function's pipeline: Kinesis in, `clicks`, gzip NDJSON by hour to S3. `main` runs it;
/// the tests build the same pipeline with an in-memory store.
pub fn pipeline(clicks: Clicks) -> StreamPipeline<Kinesis, Clicks> {
    Pipeline::new(NAME).source(Kinesis).transform(clicks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel::records::{decompress, DecodeLimits};
    use runnel::sink::PutObject;
    use runnel::source::kinesis::KinesisBatch;
    use runnel::source::BatchOutcome;

    /// The outputs of one click that passes its rules.
    fn views(json: &str) -> Vec<PageView> {
        let click: Click = serde_json::from_str(json).unwrap();
        let clicks = Clicks::default();
        clicks.validate(&click).unwrap();
        let ctx = RecordContext {
            stream: "shardId-000000000000",
            position: "1",
            index: 0,
            partition_key: None,
            arrival: None,
        };
        let mut out = Outputs::default();
        clicks.apply(click, &ctx, &mut out).unwrap();
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
            section: None,
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
        let fields: Vec<String> = Clicks::default()
            .validate(&click)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["user_id", "page", "ts"]);
    }

    /// The whole pipeline on a sample event, with objects kept in memory instead of S3: the
    /// outcome and how many records were reported for retry.
    async fn run_with(event: &str, clicks: Clicks, store: &MemoryStore) -> (BatchOutcome, usize) {
        let runner = pipeline(clicks)
            .store(store.clone())
            .config(StreamConfig::new(NAME, "output"))
            .build()
            .unwrap();
        let event: KinesisBatch = serde_json::from_str(event).unwrap();
        let (response, outcome) = runner.handle(&event).await;
        (outcome, response.unwrap().batch_item_failures.len())
    }

    /// The pipeline without sections; bad data is never retried.
    async fn run(event: &str) -> (BatchOutcome, MemoryStore) {
        let store = MemoryStore::new();
        let (outcome, retried) = run_with(event, Clicks::default(), &store).await;
        assert_eq!(retried, 0, "bad data is never retried");
        (outcome, store)
    }

    /// Clicks whose sections are read from `reference/sections.json` in `store`'s bucket.
    fn with_sections(store: &MemoryStore) -> Clicks {
        let sections = Sections::new(Arc::new(store.clone()), "output", "reference/sections.json");
        Clicks {
            sections: Some(sections),
        }
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

    #[tokio::test]
    async fn views_carry_the_section_their_page_is_in() {
        let store = MemoryStore::new();
        let sections = PutObject {
            bucket: "output".into(),
            key: "reference/sections.json".into(),
            body: br#"{"/pricing":"marketing"}"#.to_vec(),
            content_type: "application/json",
        };
        store.put(sections).await.unwrap();
        let (outcome, retried) = run_with(
            include_str!("../events/clean.json"),
            with_sections(&store),
            &store,
        )
        .await;
        assert_eq!((outcome.stats.documents_written, retried), (3, 0));
        let seven = documents(&store, &format!("{NAME}/dt=2026-11-22/hour=07/"));
        assert_eq!(seven[0]["page"], "/pricing");
        assert_eq!(seven[0]["section"], "marketing");
        // A page the sections do not name has none.
        assert!(seven[1].get("section").is_none(), "{}", seven[1]);
    }

    #[tokio::test]
    async fn a_missing_sections_object_retries_the_clicks_and_quarantines_nothing() {
        let store = MemoryStore::new();
        let (outcome, retried) = run_with(
            include_str!("../events/clean.json"),
            with_sections(&store),
            &store,
        )
        .await;
        assert_eq!(retried, 3, "{outcome:?}");
        assert_eq!(outcome.stats.documents_quarantined, 0);
        assert!(store.objects().is_empty());
    }

    #[test]
    fn the_sections_object_is_named_by_a_url() {
        let store: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
        std::env::set_var("PAGE_SECTIONS", "s3://bucket/reference/sections.json");
        let named = Sections::from_env(store.clone()).unwrap().unwrap();
        assert_eq!(
            (named.bucket.as_str(), named.key.as_str()),
            ("bucket", "reference/sections.json")
        );
        std::env::set_var("PAGE_SECTIONS", "bucket/sections.json");
        let error = Sections::from_env(store.clone()).err().unwrap();
        assert!(error.contains("s3://bucket/key"), "{error}");
        std::env::set_var("PAGE_SECTIONS", "");
        assert!(Sections::from_env(store.clone()).unwrap().is_none());
        std::env::remove_var("PAGE_SECTIONS");
        assert!(Sections::from_env(store).unwrap().is_none());
    }
}
