//! Runnel: a framework for event-driven data pipelines on AWS Lambda.
//!
//! Handlers hold wiring only; everything they compose lives here, one module per concern:
//! - [`config`]: typed configuration from the environment, every problem reported at once;
//! - [`aws`]: one shared SDK configuration and its clients (emulator endpoints, path-style S3),
//!   S3 helpers, Glue job run details;
//! - [`util`]: a stable hash, exponential backoff with jitter, redaction of secrets;
//! - [`telemetry`]: JSON logs with invocation context, CloudWatch EMF metrics;
//! - [`records`]: decoding (gzip, JSON, NDJSON) and validation into user types;
//! - [`batch`]: the batch processor with partial batch failures and quarantine;
//! - [`sink`]: writers, partitions and object stores (S3, in memory);
//! - [`kinesis`]: Kinesis events in, `batchItemFailures` out, and a Kinesis → S3 Lambda `main`;
//! - [`timestamp`]: event times parsed once, RFC 3339 written fast;
//! - [`s3event`]: S3 object-created events in both shapes (notification, EventBridge);
//! - [`ingest`]: streaming batch ingest of S3 objects with manifests, quarantine and a hook;
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
//! - `testing`: the `testing` module, for tests of the framework and of users' functions.
//!
//! Dependencies run one way: apps → pipeline (batch, kinesis, ingest) → sources, transforms,
//! sinks → aws, util. Nothing outside [`apps`] uses an app, and apps do not use each other.

pub mod apps;
pub mod aws;
pub mod batch;
pub mod config;
pub mod error;
pub mod ingest;
pub mod kinesis;
pub mod records;
pub mod s3event;
pub mod sink;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod timestamp;
pub mod util;
