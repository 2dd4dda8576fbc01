//! Alerts: what a rule's match becomes, where it is published, and how a re-delivered batch is
//! kept from alerting twice.
//!
//! Each alert has an id made of its rule, key and window. Before publishing, the sink looks for
//! the alert's marker object (`<prefix>/<rule>/dt=<day>/<window start>-<id>.json`); when it is
//! there the alert went out already and is skipped. After a publish succeeds the marker is
//! written, holding the alert. A retried batch therefore publishes only what was not sent; the
//! one gap is a function that dies between the publish and the marker's put, whose retry sends
//! that alert again with the same `id` (consumers can drop it by `id`). An alert that cannot be
//! published fails the batch, whose retry lands again idempotently and publishes what is left:
//! a match is never lost to a failed publish.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use serde::Serialize;

use crate::sink::{Location, ObjectStore, PutObject, SinkError};
use crate::source::SourceRecord;

use super::rules::{Condition, Match, Rules};

/// The `detail-type` of every alert on EventBridge: what a rule routes on.
pub const ALERT_DETAIL_TYPE: &str = "Runnel Rule Matched";
/// The `source` of every alert on EventBridge.
pub const ALERT_SOURCE: &str = "runnel";

/// One rule's match on one key in one window: the `detail` of the event published.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// Rule, key and window, hashed: the same on every re-delivery.
    pub id: String,
    /// The pipeline that evaluated the rule.
    pub pipeline: String,
    /// The rule's name.
    pub rule: String,
    /// The rule's key columns and their values.
    pub key: serde_json::Map<String, serde_json::Value>,
    /// The value's name.
    pub field: String,
    /// Above or below.
    pub condition: Condition,
    /// The limit.
    pub limit: f64,
    /// How many outputs in a row had to be beyond it.
    pub consecutive: u32,
    /// The value of the output that completed the match.
    pub value: f64,
    /// That output's time (RFC 3339).
    pub at: String,
    /// The dedupe window: at most one alert per rule, key and window.
    pub window_start: String,
    /// Its end (exclusive).
    pub window_end: String,
    /// The stream (shard, queue, partition) of the record that completed the match.
    pub stream: String,
    /// Its position there (sequence number, message id, offset).
    pub position: String,
}

/// Why alerts could not be sent; the batch fails and is retried.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// A marker could not be read or written.
    #[error("alert marker {key}: {source}")]
    Marker {
        /// The marker's key.
        key: String,
        /// The store's error.
        #[source]
        source: SinkError,
    },
    /// The publisher refused some alerts.
    #[error("{failed} of {total} alerts not published: {reason}")]
    Publish {
        /// How many were refused.
        failed: usize,
        /// How many were tried.
        total: usize,
        /// The first reason given.
        reason: String,
    },
}

/// Where alerts go: EventBridge (`EventBridgeAlerts`, feature `eventbridge`), memory ([`MemoryAlerts`]), or your own.
pub trait AlertPublisher: Send + Sync {
    /// Publishes `alerts`, answering for each: `Ok` once it is accepted, or why not.
    fn publish<'a>(&'a self, alerts: &'a [Alert]) -> BoxFuture<'a, Vec<Result<(), String>>>;
}

/// Keeps what is published (tests, local runs); can refuse the next publishes.
#[derive(Debug, Clone, Default)]
pub struct MemoryAlerts {
    published: Arc<Mutex<Vec<Alert>>>,
    refusals: Arc<Mutex<usize>>,
}

impl MemoryAlerts {
    /// An empty publisher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every alert accepted so far, in order (with any duplicates).
    pub fn published(&self) -> Vec<Alert> {
        self.published.lock().expect("alerts lock").clone()
    }

    /// Refuses the next `n` alerts offered.
    pub fn refuse_next(&self, n: usize) {
        *self.refusals.lock().expect("alerts lock") = n;
    }
}

impl AlertPublisher for MemoryAlerts {
    fn publish<'a>(&'a self, alerts: &'a [Alert]) -> BoxFuture<'a, Vec<Result<(), String>>> {
        let mut refusals = self.refusals.lock().expect("alerts lock");
        let mut published = self.published.lock().expect("alerts lock");
        let answers = alerts
            .iter()
            .map(|alert| {
                if *refusals > 0 {
                    *refusals -= 1;
                    return Err("refused".to_string());
                }
                published.push(alert.clone());
                Ok(())
            })
            .collect();
        Box::pin(std::future::ready(answers))
    }
}

/// Publishes alerts to an EventBridge bus (`source` [`ALERT_SOURCE`], `detail-type`
/// [`ALERT_DETAIL_TYPE`], the alert as `detail`), ten to a `PutEvents` call.
#[cfg(feature = "eventbridge")]
#[derive(Debug, Clone)]
pub struct EventBridgeAlerts {
    client: aws_sdk_eventbridge::Client,
    bus: String,
}

#[cfg(feature = "eventbridge")]
impl EventBridgeAlerts {
    /// A publisher to `bus` (a name or ARN; `default` is the account's default bus).
    pub fn new(client: aws_sdk_eventbridge::Client, bus: impl Into<String>) -> Self {
        EventBridgeAlerts {
            client,
            bus: bus.into(),
        }
    }

    async fn put(&self, alerts: &[Alert]) -> Vec<Result<(), String>> {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let entries = alerts.iter().map(|alert| {
            PutEventsRequestEntry::builder()
                .event_bus_name(&self.bus)
                .source(ALERT_SOURCE)
                .detail_type(ALERT_DETAIL_TYPE)
                .detail(serde_json::to_string(alert).unwrap_or_default())
                .build()
        });
        match self
            .client
            .put_events()
            .set_entries(Some(entries.collect()))
            .send()
            .await
        {
            // Entries answer in request order; one with an error code was not accepted.
            Ok(out) => {
                let answers = out.entries();
                (0..alerts.len())
                    .map(|i| match answers.get(i) {
                        Some(e) if e.error_code().is_none() => Ok(()),
                        Some(e) => Err(format!(
                            "{}: {}",
                            e.error_code().unwrap_or_default(),
                            e.error_message().unwrap_or_default()
                        )),
                        None => Err("no answer for the entry".to_string()),
                    })
                    .collect()
            }
            Err(e) => {
                let reason = aws_smithy_types::error::display::DisplayErrorContext(&e).to_string();
                vec![Err(reason); alerts.len()]
            }
        }
    }
}

#[cfg(feature = "eventbridge")]
impl AlertPublisher for EventBridgeAlerts {
    fn publish<'a>(&'a self, alerts: &'a [Alert]) -> BoxFuture<'a, Vec<Result<(), String>>> {
        Box::pin(async move {
            let mut answers = Vec::with_capacity(alerts.len());
            // PutEvents takes at most ten entries.
            for chunk in alerts.chunks(10) {
                answers.extend(self.put(chunk).await);
            }
            answers
        })
    }
}

/// A pipeline's rules with where their alerts go and where their markers are kept.
pub struct AlertSink<I> {
    pub(crate) rules: Rules<I>,
    publisher: Arc<dyn AlertPublisher>,
    markers: Location,
    pipeline: String,
}

impl<I: 'static> AlertSink<I> {
    /// Rules whose alerts go to `publisher`, with markers below `markers` (one folder per rule).
    pub fn new(
        pipeline: impl Into<String>,
        rules: Vec<super::Rule<I>>,
        publisher: Arc<dyn AlertPublisher>,
        markers: Location,
    ) -> Self {
        AlertSink {
            rules: Rules { rules },
            publisher,
            markers,
            pipeline: pipeline.into(),
        }
    }

    /// Refuses rules that cannot be used.
    pub(crate) fn check(&self) -> Result<(), String> {
        self.rules.check()
    }

    fn alert(&self, m: &Match, records: &[SourceRecord<'_>]) -> Alert {
        let rule = &self.rules.rules[m.rule];
        let key = rule
            .keys
            .iter()
            .zip(&m.keys)
            .map(|((column, _), value)| (column.clone(), value.clone().into()))
            .collect();
        let mut hashed = rule.name.clone();
        for value in &m.keys {
            hashed.push('\0');
            hashed.push_str(value);
        }
        hashed.push('\0');
        hashed.push_str(&m.window_start.to_string());
        let time = |ms: i64| {
            DateTime::<Utc>::from_timestamp_millis(ms)
                .unwrap_or_default()
                .to_rfc3339_opts(SecondsFormat::Millis, true)
        };
        let record = &records[m.record];
        Alert {
            id: format!("{:016x}", super::state::sketch_hash(hashed.as_bytes())),
            pipeline: self.pipeline.clone(),
            rule: rule.name.clone(),
            key,
            field: rule.field.clone(),
            condition: rule.condition,
            limit: rule.limit,
            consecutive: rule.consecutive,
            value: m.value,
            at: time(m.at_ms),
            window_start: time(m.window_start),
            window_end: time(m.window_start + rule.window_ms),
            stream: record.stream.to_string(),
            position: record.position.to_string(),
        }
    }

    fn marker(&self, alert: &Alert) -> String {
        let day = alert.window_start.get(..10).unwrap_or("unknown");
        let start = alert.window_start.replace([':', '.'], "");
        self.markers.key(&format!(
            "{}/dt={day}/{start}-{}.json",
            alert.rule, alert.id
        ))
    }

    /// Publishes the alerts of `matches` not sent before, then marks them sent. Returns how many
    /// were published.
    pub(crate) async fn deliver(
        &self,
        store: &dyn ObjectStore,
        matches: &[Match],
        records: &[SourceRecord<'_>],
    ) -> Result<usize, AlertError> {
        if matches.is_empty() {
            return Ok(0);
        }
        let alerts: Vec<(Alert, String)> = matches
            .iter()
            .map(|m| {
                let alert = self.alert(m, records);
                let marker = self.marker(&alert);
                (alert, marker)
            })
            .collect();
        let seen = futures::future::join_all(
            alerts
                .iter()
                .map(|(_, key)| store.head(&self.markers.bucket, key)),
        )
        .await;
        let mut fresh = Vec::new();
        for ((alert, key), seen) in alerts.into_iter().zip(seen) {
            match seen {
                Ok(Some(_)) => {}
                Ok(None) => fresh.push((alert, key)),
                Err(source) => return Err(AlertError::Marker { key, source }),
            }
        }
        let offered: Vec<Alert> = fresh.iter().map(|(a, _)| a.clone()).collect();
        let answers = self.publisher.publish(&offered).await;
        let mut refused = Vec::new();
        let mut marks = Vec::new();
        for ((alert, key), answer) in fresh.into_iter().zip(answers) {
            match answer {
                Ok(()) => marks.push((key, alert)),
                Err(reason) => refused.push(reason),
            }
        }
        let puts = marks.iter().map(|(key, alert)| {
            store.put(PutObject {
                bucket: self.markers.bucket.clone(),
                key: key.clone(),
                body: serde_json::to_vec(alert).unwrap_or_default(),
                content_type: "application/json",
            })
        });
        let put = futures::future::join_all(puts).await;
        for ((key, _), marked) in marks.iter().zip(put) {
            marked.map_err(|source| AlertError::Marker {
                key: key.clone(),
                source,
            })?;
        }
        let published = marks.len();
        if let Some(reason) = refused.first() {
            return Err(AlertError::Publish {
                failed: refused.len(),
                total: offered.len(),
                reason: reason.clone(),
            });
        }
        Ok(published)
    }
}
