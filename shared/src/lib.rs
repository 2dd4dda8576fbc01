//! Runnel: a framework for event-driven data pipelines on AWS Lambda.
//!
//! Handlers hold wiring only; everything they compose lives here, one module per concern:
//! - [`config`]: typed configuration from the environment, every problem reported at once;
//! - [`aws`]: one shared SDK configuration and its clients (emulator endpoints, path-style S3);
//! - [`telemetry`]: JSON logs with invocation context, CloudWatch EMF metrics.

pub mod aws;
pub mod batch;
pub mod config;
pub mod esm;
pub mod kinesis;
pub mod records;
pub mod sink;
pub mod telemetry;
