//! The ingest pipeline as a Lambda function: builder, runner, per-invocation telemetry.

use crate::telemetry::metric;
use std::sync::Arc;

use serde::Deserialize as _;
use serde_json::Value;

use super::config::IngestConfig;
use super::hook::{HookConfig, HookReport, IngestHook};
use super::manifest::ObjectOutcome;
use super::object::{Ingest, IngestError};
use crate::aws::Aws;
use crate::config::Env;
use crate::engine::redrive::{RedriveRequest, REDRIVE_KEY};
use crate::pipeline::invocation::{self, UserLayer};
use crate::pipeline::parts::{sink_setters, SinkSettings};
use crate::pipeline::{BuildError, Function, FunctionLayer, Handler};
use crate::s3event::ObjectRef;
use crate::sink::{Daily, ObjectStore, S3FromEnv, S3Store};
use crate::telemetry::{self, Metrics, Unit};
use crate::transform::Transform;
use lambda_runtime::LambdaEvent;

type BuildHook = Box<dyn FnOnce(&IngestConfig, &Aws) -> Arc<dyn IngestHook>>;
type ReadHook = Box<dyn FnOnce(&mut Env<'_>) -> Option<BuildHook>>;

/// An object-ingest pipeline: S3 object events in, rows through the transform, outputs, manifests
/// and quarantine out. Made by `Pipeline::new(name).source(S3Objects).transform(t)`.
pub struct IngestPipeline<T: Transform> {
    name: String,
    transform: T,
    parts: SinkSettings<T::Output>,
    config: Option<IngestConfig>,
    hook: Option<Arc<dyn IngestHook>>,
    read_hook: Option<ReadHook>,
    layers: Vec<UserLayer<Value, Value>>,
}

impl<T: Transform> IngestPipeline<T> {
    pub(crate) fn new(name: String, transform: T) -> Self {
        IngestPipeline {
            name,
            transform,
            parts: SinkSettings::new(),
            config: None,
            hook: None,
            read_hook: None,
            layers: Vec::new(),
        }
    }

    sink_setters!("Daily");

    /// The configuration, instead of reading it from the environment.
    pub fn config(mut self, config: IngestConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// A hook built already.
    pub fn hook(mut self, hook: Arc<dyn IngestHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    /// A hook whose settings `read` takes from the environment in the same pass as the
    /// pipeline's own (every problem reported at once); `None` from `read` means no hook. Used
    /// by [`IngestPipeline::run`].
    pub fn hook_from_env<H: HookConfig + 'static>(
        mut self,
        read: impl FnOnce(&mut Env<'_>) -> Option<H> + 'static,
    ) -> Self {
        self.read_hook = Some(Box::new(move |env| {
            read(env).map(|h| Box::new(move |c: &IngestConfig, a: &Aws| h.build(c, a)) as BuildHook)
        }));
        self
    }

    fn runner(self, store: Arc<dyn ObjectStore>, config: IngestConfig) -> IngestRunner<T> {
        let metrics = Metrics::new(config.output.metrics_namespace.clone())
            .dimension("service", self.name.clone())
            .dimension("pipeline", config.output.pipeline.clone());
        let sink = self.parts.into_sink(store, Daily);
        let ingest = Ingest::new(config, sink, self.transform, self.hook);
        IngestRunner {
            ingest,
            metrics,
            layers: self.layers,
        }
    }

    /// The runner without the Lambda runtime (tests, benchmarks). Writes where `run` does: to
    /// S3 through a client built from the environment at the first write, unless a store was
    /// given; reads the configuration from the environment unless one was given. Hooks come
    /// from [`IngestPipeline::hook`] only.
    pub fn build(mut self) -> Result<IngestRunner<T>, BuildError> {
        let store = self.parts.store.take().unwrap_or_else(S3FromEnv::shared);
        let config = match self.config.take() {
            Some(c) => c,
            None => IngestConfig::from_lookup(&self.name, |n| std::env::var(n).ok())?,
        };
        Ok(self.runner(store, config))
    }

    /// Wraps the function in `layer`, inside the invocation layer's log context and metrics;
    /// layers run in the order given (see [`crate::pipeline::StreamPipeline::layer`]).
    pub fn layer(mut self, layer: impl FunctionLayer<Value, Value>) -> Self {
        self.layers.push(layer.boxed());
        self
    }

    /// Runs the pipeline as a Lambda function: the whole `main` of a handler.
    pub async fn run(mut self) -> Result<(), lambda_runtime::Error> {
        let name = self.name.clone();
        let given = self.config.take();
        let read_hook = self.read_hook.take();
        let ((config, build_hook), aws) = invocation::start(
            &self.name,
            || {
                crate::config::from_process_env(|env| {
                    let config = given.unwrap_or_else(|| IngestConfig::read(env, &name));
                    (config, read_hook.and_then(|read| read(env)))
                })
            },
            |_| true,
        )
        .await?;
        let aws = aws.expect("asked for");
        if let Some(build) = build_hook {
            self.hook = Some(build(&config, &aws));
        }
        let store = match self.parts.store.take() {
            Some(store) => store,
            None => Arc::new(S3Store::new(aws.s3())),
        };
        invocation::serve(self.runner(store, config).into_handler()).await
    }
}

/// A built ingest pipeline: handles one event at a time.
pub struct IngestRunner<T: Transform> {
    ingest: Ingest<T>,
    /// The invocation's metrics document: namespace and dimensions.
    metrics: Metrics,
    layers: Vec<UserLayer<Value, Value>>,
}

impl<T: Transform> IngestRunner<T> {
    /// The ingest behind the runner.
    pub fn ingest(&self) -> &Ingest<T> {
        &self.ingest
    }

    /// The ingest, without the runner's telemetry.
    pub fn into_ingest(self) -> Ingest<T> {
        self.ingest
    }

    /// Handles one event, recording metrics into `metrics`.
    pub async fn handle(&self, metrics: &mut Metrics, event: &Value) -> Result<Value, HandleError> {
        handle(&self.ingest, metrics, event).await
    }

    /// The function with its layers, as [`IngestPipeline::run`] serves it.
    pub fn into_handler(mut self) -> Handler<Value, Value> {
        let layers = std::mem::take(&mut self.layers);
        let metrics = self.metrics.clone();
        invocation::assemble(self, metrics, layers)
    }
}

impl<T: Transform> Function for IngestRunner<T> {
    type Event = Value;
    type Response = Value;

    /// Every object the event names; a failure fails the invocation.
    async fn call(&self, event: LambdaEvent<Value>) -> Result<Value, lambda_runtime::Error> {
        let payload = event.payload;
        telemetry::correlate(Some(describe(&payload)));
        let result = telemetry::recording(async |metrics: &mut Metrics| {
            handle(&self.ingest, metrics, &payload).await
        })
        .await;
        if let Err(e) = &result {
            telemetry::record(|metrics| metrics.count(metric::INGEST_FAILURES, 1));
            tracing::error!(error = %crate::error::chain(e), "ingest failed; the invocation fails so Lambda retries");
        }
        Ok(result?)
    }
}

/// Records one object's metrics.
pub fn record_metrics(metrics: &mut Metrics, outcome: &ObjectOutcome, report: Option<&HookReport>) {
    match outcome {
        ObjectOutcome::Ingested(m) => {
            metrics.count(metric::OBJECTS_INGESTED, 1);
            metrics.count(metric::ROWS_IN, m.rows_in);
            metrics.count(metric::ROWS_OUT, m.rows_out);
            metrics.count(metric::ROWS_QUARANTINED, m.rows_quarantined);
            metrics.add(metric::BYTES_IN, Unit::Bytes, m.size as f64);
            metrics.add(
                metric::INGEST_LATENCY,
                Unit::Milliseconds,
                m.duration_ms as f64,
            );
        }
        ObjectOutcome::Quarantined(_) => metrics.count(metric::OBJECTS_QUARANTINED, 1),
        ObjectOutcome::Duplicate { .. } => metrics.count(metric::DUPLICATE_DELIVERIES, 1),
        ObjectOutcome::Missing => metrics.count(metric::OBJECTS_MISSING, 1),
        ObjectOutcome::Marker => metrics.count(metric::MARKERS_SEEN, 1),
    }
    if let Some(r) = report {
        metrics.count(r.metric, 1);
    }
}

/// Why an invocation failed.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// The event names no objects in a shape ingest reads.
    #[error(transparent)]
    Event(#[from] crate::s3event::S3EventError),
    /// An object must be retried.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// A queued batch cannot be answered per message.
    #[error("{0}")]
    Batch(String),
    /// The event's `runnelRedrive` is not a redrive request.
    #[error("not a redrive request")]
    Redrive(#[source] serde_json::Error),
}

/// Handles one event: every object it names, in order, or a redrive request (an object with
/// `runnelRedrive`: see [`Ingest::redrive`]). The first failure fails the invocation
/// (Lambda retries; objects already ingested are recognised as duplicates then).
///
/// An SQS event (S3 → SQS, or S3 → SNS → SQS) is answered per message instead: a message whose
/// object failed, or whose body names no object, is reported in `batchItemFailures` and comes back
/// (after `maxReceiveCount` receives, to the queue's dead-letter queue); the others are deleted.
pub async fn handle<T: Transform>(
    ingest: &Ingest<T>,
    metrics: &mut Metrics,
    event: &Value,
) -> Result<Value, HandleError> {
    if let Some(request) = event.get(REDRIVE_KEY) {
        let request = RedriveRequest::deserialize(request).map_err(HandleError::Redrive)?;
        let answer = ingest.redrive(&request).await;
        metrics.count(metric::ROWS_REDRIVEN, answer.landed.len() as u64);
        tracing::info!(
            entries = request.entries.len(),
            landed = answer.landed.len(),
            still_bad = answer.still_bad.len(),
            failed = answer.failed.len(),
            "redrive processed"
        );
        return Ok(serde_json::to_value(answer).expect("an answer serialises"));
    }
    if let Some(messages) = crate::s3event::queued_objects(event) {
        return handle_queued(ingest, metrics, messages).await;
    }
    let objects = crate::s3event::objects(event)?;
    let mut results = Vec::new();
    for obj in &objects {
        results.push(ingest_object(ingest, metrics, obj).await?);
    }
    Ok(serde_json::json!({"objects": results}))
}

async fn handle_queued<T: Transform>(
    ingest: &Ingest<T>,
    metrics: &mut Metrics,
    messages: Vec<crate::s3event::QueuedMessage>,
) -> Result<Value, HandleError> {
    let mut failures = Vec::new();
    for m in messages {
        let failed = match &m.objects {
            Err(e) => {
                tracing::error!(message_id = %m.message_id, error = %e, "message names no object; reported, so the queue keeps it (dead-letter queue after maxReceiveCount)");
                true
            }
            Ok(objects) => {
                let mut failed = false;
                for obj in objects {
                    if let Err(e) = ingest_object(ingest, metrics, obj).await {
                        tracing::error!(message_id = %m.message_id, error = %crate::error::chain(&e), "ingest failed; the message is reported for retry");
                        metrics.count(metric::INGEST_FAILURES, 1);
                        failed = true;
                        break;
                    }
                }
                failed
            }
        };
        if failed {
            if m.message_id.is_empty() {
                return Err(HandleError::Batch(
                    "a failed message has no messageId; the whole batch is retried".into(),
                ));
            }
            failures.push(serde_json::json!({"itemIdentifier": m.message_id}));
        }
    }
    Ok(serde_json::json!({"batchItemFailures": failures}))
}

/// Ingests one object, records its metrics and logs it; returns its summary.
async fn ingest_object<T: Transform>(
    ingest: &Ingest<T>,
    metrics: &mut Metrics,
    obj: &ObjectRef,
) -> Result<Value, IngestError> {
    let (outcome, report) = ingest.ingest(obj).await?;
    record_metrics(metrics, &outcome, report.as_ref());
    let mut summary = match &outcome {
        ObjectOutcome::Ingested(m) | ObjectOutcome::Quarantined(m) => {
            tracing::info!(source = %obj.uri(), status = %m.status, rows_in = m.rows_in, rows_out = m.rows_out, rows_quarantined = m.rows_quarantined, outputs = m.outputs.len(), duration_ms = m.duration_ms, "object processed");
            serde_json::json!({"key": obj.key, "status": m.status, "rows_in": m.rows_in, "rows_out": m.rows_out, "rows_quarantined": m.rows_quarantined})
        }
        ObjectOutcome::Duplicate { etag } => {
            serde_json::json!({"key": obj.key, "status": "duplicate", "etag": etag})
        }
        ObjectOutcome::Missing => serde_json::json!({"key": obj.key, "status": "missing"}),
        ObjectOutcome::Marker => serde_json::json!({"key": obj.key, "status": "marker"}),
    };
    if let Some(r) = report {
        summary[r.hook] = r.detail;
    }
    Ok(summary)
}

/// A loose view of an event for logs: the objects it names, or the error.
pub fn describe(event: &Value) -> String {
    if let Some(entries) = event.get(REDRIVE_KEY).and_then(|r| r.get("entries")) {
        let n = entries.as_array().map_or(0, Vec::len);
        return format!("a redrive of {n} quarantined row(s)");
    }
    if let Some(messages) = crate::s3event::queued_objects(event) {
        return format!("{} queued message(s)", messages.len());
    }
    match crate::s3event::objects(event) {
        Ok(objs) => objs
            .iter()
            .map(crate::s3event::ObjectRef::uri)
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => e.to_string(),
    }
}
