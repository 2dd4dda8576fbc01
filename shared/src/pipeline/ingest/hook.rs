//! Hooks: work that follows an ingested object (the Glue trigger of the `glue` feature is one).

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use super::config::IngestConfig;
use crate::aws::Aws;
use crate::s3event::ObjectRef;

/// Work that follows an object of a day: run after each ingested object and each marker (not
/// after duplicates, missing or wholly quarantined objects). Ingest has succeeded by then, so a
/// hook never fails it: it logs its own errors and reports what it did, which ingest counts as a
/// metric and adds to the invocation's summary.
pub trait IngestHook: Send + Sync {
    /// Runs after `object` of `day` (a `dt=YYYY-MM-DD` or `YYYY-MM-DD` segment of its key, else the day it
    /// was last modified); `None` when there is nothing to
    /// report.
    fn after_object<'a>(
        &'a self,
        day: &'a str,
        object: &'a ObjectRef,
    ) -> BoxFuture<'a, Option<HookReport>>;
}

/// What a hook did, for metrics and the invocation's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct HookReport {
    /// The hook's name: the key of its entry in an object's summary (e.g. `glue`).
    pub hook: &'static str,
    /// A count metric recorded once for this report (e.g. `GlueRunsStarted`).
    pub metric: &'static str,
    /// The details, as the hook defines them.
    pub detail: Value,
}

/// A hook's settings, read in the same pass as [`IngestConfig`] so every problem is reported
/// together (see [`super::IngestPipeline::hook_from_env`]).
pub trait HookConfig {
    /// Builds the hook once the clients exist.
    fn build(self, ingest: &IngestConfig, aws: &Aws) -> Arc<dyn IngestHook>;
}

/// A hook built already is its own configuration.
impl HookConfig for Arc<dyn IngestHook> {
    fn build(self, _ingest: &IngestConfig, _aws: &Aws) -> Arc<dyn IngestHook> {
        self
    }
}
