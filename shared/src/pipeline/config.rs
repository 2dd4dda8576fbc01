//! One naming scheme for every pipeline's configuration.
//!
//! Stream pipelines and object ingest read their output the same way:
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `OUTPUT_BUCKET` | required | bucket of the curated output |
//! | `OUTPUT_PREFIX` | the pipeline's name | key prefix of the curated output |
//! | `QUARANTINE_BUCKET` | `OUTPUT_BUCKET` | bucket of bad records |
//! | `QUARANTINE_PREFIX` | `quarantine/<name>` | key prefix of bad records |
//! | `PIPELINE_NAME` | the pipeline's name | the `pipeline` metric dimension (deployment name) |
//! | `METRICS_NAMESPACE` | `Runnel` | CloudWatch namespace of the EMF metrics |
//!
//! Stream pipelines add `BATCH_MODE`, `MAX_RECORD_BYTES` and `WRITE_CONCURRENCY`
//! ([`StreamConfig`]); object ingest adds its own ([`crate::ingest::IngestConfig`]). Every problem
//! is reported at once, and every type has a typed constructor, so tests build configurations
//! directly instead of faking an environment.

use crate::config::{self, ConfigError, Env};
use crate::records::DecodeLimits;
use crate::sink::Location;
use crate::source::{FailureMode, OutputRoute, Redelivery};

use crate::engine::ProcessorConfig;

/// Where a pipeline writes, and the names it reports under. Shared by every kind of pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputConfig {
    /// Curated output.
    pub curated: Location,
    /// Bad records.
    pub quarantine: Location,
    /// The `pipeline` metric dimension.
    pub pipeline: String,
    /// CloudWatch namespace of the metrics.
    pub metrics_namespace: String,
}

impl OutputConfig {
    /// Output under `<name>/` and quarantine under `quarantine/<name>/`, both in `bucket`.
    pub fn new(name: &str, bucket: &str) -> Self {
        OutputConfig {
            curated: Location::new(bucket, name),
            quarantine: Location::new(bucket, format!("quarantine/{name}")),
            pipeline: name.to_string(),
            metrics_namespace: "Runnel".to_string(),
        }
    }

    /// Reads the variables of the table above inside a [`config::load`] call.
    pub fn read(env: &mut Env<'_>, name: &str) -> Self {
        let bucket: String = env.required("OUTPUT_BUCKET", "the S3 bucket for curated output");
        let prefix: String = env.optional_or("OUTPUT_PREFIX", name.to_string(), "a key prefix");
        let q_bucket: String = env.optional_or(
            "QUARANTINE_BUCKET",
            bucket.clone(),
            "the S3 bucket for bad records",
        );
        let q_prefix: String = env.optional_or(
            "QUARANTINE_PREFIX",
            format!("quarantine/{name}"),
            "a key prefix",
        );
        OutputConfig {
            curated: Location::new(bucket, prefix),
            quarantine: Location::new(q_bucket, q_prefix),
            pipeline: env.optional_or("PIPELINE_NAME", name.to_string(), "a pipeline name"),
            metrics_namespace: env.optional_or(
                "METRICS_NAMESPACE",
                "Runnel".to_string(),
                "a CloudWatch namespace",
            ),
        }
    }
}

/// Configuration of a stream pipeline (any [`crate::source::BatchSource`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    /// Output, quarantine and names.
    pub output: OutputConfig,
    /// How failures are reported; `None` uses the source's default.
    pub mode: Option<FailureMode>,
    /// Largest record accepted after decompression (`MAX_RECORD_BYTES`).
    pub max_record_bytes: usize,
    /// Puts in flight at once in report-all mode (`WRITE_CONCURRENCY`, 1-64).
    pub concurrency: usize,
    /// Where aggregations write their panes, each under its own name (`AGGREGATES_BUCKET`,
    /// default the output bucket; `AGGREGATES_PREFIX`, default `aggregates`).
    pub aggregates: Location,
    /// Where rules keep the markers of alerts sent, each rule in its own folder
    /// (`AGGREGATES_BUCKET`; `ALERTS_PREFIX`, default `alerts`).
    pub alert_markers: Location,
    /// The EventBridge bus rules publish to (`ALERT_BUS`, default `default`).
    pub alert_bus: String,
}

impl StreamConfig {
    /// Defaults around an output bucket: the source's mode, 10 MiB records, 8 puts at once.
    pub fn new(name: &str, bucket: &str) -> Self {
        StreamConfig {
            output: OutputConfig::new(name, bucket),
            mode: None,
            max_record_bytes: DecodeLimits::default().max_decoded_bytes,
            concurrency: 8,
            aggregates: Location::new(bucket, "aggregates"),
            alert_markers: Location::new(bucket, "alerts"),
            alert_bus: "default".to_string(),
        }
    }

    /// Reads the shared output variables plus `BATCH_MODE` (`ordered` | `report-all` |
    /// `per-group`),
    /// `MAX_RECORD_BYTES`, `WRITE_CONCURRENCY`, `AGGREGATES_BUCKET`, `AGGREGATES_PREFIX`,
    /// `ALERTS_PREFIX` and `ALERT_BUS`.
    pub fn from_lookup(
        name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        config::load(lookup, |env| {
            let output = OutputConfig::read(env, name);
            let mode = env.optional("BATCH_MODE", "ordered, report-all or per-group");
            let max_record_bytes: usize = env.optional_or(
                "MAX_RECORD_BYTES",
                DecodeLimits::default().max_decoded_bytes,
                "a size in bytes (decoded record limit)",
            );
            if max_record_bytes == 0 {
                env.problem(
                    "MAX_RECORD_BYTES",
                    "a size in bytes above 0",
                    Some("0".into()),
                    "must be positive",
                );
            }
            let concurrency: usize = env.optional_or("WRITE_CONCURRENCY", 8, "a whole number 1-64");
            if !(1..=64).contains(&concurrency) {
                env.problem(
                    "WRITE_CONCURRENCY",
                    "a whole number 1-64",
                    Some(concurrency.to_string()),
                    "out of range",
                );
            }
            let aggregates_bucket = env.optional_or(
                "AGGREGATES_BUCKET",
                output.curated.bucket.clone(),
                "the S3 bucket for aggregate panes",
            );
            let aggregates_prefix: String = env.optional_or(
                "AGGREGATES_PREFIX",
                "aggregates".to_string(),
                "a key prefix",
            );
            let alerts_prefix: String =
                env.optional_or("ALERTS_PREFIX", "alerts".to_string(), "a key prefix");
            let alert_bus = env.optional_or(
                "ALERT_BUS",
                "default".to_string(),
                "an EventBridge bus name or ARN",
            );
            StreamConfig {
                output,
                mode,
                max_record_bytes,
                concurrency,
                alert_markers: Location::new(aggregates_bucket.clone(), alerts_prefix),
                aggregates: Location::new(aggregates_bucket, aggregates_prefix),
                alert_bus,
            }
        })
    }

    /// Reads the process environment.
    pub fn from_env(name: &str) -> Result<Self, ConfigError> {
        Self::from_lookup(name, |n| std::env::var(n).ok())
    }

    /// The processor's settings, with `default_mode` when the configuration names none.
    pub(crate) fn processor_config(&self, default_mode: FailureMode) -> ProcessorConfig {
        ProcessorConfig {
            curated: self.output.curated.clone(),
            quarantine: self.output.quarantine.clone(),
            mode: self.mode.unwrap_or(default_mode),
            limits: DecodeLimits {
                max_decoded_bytes: self.max_record_bytes,
            },
            concurrency: self.concurrency,
            source_arn: None,
            redelivery: Redelivery::FromCheckpoint,
            output_route: OutputRoute::Store,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup_in;

    #[test]
    fn prefixes_default_to_the_pipeline_name_not_to_a_demo() {
        let c = StreamConfig::from_lookup("clicks", lookup_in(&[("OUTPUT_BUCKET", "b")])).unwrap();
        assert_eq!(c, StreamConfig::new("clicks", "b"));
        assert_eq!(c.output.curated.key("x"), "clicks/x");
        assert_eq!(c.output.quarantine.key("x"), "quarantine/clicks/x");
        assert_eq!(c.output.pipeline, "clicks");
        assert_eq!(
            c.processor_config(FailureMode::ReportAll).mode,
            FailureMode::ReportAll
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = StreamConfig::from_lookup(
            "clicks",
            lookup_in(&[
                ("BATCH_MODE", "fast"),
                ("MAX_RECORD_BYTES", "0"),
                ("WRITE_CONCURRENCY", "500"),
            ]),
        )
        .unwrap_err();
        let vars: Vec<&str> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(
            vars,
            [
                "OUTPUT_BUCKET",
                "BATCH_MODE",
                "MAX_RECORD_BYTES",
                "WRITE_CONCURRENCY"
            ]
        );
    }

    #[test]
    fn set_variables_win_over_defaults() {
        let c = StreamConfig::from_lookup(
            "clicks",
            lookup_in(&[
                ("OUTPUT_BUCKET", "b"),
                ("OUTPUT_PREFIX", "/web/clicks/"),
                ("QUARANTINE_BUCKET", "q"),
                ("QUARANTINE_PREFIX", "bad"),
                ("PIPELINE_NAME", "clicks-prod"),
                ("BATCH_MODE", "report-all"),
            ]),
        )
        .unwrap();
        assert_eq!(c.output.curated, Location::new("b", "web/clicks"));
        assert_eq!(c.output.quarantine, Location::new("q", "bad"));
        assert_eq!(c.output.pipeline, "clicks-prod");
        assert_eq!(
            c.processor_config(FailureMode::Ordered).mode,
            FailureMode::ReportAll
        );
    }
}
