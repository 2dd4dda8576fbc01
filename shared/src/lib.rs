//! Runnel: a framework for event-driven data pipelines on AWS Lambda.
//!
//! A pipeline is a batch source, a [`transform::Transform`] and a sink. This is a whole Lambda
//! function that lands clickstream events from Kinesis in S3 as gzip NDJSON, partitioned by
//! hour, dropping bots, with bad records quarantined and failures reported for retry:
//!
//! ```no_run
//! use chrono::{DateTime, Utc};
//! use runnel::prelude::*;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Deserialize)]
//! struct Click { user_id: String, page: String, at: DateTime<Utc>, #[serde(default)] bot: bool }
//!
//! #[derive(Serialize)]
//! struct PageView { user_id: String, page: String, at: DateTime<Utc> }
//!
//! struct PageViews;
//!
//! impl Transform for PageViews {
//!     type Input = Click;
//!     type Output = PageView;
//!
//!     fn validate(&self, click: &Click) -> Result<(), Vec<FieldError>> {
//!         if click.user_id.is_empty() {
//!             return Err(vec![FieldError::new("user_id", "must not be empty")]);
//!         }
//!         Ok(())
//!     }
//!
//!     fn apply(&self, click: Click, _: &RecordContext<'_>, out: &mut Outputs<PageView>)
//!         -> Result<(), TransformError> {
//!         if !click.bot {
//!             out.push(PageView { user_id: click.user_id, page: click.page, at: click.at });
//!         }
//!         Ok(())
//!     }
//!
//!     fn event_time(&self, view: &PageView) -> Option<DateTime<Utc>> {
//!         Some(view.at)
//!     }
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<(), lambda_runtime::Error> {
//!     // OUTPUT_BUCKET (required), OUTPUT_PREFIX (default "clicks"), … from the environment.
//!     Pipeline::new("clicks").source(Kinesis).transform(PageViews).run().await
//! }
//! ```
//!
//! [`prelude`] holds what a pipeline author imports. The modules, one role each:
//! - [`transform`]: the user's part — typed input, zero/one/many outputs, reject or retry;
//! - [`source`]: batch sources ([`source::Kinesis`]) — records in, the source's response out;
//! - [`sink`]: object stores (S3, memory), encoders (gzip NDJSON), partitioners (hour, day, field);
//! - [`pipeline`]: the builder and Lambda loop, the batch processor (runs, deterministic keys,
//!   quarantine), configuration, and [`ingest`] (S3 objects row by row, with manifests and hooks);
//! - [`records`]: decoding (gzip, JSON, NDJSON) with field-level errors;
//! - [`config`]: typed configuration from the environment, every problem reported at once;
//! - [`aws`]: one shared SDK configuration and its clients (emulator endpoints, path-style S3),
//!   S3 helpers, Glue job run details;
//! - [`telemetry`]: JSON logs with invocation context, CloudWatch EMF metrics;
//! - [`timestamp`]: event times parsed once, RFC 3339 written fast;
//! - [`s3event`]: S3 object-created events in both shapes (notification, EventBridge);
//! - [`util`]: a stable hash, exponential backoff with jitter, redaction of secrets;
//! - [`window`]: windowed aggregates over the outputs, written as panes that merge exactly once;
//! - [`apps`]: ready-made applications, each behind a feature;
//! - `testing`: a model of the Kinesis event source mapping's re-delivery, and fault-injecting
//!   stores (feature `testing`).
//!
//! # Features
//! None is on by default; a function enables the apps it uses, and only those compile (with the
//! SDK clients they need):
//! - `alert`: `apps::alert`, failure reports → alerts on SNS (SNS and Glue clients);
//! - `glue`: `apps::glue_trigger`, the ingest hook that starts the day's Glue job (Glue client);
//! - `producer`: `apps::producer`, PutRecords batching with retries (Kinesis client);
//! - `replay`: `apps::replay`, replaying a batch an event source mapping gave up on (Kinesis and
//!   Lambda clients);
//! - `eventbridge`: `window::EventBridgeAlerts`, the rules' alerts on EventBridge (EventBridge
//!   client);
//! - `testing`: the `testing` module, for tests of the framework and of users' functions.
//!
//! Dependencies run one way: apps → pipeline → source, transform, sink → aws, util. Nothing
//! outside [`apps`] uses an app, and apps do not use each other: `make lint` builds the crate
//! with no feature and with each app's feature alone, so the compiler checks both.

#![warn(missing_docs)]

pub mod apps;
pub mod aws;
pub mod config;
#[cfg(test)]
mod documented;
mod engine;
pub mod error;
pub mod pipeline;
pub use pipeline::ingest;
pub mod prelude;
pub mod records;
pub mod s3event;
pub mod sink;
pub mod source;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timestamp;
pub mod transform;
pub mod util;
pub mod window;
