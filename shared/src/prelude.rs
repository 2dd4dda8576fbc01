//! What a pipeline author imports: `use runnel::prelude::*;`.
//!
//! The builder, the transform and its context, validation, the sources, the partitioners and
//! stores a function picks from, and the aggregates and rules it may add. Everything else is
//! reached through its module when needed.

pub use crate::ingest::{IngestConfig, IngestPipeline};
pub use crate::pipeline::{Pipeline, StreamConfig, StreamPipeline};
pub use crate::records::{check, FieldError, Validate};
pub use crate::sink::{ByField, Daily, Hourly, MemoryStore, Partitioner};
pub use crate::source::dynamodb::{Change, NewImages};
pub use crate::source::{DynamoDb, Firehose, Kafka, Kinesis, S3Objects, Sqs, Windowed};
pub use crate::timestamp::EventTime;
pub use crate::transform::{Outputs, RecordContext, Transform, TransformError};
pub use crate::window::{Aggregation, Condition, Rule};
