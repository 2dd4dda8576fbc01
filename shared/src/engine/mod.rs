//! The engine: a batch of source records in, objects and the source's answer out.
//!
//! One job a file: `prepare` decodes and transforms (bad data becomes a `quarantine` item), `plan` groups the items into runs (pure, no I/O), `execute` writes
//! the runs in lanes as the [`FailureMode`] says, `respond` hands curated output back to a source that
//! takes it in the response, `outcome` says what to report, and `redrive` processes quarantine
//! entries again. What happens to each record, how objects are named and what holds under
//! re-delivery is written down in `docs/delivery.md`; `shared/tests/esm_contract.rs` checks it.

mod alerting;
pub(crate) mod apply;
mod execute;
mod outcome;
mod plan;
mod prepare;
pub mod quarantine;
pub mod redrive;
mod respond;
mod run_names;
mod tumbling;

use crate::records::DecodeLimits;
use crate::sink::{Location, Ndjson, Sink};
use crate::source::{BatchOutcome, FailureMode, OutputRoute, Redelivery, SourceRecord};
use crate::transform::Transform;
use crate::window::{AlertSink, PaneSink};

use execute::WriteKind;
use outcome::{observed, settle_statuses};

/// Where output goes and how failures are reported.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorConfig {
    /// Curated output.
    pub curated: Location,
    /// Bad records, with their reasons.
    pub quarantine: Location,
    /// How failures are reported.
    pub mode: FailureMode,
    /// Decoding limits.
    pub limits: DecodeLimits,
    /// Puts in flight at once in report-all mode.
    pub concurrency: usize,
    /// Source ARN recorded in quarantine entries.
    pub source_arn: Option<String>,
    /// What the source re-delivers: whether a run may span records.
    pub redelivery: Redelivery,
    /// Whether curated output is written or handed back in the response.
    pub output_route: OutputRoute,
}

/// The processor for one transform and one sink.
pub struct Processor<T: Transform> {
    transform: T,
    sink: Sink<T::Output>,
    quarantine_encoder: Ndjson,
    config: ProcessorConfig,
    panes: Option<PaneSink<T::Output>>,
    alerts: Option<AlertSink<T::Output>>,
}

impl<T: Transform> Processor<T> {
    /// A processor writing `transform`'s output through `sink`.
    pub fn new(transform: T, sink: Sink<T::Output>, config: ProcessorConfig) -> Self {
        Processor {
            transform,
            sink,
            quarantine_encoder: Ndjson,
            config,
            panes: None,
            alerts: None,
        }
    }

    /// Also checks `alerts`' rules on every output that lands, publishing their alerts
    /// ([`crate::window::Rule`]).
    pub fn with_alerts(mut self, alerts: AlertSink<T::Output>) -> Self {
        self.alerts = Some(alerts);
        self
    }

    /// Also writes the panes of an aggregation beside every run of curated output
    /// ([`crate::window`]).
    pub fn with_panes(mut self, panes: PaneSink<T::Output>) -> Self {
        self.panes = Some(panes);
        self
    }

    /// The processor's configuration.
    pub fn config(&self) -> &ProcessorConfig {
        &self.config
    }

    pub(crate) fn panes(&self) -> Option<&PaneSink<T::Output>> {
        self.panes.as_ref()
    }

    pub(crate) fn store(&self) -> &dyn crate::sink::ObjectStore {
        self.sink.store.as_ref()
    }

    /// Processes a batch in the configured mode and returns what to report.
    pub async fn process(&self, records: &[SourceRecord<'_>]) -> BatchOutcome {
        self.process_in(records, self.config.mode).await
    }

    /// Processes a batch in `mode` (a source may choose it per batch, see
    /// [`BatchSource::mode`](crate::source::BatchSource::mode)). [`FailureMode::PerGroup`] needs
    /// [`Redelivery::PerRecord`]; with a stream that resumes from a checkpoint it is processed as
    /// [`FailureMode::Ordered`].
    pub async fn process_in(
        &self,
        records: &[SourceRecord<'_>],
        mode: FailureMode,
    ) -> BatchOutcome {
        let mode = match (mode, self.config.redelivery) {
            (FailureMode::PerGroup, Redelivery::FromCheckpoint) => FailureMode::Ordered,
            (mode, _) => mode,
        };
        let mut outcome = BatchOutcome::default();
        outcome.stats.records_in = records.len();
        outcome.stats.bytes_in = records.iter().map(|r| r.data.len()).sum();
        let prepared = self.prepare(records, None, &mut outcome).await;
        let failed = match self.config.output_route {
            OutputRoute::Store => {
                self.write(records, &prepared, mode, WriteKind::Batch, &mut outcome)
                    .await
            }
            OutputRoute::Response => {
                self.answer_with_output(records, &prepared, &mut outcome)
                    .await
            }
        };
        let failed = self.alert(records, &prepared, failed, &mut outcome).await;
        settle_statuses(records, &prepared, &failed, &mut outcome);
        if self.panes.as_ref().is_some_and(|p| !p.per_run) {
            outcome.observed = observed(prepared, &failed);
        }
        outcome
    }
}
