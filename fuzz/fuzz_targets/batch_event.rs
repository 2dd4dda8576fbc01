//! An event of the other batch sources through the readings pipeline; the first byte picks the
//! source (SQS, DynamoDB Streams, Firehose, Kafka), the rest is the event.
#![no_main]
use kinesis_processor::IotTransform;
use runnel::source::{DynamoDb, Firehose, Kafka, Sqs};
use runnel::testing::fuzz::batch_event;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, event)) = data.split_first() else {
        return;
    };
    match selector % 4 {
        0 => batch_event(event, Sqs, IotTransform),
        1 => batch_event(event, DynamoDb, IotTransform),
        2 => batch_event(event, Firehose, IotTransform),
        _ => batch_event(event, Kafka, IotTransform),
    }
});
