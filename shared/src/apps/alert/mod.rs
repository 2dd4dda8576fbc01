//! Failure alerts: classify failure reports, build one [`Alert`] model, suppress duplicates,
//! publish to SNS with filterable attributes.

mod build;
mod classify;
mod dedupe;
mod model;
mod stored;

pub use build::AlertRules;
pub use classify::{deliveries, Delivery, Incoming};
pub use dedupe::DedupeError;
pub use model::{Alert, Link, Severity};

use crate::telemetry::metric;
pub(crate) use build::alert_for;
use build::{glue_alert, invocation_alert, stored_record_alert};
// For the fuzz targets (`testing::fuzz`).
#[cfg(feature = "testing")]
pub(crate) use classify::classify;
use dedupe::{Claim, S3Dedupe};
pub(crate) use stored::classify_stored;

use std::time::Duration;

use aws_sdk_sns::types::MessageAttributeValue;
use serde_json::{json, Value};

use crate::aws::glue::job_run_details;
use crate::aws::LazyClient;
use crate::config::{self, ConfigError};
use crate::pipeline::invocation::{self, UserLayer};
use crate::pipeline::{FunctionLayer, Handler};
use crate::s3event::ObjectRef;
use crate::telemetry::Metrics;

/// The largest on-failure record the alert reads (a batch of at most 6 MB, escaped once, and its
/// metadata); a larger object is alerted on unread.
pub const MAX_STORED_RECORD_BYTES: i64 = 32 * 1024 * 1024;

/// Configuration of the alert handler, read from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertConfig {
    /// The SNS topic alerts go to (`ALERT_TOPIC_ARN`).
    pub topic_arn: String,
    /// Pipeline name, alerting states and console region.
    pub rules: AlertRules,
    /// Bucket and prefix of dedupe markers; `None` turns suppression off.
    pub dedupe: Option<(String, String)>,
    /// How long a marker suppresses repeats of its alert (`DEDUPE_WINDOW_SECONDS`, default 1 h).
    pub dedupe_window: Duration,
    /// Whether Glue alerts are enriched with `GetJobRun` details (`ENRICH_GLUE`, default `true`).
    pub enrich_glue: bool,
    /// CloudWatch namespace of the metrics (`METRICS_NAMESPACE`, default `Runnel`).
    pub metrics_namespace: String,
}

/// A comma-separated list of states.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateList(pub Vec<String>);

impl std::str::FromStr for StateList {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let states: Vec<String> = s
            .split(',')
            .map(|x| x.trim().to_ascii_uppercase())
            .filter(|x| !x.is_empty())
            .collect();
        if states.is_empty() {
            return Err("no states listed".into());
        }
        Ok(StateList(states))
    }
}

impl AlertConfig {
    /// Reads `ALERT_TOPIC_ARN` (required), `PIPELINE_NAME`, `ALERT_STATES` (comma-separated, default
    /// `FAILED,TIMEOUT,STOPPED,ERROR,TIMED_OUT,ABORTED`; add `SUCCEEDED` to hear of successes),
    /// `DEDUPE_BUCKET` (suppression off when unset), `DEDUPE_PREFIX` (`alerts/dedupe`),
    /// `DEDUPE_WINDOW_SECONDS` (3600), `ENRICH_GLUE` (`true`), `METRICS_NAMESPACE` (`Runnel`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        config::load(lookup, |env| {
            let defaults = AlertRules::default();
            let topic_arn: String =
                env.required("ALERT_TOPIC_ARN", "the SNS topic ARN alerts go to");
            if !topic_arn.is_empty() && !topic_arn.starts_with("arn:") {
                env.problem(
                    "ALERT_TOPIC_ARN",
                    "an SNS topic ARN (arn:aws:sns:…)",
                    Some(topic_arn.clone()),
                    "not an ARN",
                );
            }
            let states: StateList = env.optional_or(
                "ALERT_STATES",
                StateList(defaults.states.clone()),
                "comma-separated states, e.g. FAILED,TIMEOUT",
            );
            let region: String =
                env.optional_or("AWS_REGION", defaults.region.clone(), "an AWS region");
            let bucket: Option<String> =
                env.optional("DEDUPE_BUCKET", "an S3 bucket for dedupe markers");
            let prefix: String =
                env.optional_or("DEDUPE_PREFIX", "alerts/dedupe".to_string(), "a key prefix");
            let window: u64 = env.optional_or("DEDUPE_WINDOW_SECONDS", 3600, "a number of seconds");
            AlertConfig {
                topic_arn,
                rules: AlertRules {
                    pipeline: env.optional_or(
                        "PIPELINE_NAME",
                        "runnel".to_string(),
                        "a pipeline name",
                    ),
                    states: states.0,
                    region,
                },
                dedupe: bucket.map(|b| (b, prefix)),
                dedupe_window: Duration::from_secs(window),
                enrich_glue: env.optional_or("ENRICH_GLUE", true, "true or false"),
                metrics_namespace: env.optional_or(
                    "METRICS_NAMESPACE",
                    "Runnel".to_string(),
                    "a CloudWatch namespace",
                ),
            }
        })
    }
}

/// Why an alert could not be delivered. Either makes the invocation (or its SQS message) fail,
/// so Lambda retries: an alert is never dropped silently.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// SNS did not take the message (or its attributes could not be built).
    #[error("publish to {topic_arn} failed: {message}")]
    Publish {
        /// The topic.
        topic_arn: String,
        /// The cause, with every source.
        message: String,
    },
    /// Whether the alert is a duplicate could not be decided.
    #[error(transparent)]
    Dedupe(#[from] DedupeError),
    /// A stored on-failure record could not be read for a reason that may pass (throttling, a
    /// server error, the network): retried, so the alert keeps the record's details.
    #[error("reading the on-failure record at {location} failed: {message}")]
    StoredRecord {
        /// `s3://bucket/key`.
        location: String,
        /// The cause, with every source.
        message: String,
    },
}

/// Why a stored record was not read.
enum Unread {
    /// It cannot be read as it is: alerted on unread.
    ForGood(String),
    /// It may be read on a retry.
    ForNow(String),
}

/// Counts of one invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertOutcome {
    /// Alerts published to SNS.
    pub published: usize,
    /// Alerts suppressed as duplicates within the window.
    pub suppressed: usize,
    /// Reports that make no alert (a state not alerted on).
    pub ignored: usize,
    /// Glue alerts sent without job run details because `GetJobRun` failed.
    pub enrichment_failures: usize,
    /// Stored on-failure records alerted on without their content (unreadable or not a record).
    pub unread_records: usize,
    /// Alerts whose publish failed.
    pub publish_failures: usize,
    /// SQS message ids whose alert failed (reported as batch item failures).
    pub failed_messages: Vec<String>,
    /// Whether the event came through SQS (the response is then a batch response).
    pub from_sqs: bool,
}

/// The alert handler's logic, with its clients.
pub struct AlertService {
    /// The configuration it was built with.
    pub config: AlertConfig,
    sns: aws_sdk_sns::Client,
    s3: aws_sdk_s3::Client,
    dedupe: Option<S3Dedupe>,
    glue: Option<LazyClient<aws_sdk_glue::Client>>,
}

impl AlertService {
    /// The service around its clients: `s3` reads the records S3 on-failure destinations store
    /// and holds dedupe markers (when configured), `glue` enriches Glue alerts (when
    /// `enrich_glue` is on; a client or one built on first use, [`Aws::glue_on_first_use`](crate::aws::Aws::glue_on_first_use)).
    pub fn new(
        config: AlertConfig,
        sns: aws_sdk_sns::Client,
        s3: aws_sdk_s3::Client,
        glue: Option<LazyClient<aws_sdk_glue::Client>>,
    ) -> Self {
        let dedupe = config.dedupe.as_ref().map(|(bucket, prefix)| {
            S3Dedupe::new(
                s3.clone(),
                bucket.clone(),
                prefix.clone(),
                config.dedupe_window,
            )
        });
        let glue = if config.enrich_glue { glue } else { None };
        AlertService {
            config,
            sns,
            s3,
            dedupe,
            glue,
        }
    }

    /// Handles one Lambda event of any accepted shape.
    pub async fn handle(&self, event: &Value) -> Result<AlertOutcome, AlertError> {
        let mut outcome = AlertOutcome::default();
        for delivery in deliveries(event) {
            let result = self.deliver(&delivery.event, &mut outcome).await;
            match (result, delivery.sqs_message_id) {
                (Ok(()), id) => outcome.from_sqs |= id.is_some(),
                (Err(e), Some(id)) => {
                    tracing::error!(error = %e, message_id = %id, "alert not delivered; message left for retry");
                    outcome.from_sqs = true;
                    outcome.failed_messages.push(id);
                }
                (Err(e), None) => return Err(e),
            }
        }
        Ok(outcome)
    }

    async fn build(
        &self,
        event: &Incoming,
        outcome: &mut AlertOutcome,
    ) -> Result<Option<Alert>, AlertError> {
        let rules = &self.config.rules;
        let (glue_event, stuck) = match event {
            Incoming::GlueJobStateChange(e) => (e, false),
            Incoming::GlueJobRunStatus(e) => (e, true),
            // Boxed: the S3 read's future nested in place is deep enough to overflow the
            // compiler's layout query in the binary.
            Incoming::StoredRecord(object) => {
                return Box::pin(self.stored(object, outcome)).await.map(Some)
            }
            other => return Ok(alert_for(rules, other)),
        };
        // Decided before GetJobRun: an ignored state costs no API call.
        if !stuck && !rules.alerts_on(&glue_event.state) {
            return Ok(None);
        }
        let details = match &self.glue {
            Some(glue) => job_run_details(glue.get(), &glue_event.job_name, &glue_event.job_run_id)
                .await
                .map_err(|e| crate::error::chain(&e)),
            None => Err("enrichment is off (ENRICH_GLUE=false)".to_string()),
        };
        if let Err(why) = &details {
            if self.glue.is_some() {
                outcome.enrichment_failures += 1;
                tracing::warn!(error = %why, job = %glue_event.job_name, "job run enrichment failed; alerting without it");
            }
        }
        Ok(glue_alert(
            rules,
            glue_event,
            stuck,
            details.as_ref().map_err(String::as_str),
        ))
    }

    /// The alert for an object an S3 on-failure destination stored: the record's own alert, with
    /// where it is kept. An object that cannot be read for good (gone, forbidden, too large, not
    /// a record) is alerted on all the same, naming it; a read that may succeed later is an error,
    /// so the delivery is retried (and ends in the dead-letter queue if it never does).
    async fn stored(
        &self,
        object: &ObjectRef,
        outcome: &mut AlertOutcome,
    ) -> Result<Alert, AlertError> {
        let rules = &self.config.rules;
        let location = object.uri();
        let why = match self.read_record(object).await {
            Ok(Incoming::Invocation(mut record)) => {
                record.stored_at = Some(location);
                return Ok(invocation_alert(rules, &record));
            }
            Ok(_) => "not a Lambda on-failure record".to_string(),
            Err(Unread::ForGood(why)) => why,
            Err(Unread::ForNow(message)) => {
                return Err(AlertError::StoredRecord { location, message })
            }
        };
        outcome.unread_records += 1;
        tracing::warn!(error = %why, location = %location, "stored on-failure record not read; alerting with its location");
        Ok(stored_record_alert(rules, object, &why))
    }

    /// Reads and classifies a stored record; the batch it carries is measured, never kept.
    async fn read_record(&self, object: &ObjectRef) -> Result<Incoming, Unread> {
        let out = self
            .s3
            .get_object()
            .bucket(&object.bucket)
            .key(&object.key)
            .set_version_id(object.version_id.clone())
            .send()
            .await
            .map_err(|e| {
                let why = format!("GetObject: {}", crate::error::chain(&e));
                // A client error (gone, forbidden) stays so; throttling, server errors and the
                // network may pass.
                match e.raw_response().map(|r| r.status().as_u16()) {
                    Some(status)
                        if (400..500).contains(&status) && ![408, 429].contains(&status) =>
                    {
                        Unread::ForGood(why)
                    }
                    _ => Unread::ForNow(why),
                }
            })?;
        let size = out.content_length().unwrap_or_default();
        if size > MAX_STORED_RECORD_BYTES {
            return Err(Unread::ForGood(format!(
                "{size} bytes, more than the {MAX_STORED_RECORD_BYTES} read"
            )));
        }
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| Unread::ForNow(format!("reading the object: {e}")))?
            .into_bytes();
        classify_stored(&body).map_err(|e| Unread::ForGood(format!("not JSON: {e}")))
    }

    async fn deliver(
        &self,
        event: &Incoming,
        outcome: &mut AlertOutcome,
    ) -> Result<(), AlertError> {
        let Some(alert) = self.build(event, outcome).await? else {
            outcome.ignored += 1;
            return Ok(());
        };
        let claim = match &self.dedupe {
            Some(d) => Some(d.claim(&alert, chrono::Utc::now()).await?),
            None => None,
        };
        if let Some(Claim::Duplicate { first_seen, .. }) = &claim {
            outcome.suppressed += 1;
            tracing::info!(fingerprint = %alert.fingerprint, first_seen = ?first_seen, "duplicate alert suppressed");
            return Ok(());
        }
        match self.publish(&alert).await {
            Ok(message_id) => {
                outcome.published += 1;
                tracing::info!(fingerprint = %alert.fingerprint, severity = %alert.severity, message_id = %message_id, summary = %alert.summary, "alert published");
                Ok(())
            }
            Err(e) => {
                outcome.publish_failures += 1;
                if let (Some(d), Some(Claim::New { key })) = (&self.dedupe, &claim) {
                    if let Err(release) = d.release(key).await {
                        tracing::error!(error = %release, "could not release the dedupe marker; the retry may be suppressed");
                    }
                }
                Err(e)
            }
        }
    }

    async fn publish(&self, alert: &Alert) -> Result<String, AlertError> {
        let message = alert.sns_message();
        let mut request = self
            .sns
            .publish()
            .topic_arn(&self.config.topic_arn)
            .subject(message.subject)
            .message(message.body);
        for (name, value) in message.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| AlertError::Publish {
                    topic_arn: self.config.topic_arn.clone(),
                    message: e.to_string(),
                })?;
            request = request.message_attributes(name, attribute);
        }
        let out = request.send().await.map_err(|e| AlertError::Publish {
            topic_arn: self.config.topic_arn.clone(),
            message: crate::error::chain(&e),
        })?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }
}

/// The Lambda response for an outcome: a batch response for SQS, a summary otherwise.
pub fn response(outcome: &AlertOutcome) -> Value {
    if outcome.from_sqs {
        json!({"batchItemFailures": outcome.failed_messages.iter().map(|id| json!({"itemIdentifier": id})).collect::<Vec<_>>()})
    } else {
        json!({
            "published": outcome.published,
            "suppressed": outcome.suppressed,
            "ignored": outcome.ignored,
        })
    }
}

/// Records an invocation's metrics.
fn record_metrics(metrics: &mut Metrics, outcome: &AlertOutcome) {
    metrics.count(metric::ALERTS_PUBLISHED, outcome.published as u64);
    metrics.count(metric::ALERTS_SUPPRESSED, outcome.suppressed as u64);
    metrics.count(metric::ALERTS_IGNORED, outcome.ignored as u64);
    metrics.count(
        metric::ENRICHMENT_FAILURES,
        outcome.enrichment_failures as u64,
    );
    metrics.count(metric::UNREAD_RECORDS, outcome.unread_records as u64);
    metrics.count(metric::PUBLISH_FAILURES, outcome.publish_failures as u64);
}

/// The alert service as a Lambda function: the invocation layer (logs, metrics), the user's
/// layers in the order given, then the [`AlertService`]. `AlertFunction::new("failure-alert")
/// .run()` is the whole `main` of `failure-alert`.
pub struct AlertFunction {
    service: String,
    layers: Vec<UserLayer<Value, Value>>,
}

impl AlertFunction {
    /// The function named `service` (the `service` metric dimension).
    pub fn new(service: impl Into<String>) -> Self {
        AlertFunction {
            service: service.into(),
            layers: Vec::new(),
        }
    }

    /// Wraps the service in `layer`, inside the invocation layer's log context and metrics (see
    /// [`crate::pipeline::StreamPipeline::layer`]).
    pub fn layer(mut self, layer: impl FunctionLayer<Value, Value>) -> Self {
        self.layers.push(layer.boxed());
        self
    }

    /// The handler [`AlertFunction::run`] serves, around `alerts` (built by hand, or in tests).
    pub fn handler(self, alerts: AlertService) -> Handler<Value, Value> {
        let metrics = Metrics::new(alerts.config.metrics_namespace.clone())
            .dimension("service", self.service)
            .dimension("pipeline", alerts.config.rules.pipeline.clone());
        invocation::assemble(alerts, metrics, self.layers)
    }

    /// Runs as a Lambda function: configuration from the environment, clients built once.
    pub async fn run(self) -> Result<(), lambda_runtime::Error> {
        let (config, aws) = invocation::start(
            &self.service,
            || AlertConfig::from_lookup(|n| std::env::var(n).ok()),
            |_| true,
        )
        .await?;
        let aws = aws.expect("asked for");
        if config.dedupe.is_none() {
            tracing::warn!("DEDUPE_BUCKET is not set: duplicate deliveries will alert twice");
        }
        let alerts = AlertService::new(config, aws.sns(), aws.s3(), Some(aws.glue_on_first_use()));
        invocation::serve(self.handler(alerts)).await
    }
}

impl crate::pipeline::Function for AlertService {
    type Event = Value;
    type Response = Value;

    /// One failure report (or a queued batch of them); a failed publish fails the invocation.
    async fn call(
        &self,
        event: lambda_runtime::LambdaEvent<Value>,
    ) -> Result<Value, lambda_runtime::Error> {
        let result = self.handle(&event.payload).await;
        crate::telemetry::record(|m| match &result {
            Ok(outcome) => record_metrics(m, outcome),
            Err(_) => m.count(metric::PUBLISH_FAILURES, 1),
        });
        result
            .map(|o| response(&o))
            .map_err(lambda_runtime::Error::from)
    }
}
