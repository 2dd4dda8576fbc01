//! Runnel: a framework for event-driven data pipelines on AWS Lambda.
//!
//! Handlers hold wiring only; everything they compose lives here, one module per concern:
//! - [`config`]: typed configuration from the environment, every problem reported at once;
//! - [`aws`]: one shared SDK configuration and its clients (emulator endpoints, path-style S3);
//! - [`telemetry`]: JSON logs with invocation context, CloudWatch EMF metrics;
//! - [`records`]: decoding (gzip, JSON, NDJSON) and validation into user types;
//! - [`batch`]: the batch processor with partial batch failures and quarantine;
//! - [`sink`]: writers, partitions and object stores (S3, in memory);
//! - [`kinesis`]: Kinesis events in, `batchItemFailures` out, and a Kinesis → S3 Lambda `main`;
//! - [`esm`]: a model of the Kinesis event source mapping's re-delivery, for tests;
//! - [`alert`]: failure reports → alerts on SNS, with duplicate suppression;
//! - [`glue`]: Glue job run details; starting the day's run once its input is complete;
//! - [`timestamp`]: event times parsed once, RFC 3339 written fast;
//! - [`s3event`]: S3 object-created events in both shapes (notification, EventBridge);
//! - [`ingest`]: streaming batch ingest of S3 objects with manifests and quarantine;
//! - [`producer`]: PutRecords batching with retry of failed records.

pub mod alert;
pub mod aws;
pub mod batch;
pub mod config;
pub mod error;
pub mod esm;
pub mod glue;
pub mod ingest;
pub mod kinesis;
pub mod producer;
pub mod records;
pub mod s3event;
pub mod sink;
pub mod telemetry;
pub mod timestamp;
