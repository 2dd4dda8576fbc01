//! The Glue trigger's settings: job, precondition, output path, start attempts.

use std::sync::Arc;

use crate::aws::Aws;
use crate::config::{ConfigError, Env};
use crate::ingest::{HookConfig, IngestConfig, IngestHook};

use super::GlueTrigger;

/// When a day's input counts as complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// A `_SUCCESS` marker in the input folder, and every data object there ingested.
    Marker,
    /// At least this many objects of the day ingested.
    Count(usize),
}

impl std::str::FromStr for Precondition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("marker") {
            return Ok(Precondition::Marker);
        }
        if let Some(n) = s.strip_prefix("count:") {
            return n
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .map(Precondition::Count)
                .ok_or_else(|| format!("{n:?} is not a positive count"));
        }
        Err(format!("{s:?}: use marker or count:N"))
    }
}

/// The trigger's settings from the environment; see [`GlueTriggerConfig::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlueTriggerConfig {
    /// The Glue job to start (`GLUE_JOB_NAME`).
    pub job_name: String,
    /// When a day's input counts as complete (`GLUE_PRECONDITION`, default `marker`).
    pub precondition: Precondition,
    /// Passed as `--output_path` when set (`GLUE_OUTPUT_PATH`).
    pub output_path: Option<String>,
    /// `StartJobRun` calls before giving up (`GLUE_START_ATTEMPTS`, 1-20, default 5).
    pub start_attempts: u32,
}

impl GlueTriggerConfig {
    /// Reads `GLUE_JOB_NAME` (no trigger when unset), `GLUE_PRECONDITION` (`marker` or
    /// `count:N`, default `marker`), `GLUE_OUTPUT_PATH` (passed as `--output_path`) and
    /// `GLUE_START_ATTEMPTS` (1-20, default 5). The others are checked even without a job name,
    /// so a mistake shows before the job is switched on. Pass it to
    /// [`crate::ingest::IngestPipeline::hook_from_env`].
    pub fn read(env: &mut Env<'_>) -> Option<GlueTriggerConfig> {
        let job_name: Option<String> = env.optional("GLUE_JOB_NAME", "a Glue job name");
        let precondition = env.optional_or(
            "GLUE_PRECONDITION",
            Precondition::Marker,
            "marker or count:N",
        );
        let output_path = env.optional("GLUE_OUTPUT_PATH", "an s3:// path");
        let start_attempts: u32 = env.optional_or("GLUE_START_ATTEMPTS", 5, "a whole number 1-20");
        if !(1..=20).contains(&start_attempts) {
            env.problem(
                "GLUE_START_ATTEMPTS",
                "a whole number 1-20",
                Some(start_attempts.to_string()),
                "out of range",
            );
        }
        job_name.map(|job_name| GlueTriggerConfig {
            job_name,
            precondition,
            output_path,
            start_attempts,
        })
    }

    /// [`GlueTriggerConfig::read`] on its own.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        crate::config::load(lookup, Self::read)
    }
}

impl HookConfig for GlueTriggerConfig {
    fn build(self, ingest: &IngestConfig, aws: &Aws) -> Arc<dyn IngestHook> {
        Arc::new(GlueTrigger::new(self, ingest, aws))
    }
}
