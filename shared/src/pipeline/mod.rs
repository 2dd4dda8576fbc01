//! The pipeline: one builder that owns the Lambda loop, telemetry, configuration and response for
//! any batch source.
//!
//! ```no_run
//! # use runnel::transform::{Outputs, RecordContext, Transform, TransformError};
//! # struct Clicks;
//! # impl Transform for Clicks {
//! #     type Input = serde_json::Value;
//! #     type Output = serde_json::Value;
//! #     fn apply(&self, v: serde_json::Value, _: &RecordContext<'_>, out: &mut Outputs<serde_json::Value>)
//! #         -> Result<(), TransformError> { out.push(v); Ok(()) }
//! # }
//! use runnel::pipeline::Pipeline;
//! use runnel::sink::Daily;
//! use runnel::source::Kinesis;
//!
//! # async fn main_() -> Result<(), lambda_runtime::Error> {
//! Pipeline::new("clicks")
//!     .source(Kinesis)
//!     .transform(Clicks)
//!     .partitioner(Daily) // hourly by default; gzip NDJSON on S3 by default
//!     .run()
//!     .await
//! # }
//! ```
//!
//! [`StreamPipeline::run`] sets up JSON logging, reads the configuration ([`StreamConfig`], all problems
//! at once, before the first event), builds the AWS clients without a network call, and serves
//! events: per invocation it logs with the request and correlation ids, processes the batch, emits
//! EMF metrics and answers with the source's response. [`StreamPipeline::build`] gives the same
//! [`Runner`] without the Lambda runtime, for tests and benchmarks.

mod config;
pub mod ingest;
pub(crate) mod invocation;
mod parts;

pub use crate::engine::redrive;
// The engine on its own, for the crate's property tests against re-delivery models.
#[doc(hidden)]
pub use crate::engine::{Processor, ProcessorConfig};
pub use config::{OutputConfig, StreamConfig};
pub use invocation::{Function, FunctionLayer, Handler};

use crate::telemetry::metric;
use std::sync::Arc;

use chrono::Utc;
use lambda_runtime::LambdaEvent;

use crate::config::ConfigError;
use crate::sink::{Hourly, Location, ObjectStore, S3FromEnv, S3Store};
use crate::source::{
    BatchOutcome, BatchSource, BatchStats, FailureMode, OutputRoute, PipelineSource, Redelivery,
    ResponseError, S3Objects, SourceRecord,
};
use crate::telemetry::{self, Metrics, Unit};
use crate::transform::Transform;
use crate::window::{Aggregation, AggregationError, AlertPublisher, AlertSink, PaneSink, Rule};
use invocation::UserLayer;
use parts::SinkSettings;

/// A stream pipeline's handler: a batch of the source's or a redrive request in, its answer out.
pub type StreamHandler<S> = Handler<
    redrive::StreamEvent<<S as BatchSource>::Event>,
    redrive::StreamAnswer<<S as BatchSource>::Response>,
>;

type StreamLayers<S> = Vec<
    UserLayer<
        redrive::StreamEvent<<S as BatchSource>::Event>,
        redrive::StreamAnswer<<S as BatchSource>::Response>,
    >,
>;

/// A pipeline being assembled: a name, then a source, then a transform.
pub struct Pipeline<S = ()> {
    name: String,
    source: S,
}

impl Pipeline {
    /// Starts a pipeline. `name` is the service name in logs and metrics and the default output
    /// prefix.
    pub fn new(name: impl Into<String>) -> Self {
        Pipeline {
            name: name.into(),
            source: (),
        }
    }

    /// The source whose events the function receives: a batch source ([`crate::source::Kinesis`],
    /// [`crate::source::Sqs`], …) or object ingest ([`crate::source::S3Objects`]).
    pub fn source<S: PipelineSource>(self, source: S) -> Pipeline<S> {
        Pipeline {
            name: self.name,
            source,
        }
    }
}

impl<S: BatchSource> Pipeline<S> {
    /// The user's transform; the sink parts and configuration follow.
    pub fn transform<T: Transform>(self, transform: T) -> StreamPipeline<S, T> {
        StreamPipeline {
            name: self.name,
            source: self.source,
            transform,
            parts: SinkSettings::new(),
            config: None,
            aggregation: None,
            rules: Vec::new(),
            publisher: None,
            layers: Vec::new(),
        }
    }
}

impl Pipeline<S3Objects> {
    /// The user's transform for every row of the objects; the sink parts and configuration
    /// follow.
    pub fn transform<T: Transform>(self, transform: T) -> ingest::IngestPipeline<T> {
        ingest::IngestPipeline::new(self.name, transform)
    }
}

/// A stream pipeline with its source and transform; sink parts and configuration are optional.
pub struct StreamPipeline<S: BatchSource, T: Transform> {
    name: String,
    source: S,
    transform: T,
    parts: SinkSettings<T::Output>,
    config: Option<StreamConfig>,
    aggregation: Option<Aggregation<T::Output>>,
    rules: Vec<Rule<T::Output>>,
    publisher: Option<Arc<dyn AlertPublisher>>,
    layers: StreamLayers<S>,
}

impl<S: BatchSource, T: Transform> StreamPipeline<S, T> {
    parts::sink_setters!("Hourly");

    /// The configuration, instead of reading it from the environment.
    pub fn config(mut self, config: StreamConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Also aggregates the curated outputs in windows ([`crate::window`]): every run writes
    /// its pane under `AGGREGATES_PREFIX/<aggregation name>/`, beside its data.
    pub fn aggregate(mut self, aggregation: Aggregation<T::Output>) -> Self {
        self.aggregation = Some(aggregation);
        self
    }

    /// Also checks `rule` on every output that lands, publishing an alert when it matches
    /// ([`crate::window::Rule`]); several calls add several rules.
    pub fn rule(mut self, rule: Rule<T::Output>) -> Self {
        self.rules.push(rule);
        self
    }

    /// Wraps the function in `layer` (a [`tower::Layer`](lambda_runtime::tower::Layer)), inside
    /// the invocation layer's log context and metrics; layers run in the order given. The
    /// layer sees the whole event: a batch of the source's, or a redrive request.
    pub fn layer(
        mut self,
        layer: impl FunctionLayer<redrive::StreamEvent<S::Event>, redrive::StreamAnswer<S::Response>>,
    ) -> Self {
        self.layers.push(layer.boxed());
        self
    }

    /// Where the rules' alerts go, instead of EventBridge's `ALERT_BUS` (which needs runnel's
    /// `eventbridge` feature).
    pub fn alerts(mut self, publisher: impl AlertPublisher + 'static) -> Self {
        self.publisher = Some(Arc::new(publisher));
        self
    }

    /// The rules with their publisher, when there are rules.
    fn alert_sink(
        &mut self,
        config: &StreamConfig,
    ) -> Result<Option<AlertSink<T::Output>>, BuildError> {
        if self.rules.is_empty() {
            return Ok(None);
        }
        if self.source.output_route() == OutputRoute::Response {
            return Err(BuildError::Rule(format!(
                "the {} source hands its output back to the caller: check rules in a pipeline \
                 on the delivery's destination",
                self.source.name()
            )));
        }
        let publisher = self.publisher.clone().ok_or_else(|| {
            BuildError::Rule(
                "rules need a publisher: call .alerts(..), or .run() with runnel's eventbridge \
                 feature"
                    .into(),
            )
        })?;
        let sink = AlertSink::new(
            config.output.pipeline.clone(),
            std::mem::take(&mut self.rules),
            publisher,
            config.alert_markers.clone(),
        );
        sink.check().map_err(BuildError::Rule)?;
        Ok(Some(sink))
    }

    fn runner(
        mut self,
        store: Arc<dyn ObjectStore>,
        config: StreamConfig,
    ) -> Result<Runner<S, T>, BuildError> {
        let alerts = self.alert_sink(&config)?;
        if config.mode == Some(FailureMode::PerGroup)
            && self.source.redelivery() != Redelivery::PerRecord
        {
            return Err(BuildError::FailureMode(format!(
                "BATCH_MODE=per-group needs a source that re-delivers records on their own (SQS); \
                 {} resumes from the lowest reported record: use ordered",
                self.source.name()
            )));
        }
        let panes = match self.aggregation {
            Some(aggregation) => {
                aggregation.check()?;
                if self.source.output_route() == OutputRoute::Response {
                    return Err(BuildError::FailureMode(format!(
                        "the {} source hands its output back to the caller, so no pane could be \
                         written beside it: aggregate in a pipeline on the delivery's destination",
                        self.source.name()
                    )));
                }
                let location = Location::new(
                    config.aggregates.bucket.clone(),
                    config.aggregates.key(aggregation.name()),
                );
                let panes = PaneSink::new(aggregation, location);
                Some(match self.source.windowed() {
                    true => panes.in_window_state(crate::window::tumbling::STATE_LIMIT),
                    false => panes,
                })
            }
            None if self.source.windowed() => {
                return Err(BuildError::FailureMode(format!(
                    "a {} mapping with tumbling windows keeps an aggregate in the window's \
                     state: give the pipeline one with .aggregate(..)",
                    self.source.name()
                )))
            }
            None => None,
        };
        let sink = self.parts.into_sink(store, Hourly);
        let mut processor_config = config.processor_config(self.source.default_mode());
        processor_config.redelivery = self.source.redelivery();
        processor_config.output_route = self.source.output_route();
        let metrics = Metrics::new(config.output.metrics_namespace.clone())
            .dimension("service", self.name.clone())
            .dimension("pipeline", config.output.pipeline.clone());
        let mut processor = Processor::new(self.transform, sink, processor_config);
        if let Some(panes) = panes {
            processor = processor.with_panes(panes);
        }
        if let Some(alerts) = alerts {
            processor = processor.with_alerts(alerts);
        }
        Ok(Runner {
            name: self.name,
            processor,
            source: self.source,
            configured_mode: config.mode,
            metrics,
            layers: self.layers,
        })
    }

    /// Rules without a publisher of their own publish to EventBridge.
    fn needs_eventbridge(&self) -> bool {
        cfg!(feature = "eventbridge") && !self.rules.is_empty() && self.publisher.is_none()
    }

    /// The runner without the Lambda runtime (tests, benchmarks). Writes where `run` does: to
    /// S3 through a client built from the environment at the first write, unless a store was
    /// given ([`StreamPipeline::store`], a `MemoryStore` in tests); reads the configuration from
    /// the environment unless one was given.
    pub fn build(mut self) -> Result<Runner<S, T>, BuildError> {
        let store = self.parts.store.take().unwrap_or_else(S3FromEnv::shared);
        let config = match self.config.take() {
            Some(c) => c,
            None => StreamConfig::from_env(&self.name)?,
        };
        self.runner(store, config)
    }

    /// Runs the pipeline as a Lambda function: the whole `main` of a handler.
    pub async fn run(mut self) -> Result<(), lambda_runtime::Error> {
        let given = self.config.take();
        let name = self.name.clone();
        let needs_aws = self.parts.store.is_none() || self.needs_eventbridge();
        let (config, aws) = invocation::start(
            &self.name,
            || given.map_or_else(|| StreamConfig::from_env(&name), Ok),
            |_| needs_aws,
        )
        .await?;
        tracing::debug!(?config, "configuration loaded");
        let store = match (self.parts.store.take(), &aws) {
            (Some(store), _) => store,
            (None, aws) => Arc::new(S3Store::new(aws.as_ref().expect("loaded above").s3())),
        };
        #[cfg(feature = "eventbridge")]
        if let (true, Some(aws)) = (self.needs_eventbridge(), &aws) {
            let bus = config.alert_bus.clone();
            self = self.alerts(crate::window::EventBridgeAlerts::new(
                aws.eventbridge(),
                bus,
            ));
        }
        let runner = self
            .runner(store, config)
            .inspect_err(|e| tracing::error!(error = %e, "cannot start"))?;
        invocation::serve(runner.into_handler()).await
    }
}

/// Why a pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The configured mode does not fit the source.
    #[error("{0}")]
    FailureMode(String),
    /// The aggregation cannot be used.
    #[error(transparent)]
    Aggregation(#[from] AggregationError),
    /// The rules cannot be used.
    #[error("{0}")]
    Rule(String),
}

/// A built pipeline: handles one event at a time.
pub struct Runner<S: BatchSource, T: Transform> {
    name: String,
    source: S,
    processor: Processor<T>,
    /// `BATCH_MODE`, if set; the source picks each batch's mode from it.
    configured_mode: Option<FailureMode>,
    /// The invocation's metrics document: namespace and dimensions.
    metrics: Metrics,
    layers: StreamLayers<S>,
}

impl<S: BatchSource, T: Transform> Runner<S, T> {
    /// Processes one event and builds the response, without telemetry.
    pub async fn handle(
        &self,
        event: &S::Event,
    ) -> (Result<S::Response, ResponseError>, BatchOutcome) {
        let records = self.source.records(event);
        match self.process(event, &records).await {
            Ok(outcome) => (self.source.response(event, &outcome), outcome),
            Err(e) => (Err(e), BatchOutcome::default()),
        }
    }

    /// Checks the batch, then processes it in the mode the source picks for it.
    async fn process(
        &self,
        event: &S::Event,
        records: &[SourceRecord<'_>],
    ) -> Result<BatchOutcome, ResponseError> {
        self.source.check(records)?;
        if let Some(window) = self.source.window(event) {
            return self.processor.process_window(window, records).await;
        }
        let mode = self.source.mode(records, self.configured_mode);
        Ok(self.processor.process_in(records, mode).await)
    }

    /// Processes quarantine entries again through the transform (see [`redrive`]). Refused for a
    /// source whose output goes back in its response (Firehose): there is no response to carry
    /// it.
    pub async fn redrive(
        &self,
        request: &redrive::RedriveRequest,
    ) -> Result<redrive::RedriveAnswer, ResponseError> {
        if self.source.output_route() == OutputRoute::Response {
            return Err(ResponseError(format!(
                "the {} source hands its output back to the caller: redrive its quarantine \
                 through the delivery stream",
                self.source.name()
            )));
        }
        let prepared = redrive::prepare(request);
        let (records, places) = redrive::records(request, &prepared);
        let (outcome, reasons) = self.processor.redrive(&records, &places).await;
        drop(records);
        Ok(redrive::answer(request, prepared, &outcome, reasons))
    }

    /// The function with its layers, as [`run`](StreamPipeline::run) serves it: the invocation
    /// layer (log context, metrics flushed per invocation), the user's layers, the runner.
    pub fn into_handler(mut self) -> StreamHandler<S> {
        let layers = std::mem::take(&mut self.layers);
        let metrics = self.metrics.clone();
        invocation::assemble(self, metrics, layers)
    }

    /// Handles one batch: processing, metrics, a summary log line, response.
    async fn invoke_batch(&self, event: S::Event) -> Result<S::Response, lambda_runtime::Error> {
        let started = std::time::Instant::now();
        let records = self.source.records(&event);
        telemetry::correlate(self.source.correlation_id(&records));
        let lag = self.source.lag_ms(&records, Utc::now());
        let outcome = self
            .process(&event, &records)
            .await
            .inspect_err(|e| tracing::error!(error = %e, "batch refused"))?;
        drop(records);
        let response = self.source.response(&event, &outcome);
        let latency = started.elapsed().as_secs_f64() * 1000.0;
        telemetry::record(|metrics| {
            record_metrics(
                metrics,
                &outcome.stats,
                latency,
                lag.map(|l| (self.source.lag_metric(), l)),
            )
        });
        log_outcome(&self.name, &outcome, latency);
        Ok(response?)
    }
}

impl<S: BatchSource, T: Transform> Function for Runner<S, T> {
    type Event = redrive::StreamEvent<S::Event>;
    type Response = redrive::StreamAnswer<S::Response>;

    /// A batch of the source's, or a redrive request.
    async fn call(
        &self,
        event: LambdaEvent<Self::Event>,
    ) -> Result<Self::Response, lambda_runtime::Error> {
        match event.payload {
            redrive::StreamEvent::Batch(batch) => self
                .invoke_batch(batch)
                .await
                .map(redrive::StreamAnswer::Batch),
            redrive::StreamEvent::Redrive(request) => {
                let answer = self.redrive(&request).await;
                tracing::info!(
                    entries = request.entries.len(),
                    landed = answer.as_ref().map_or(0, |a| a.landed.len()),
                    "redrive"
                );
                Ok(redrive::StreamAnswer::Redrive(answer?))
            }
        }
    }
}

/// Records a batch's metrics: counts, bytes, latency and the source's lag.
fn record_metrics(
    metrics: &mut Metrics,
    stats: &BatchStats,
    latency_ms: f64,
    lag: Option<(&str, i64)>,
) {
    metrics.count(metric::RECORDS_IN, stats.records_in as u64);
    metrics.count(metric::DOCUMENTS_WRITTEN, stats.documents_written as u64);
    metrics.count(
        metric::DOCUMENTS_QUARANTINED,
        stats.documents_quarantined as u64,
    );
    metrics.count(metric::RECORDS_FAILED, stats.records_failed as u64);
    metrics.count(metric::OBJECTS_WRITTEN, stats.objects_written as u64);
    if stats.alerts_published > 0 {
        metrics.count(metric::ALERTS_PUBLISHED, stats.alerts_published as u64);
    }
    metrics.add(metric::BYTES_IN, Unit::Bytes, stats.bytes_in as f64);
    metrics.add(metric::BATCH_LATENCY, Unit::Milliseconds, latency_ms);
    if let Some((name, age)) = lag {
        metrics.add(name, Unit::Milliseconds, age as f64);
    }
}

fn log_outcome(pipeline: &str, outcome: &BatchOutcome, latency: f64) {
    let s = &outcome.stats;
    tracing::info!(
        pipeline,
        records = s.records_in,
        written = s.documents_written,
        quarantined = s.documents_quarantined,
        objects = s.objects_written,
        failed = s.records_failed,
        alerts = s.alerts_published,
        latency_ms = latency,
        "batch processed"
    );
    if let Some(first) = outcome.failures.first() {
        tracing::warn!(
            pipeline,
            failed = s.records_failed,
            first_failure = first.as_str(),
            errors = outcome.errors.join(" | ").as_str(),
            "records reported for retry"
        );
    }
}
