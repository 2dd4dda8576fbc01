//! Fuzz harnesses: each takes arbitrary bytes, drives one parser of the shipping code and checks
//! what must hold for any input — no panic, and the invariant named on the function. The
//! cargo-fuzz targets (`fuzz/`) and the regression tests that replay saved inputs call these same
//! functions, so a crash found by the fuzzer is reproduced by `cargo test`.

use std::ops::ControlFlow;
use std::sync::OnceLock;

use serde::de::DeserializeOwned;

use crate::ingest::{read_rows, ObjectFormat, ReadError, RowFormat};
use crate::pipeline::redrive::StreamEvent;
use crate::pipeline::{Pipeline, StreamConfig};
use crate::records::{document_bytes, for_each_raw, Check, DecodeLimits};
use crate::sink::MemoryStore;
use crate::source::{BatchSource, RecordStatus};
use crate::testing::documents_under;
use crate::timestamp::EventTime;
use crate::transform::Transform;

/// Small limits so the fuzzer reaches the size checks (a gzip bomb, a long line) quickly.
const LIMITS: DecodeLimits = DecodeLimits {
    max_decoded_bytes: 64 * 1024,
};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime starts")
    })
}

/// Runs `f` with the panic hook silenced: `aws_lambda_events`' models, which the lean readers are
/// checked against, panic on some times (a fraction of a millisecond), and libFuzzer's hook would
/// abort on them before they are caught. A panic that escapes `f` still ends the run.
fn quietly<R>(f: impl FnOnce() -> R) -> R {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A batch event of `source` through a pipeline with `transform` on an in-memory store. Bytes
/// that are not the source's event are skipped (serde refuses them). Every record of a parsed
/// event must end written, filtered or quarantined — the store never fails here, so nothing may be
/// reported for retry — and the documents in the store must match the counts.
pub fn batch_event<S, T>(data: &[u8], source: S, transform: T)
where
    S: BatchSource,
    S::Event: DeserializeOwned,
    T: Transform,
{
    // As the Lambda loop reads it: the source's event, or a redrive request.
    let Ok(incoming) = serde_json::from_slice::<StreamEvent<S::Event>>(data) else {
        return;
    };
    let store = MemoryStore::new();
    let runner = Pipeline::new("fuzz")
        .source(source)
        .transform(transform)
        .config(StreamConfig::new("fuzz", "fuzz-bucket"))
        .store(store.clone())
        .build()
        .expect("the pipeline builds");
    let event = match incoming {
        StreamEvent::Batch(event) => event,
        StreamEvent::Redrive(request) => {
            // Every entry is answered once; nothing is quarantined again.
            if let Ok(answer) = runtime().block_on(runner.redrive(&request)) {
                let answered = answer.landed.len() + answer.still_bad.len() + answer.failed.len();
                assert_eq!(answered, request.entries.len());
                assert!(answer.failed.is_empty(), "{answer:?}");
                let requarantined = documents_under(&store, "fuzz-bucket", "quarantine/");
                assert_eq!(requarantined.map(|d| d.len()).ok(), Some(0));
            }
            return;
        }
    };
    let (response, outcome) = runtime().block_on(runner.handle(&event));
    if response.is_err() {
        // Refused before anything was written (an empty identifier).
        assert!(store.objects().is_empty(), "a refused batch wrote objects");
        return;
    }
    assert_eq!(outcome.records.len(), outcome.stats.records_in);
    assert!(
        outcome.failures.is_empty() && !outcome.records.contains(&RecordStatus::Failed),
        "a record failed with a store that never fails: {:?}",
        outcome.errors
    );
    let quarantined =
        documents_under(&store, "fuzz-bucket", "quarantine/").expect("quarantine is NDJSON");
    assert_eq!(quarantined.len(), outcome.stats.documents_quarantined);
    let written_here = outcome.returned.iter().all(|r| r.data.is_empty());
    if written_here {
        let written = documents_under(&store, "fuzz-bucket", "fuzz/").expect("output is NDJSON");
        assert_eq!(written.len(), outcome.stats.documents_written);
    }
}

/// The Kinesis lean model against `aws_lambda_events`' full one: whatever the full model reads,
/// the lean model reads the same way (ids, sequence numbers, keys, data). Lambda sends objects;
/// the array forms serde also accepts for a struct are left out (the lean model reads objects
/// only).
pub fn kinesis_models(data: &[u8]) {
    use aws_lambda_events::event::kinesis::KinesisEvent;
    // The reference model panics on some arrival times (its bug, see `quietly`):
    // such an input is one it refuses.
    let full =
        std::panic::catch_unwind(|| quietly(|| serde_json::from_slice::<KinesisEvent>(data)));
    let Ok(Ok(full)) = full else {
        return;
    };
    if !objects_all_through(data) {
        return;
    }
    let lean: crate::source::kinesis::KinesisBatch = match serde_json::from_slice(data) {
        Ok(lean) => lean,
        Err(e) => panic!("the full model reads the event, the lean one refuses it: {e}"),
    };
    assert_eq!(lean.len(), full.records.len());
    for (l, f) in lean.records().zip(&full.records) {
        assert_eq!(l.event_id, f.event_id.as_deref());
        assert_eq!(l.sequence_number, f.kinesis.sequence_number);
        assert_eq!(l.partition_key, f.kinesis.partition_key);
        assert_eq!(l.data, &f.kinesis.data.0[..]);
    }
}

/// The SQS lean model reads whatever the full `aws_lambda_events` model reads, the same way:
/// the same messages, ids, queue ARNs, the two attributes it uses and bodies.
pub fn sqs_models(data: &[u8]) {
    use aws_lambda_events::event::sqs::SqsEvent;
    let Ok(full) = serde_json::from_slice::<SqsEvent>(data) else {
        return;
    };
    // The full model also reads a message given as a list of its fields in declaration order
    // (serde's form of a struct); Lambda sends objects, and the lean model reads only those.
    if !records_are_objects(data, |_| true) {
        return;
    }
    let lean: crate::source::sqs::SqsBatch = match serde_json::from_slice(data) {
        Ok(lean) => lean,
        Err(e) => panic!("the full model reads the event, the lean one refuses it: {e}"),
    };
    assert_eq!(lean.len(), full.records.len());
    for (l, f) in lean.records().zip(&full.records) {
        let attribute = |name: &str| f.attributes.get(name).map(String::as_str);
        assert_eq!(l.message_id, f.message_id.as_deref());
        assert_eq!(l.event_source_arn, f.event_source_arn.as_deref());
        assert_eq!(l.message_group_id, attribute("MessageGroupId"));
        assert_eq!(l.sent_timestamp, attribute("SentTimestamp"));
        assert_eq!(l.body, f.body.as_deref().map(str::as_bytes));
    }
}

/// Firehose's lean reader reads whatever the full `aws_lambda_events` model reads, the same way:
/// the delivery stream's ARN and each record's id, partition key, data and arrival time.
pub fn firehose_models(data: &[u8]) {
    use aws_lambda_events::event::firehose::KinesisFirehoseEvent;
    // The full model panics on a fraction of a millisecond: such an input is one it refuses.
    let full = std::panic::catch_unwind(|| {
        quietly(|| serde_json::from_slice::<KinesisFirehoseEvent>(data))
    });
    let Ok(Ok(full)) = full else {
        return;
    };
    // Records given as lists of their fields are left out, as for the other models.
    let Ok(serde_json::Value::Object(event)) = serde_json::from_slice(data) else {
        return;
    };
    let records = event.get("records").and_then(|r| r.as_array());
    let objects = records.is_some_and(|rs| {
        rs.iter().all(|r| {
            r.as_object().is_some_and(|r| {
                r.get("kinesisRecordMetadata")
                    .is_none_or(|m| m.is_object() || m.is_null())
            })
        })
    });
    if !objects {
        return;
    }
    let lean: crate::source::firehose::FirehoseBatch = match serde_json::from_slice(data) {
        Ok(lean) => lean,
        Err(e) => panic!("the full model reads the event, the lean one refuses it: {e}"),
    };
    assert_eq!(
        lean.delivery_stream_arn(),
        full.delivery_stream_arn.as_deref()
    );
    assert_eq!(lean.len(), full.records.len());
    for (l, f) in lean.records().zip(&full.records) {
        let metadata = f.kinesis_firehose_record_metadata.as_ref();
        assert_eq!(l.record_id, f.record_id.as_deref());
        assert_eq!(
            l.partition_key,
            metadata.and_then(|m| m.partition_key.as_deref())
        );
        assert_eq!(l.data, &f.data.0[..]);
        assert_eq!(l.arrival, f.approximate_arrival_timestamp.0);
    }
}

/// DynamoDB Streams' reader gives the batch the full `aws_lambda_events` model gives after
/// `DynamoDbBatch::from`: the same records, sequence numbers, streams, times, and documents that
/// read as the same JSON (the model's images are hash maps, so their names come in any order).
pub fn dynamodb_models(data: &[u8]) {
    use crate::source::dynamodb::DynamoDbBatch;
    use aws_lambda_events::event::dynamodb::Event;
    let full = std::panic::catch_unwind(|| quietly(|| serde_json::from_slice::<Event>(data)));
    let Ok(Ok(full)) = full else {
        return;
    };
    // As for the other models: records, and their `dynamodb` parts, given as lists of their
    // fields are left out.
    if !records_are_objects(data, |r| r.get("dynamodb").is_some_and(|c| c.is_object())) {
        return;
    }
    let lean: DynamoDbBatch = match serde_json::from_slice(data) {
        Ok(lean) => lean,
        Err(e) => panic!("the full model reads the event, the lean one refuses it: {e}"),
    };
    let expected = DynamoDbBatch::from(full);
    assert_eq!(lean.len(), expected.len());
    for (l, f) in lean.records().zip(expected.records()) {
        assert_eq!(
            (l.sequence_number, l.stream, l.arrival),
            (f.sequence_number, f.stream, f.arrival)
        );
        let document = |bytes: &[u8]| {
            serde_json::from_slice::<serde_json::Value>(bytes).expect("a document is JSON")
        };
        assert_eq!(document(l.document), document(f.document));
    }
}

/// Kafka's reader gives the batch the full `aws_lambda_events` model gives after
/// `KafkaBatch::from`: the same records in the same order, ids, keys, values, timestamps, and
/// headers (as a multiset: the full model keeps a header map's names in hash order).
pub fn kafka_models(data: &[u8]) {
    use crate::source::kafka::KafkaBatch;
    use aws_lambda_events::event::kafka::KafkaEvent;
    // The full model panics on a fraction of a millisecond (its bug, see `quietly`):
    // such an input is one it refuses.
    let full = std::panic::catch_unwind(|| quietly(|| serde_json::from_slice::<KafkaEvent>(data)));
    let Ok(Ok(full)) = full else {
        return;
    };
    // As for the other models: records given as lists of their fields are left out.
    let Ok(serde_json::Value::Object(event)) = serde_json::from_slice(data) else {
        return;
    };
    let objects = match event.get("records") {
        Some(serde_json::Value::Object(partitions)) => partitions.values().all(|records| {
            records
                .as_array()
                .is_some_and(|rs| rs.iter().all(|r| r.is_object()))
        }),
        _ => true,
    };
    if !objects {
        return;
    }
    let lean: KafkaBatch = match serde_json::from_slice(data) {
        Ok(lean) => lean,
        Err(e) => panic!("the full model reads the event, the lean one refuses it: {e}"),
    };
    let expected = KafkaBatch::from(full);
    assert_eq!(lean.records.len(), expected.records.len());
    for (mut l, mut f) in lean.records.into_iter().zip(expected.records) {
        l.headers.sort();
        f.headers.sort();
        assert_eq!(l, f);
    }
}

/// Whether the event and each of its `Records` are JSON objects, and each record passes `also`.
fn records_are_objects(
    data: &[u8],
    also: impl Fn(&serde_json::Map<String, serde_json::Value>) -> bool,
) -> bool {
    let Ok(serde_json::Value::Object(event)) = serde_json::from_slice(data) else {
        return false;
    };
    let records = event.get("Records").and_then(|r| r.as_array());
    records.is_some_and(|records| records.iter().all(|r| r.as_object().is_some_and(&also)))
}

/// Whether the event, each record and each record's `kinesis` part are JSON objects.
fn objects_all_through(data: &[u8]) -> bool {
    records_are_objects(data, |r| r.get("kinesis").is_some_and(|k| k.is_object()))
}

/// The S3 event shapes (notification, EventBridge, queued through SQS / SNS) and the ingest's
/// description of an event: errors, never a panic; every object named has a bucket and a key.
pub fn s3_event(data: &[u8]) {
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(objects) = crate::s3event::objects(&event) {
        for o in objects {
            assert!(!o.bucket.is_empty() && !o.key.is_empty(), "{o:?}");
        }
    }
    if let Some(messages) = crate::s3event::queued_objects(&event) {
        for o in messages
            .into_iter()
            .filter_map(|m| m.objects.ok())
            .flatten()
        {
            assert!(!o.bucket.is_empty() && !o.key.is_empty(), "{o:?}");
        }
    }
    let _ = crate::ingest::describe(&event);
}

/// Failure reports as `failure-alert` receives them: every delivery classifies, and every alert
/// built has a subject SNS accepts (printable ASCII, one line, at most 100 characters). The same
/// bytes as a stored on-failure record classify without a panic, and as the full parse does.
#[cfg(feature = "alert")]
pub fn alert_event(data: &[u8]) {
    use crate::apps::alert::{
        alert_for, classify, classify_stored, deliveries, AlertRules, Incoming,
    };
    let stored = classify_stored(data);
    let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let (Ok(Incoming::Invocation(stored)), Incoming::Invocation(full)) =
        (&stored, classify(&event))
    {
        assert_eq!(
            (&stored.function_arn, &stored.batch),
            (&full.function_arn, &full.batch)
        );
    }
    let rules = AlertRules::default();
    for delivery in deliveries(&event) {
        if let Some(alert) = alert_for(&rules, &delivery.event) {
            let message = alert.sns_message();
            assert!(message.subject.len() <= 100, "{:?}", message.subject);
            assert!(
                message
                    .subject
                    .chars()
                    .all(|c| c.is_ascii_graphic() || c == ' '),
                "{:?}",
                message.subject
            );
            assert!(!message.body.is_empty());
        }
    }
}

/// A record's bytes as every source decodes them (KPL aggregate, gzip, CloudWatch Logs, JSON /
/// NDJSON): documents are numbered 0, 1, 2, … and `document_bytes` finds each one again.
pub fn record_data(data: &[u8]) {
    let mut seen: Vec<Option<Vec<u8>>> = Vec::new();
    let walked = for_each_raw(data, LIMITS, |place, raw| {
        assert_eq!(
            place.ordinal as usize,
            seen.len(),
            "documents are numbered in order"
        );
        seen.push(raw.ok().map(<[u8]>::to_vec));
        ControlFlow::Continue(())
    });
    if walked.is_err() {
        return;
    }
    for (flat, doc) in seen.iter().enumerate() {
        if let Some(doc) = doc {
            assert_eq!(
                document_bytes(data, LIMITS, flat as u32).as_ref(),
                Some(doc),
                "document {flat} read back differently"
            );
        }
    }
}

/// An object's rows as the ingest reads them. The first byte picks the format (CSV or NDJSON,
/// gzip or not); the rest is the object. Rows arrive in line order, each within the row limit,
/// and the line count covers them.
pub fn object_rows<T: DeserializeOwned>(data: &[u8], check: Check<'_, T>) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let format = ObjectFormat {
        rows: if selector & 1 == 0 {
            RowFormat::Csv
        } else {
            RowFormat::Ndjson
        },
        gzip: selector & 2 != 0,
    };
    const MAX_ROW: usize = 256;
    let mut last_line = 0;
    let result = read_rows(body, format, MAX_ROW, check, |row| {
        assert!(row.line > last_line, "line {} after {last_line}", row.line);
        assert!(row.raw.len() <= MAX_ROW);
        last_line = row.line;
        Ok(())
    });
    match result {
        Ok(lines) => assert!(
            lines >= last_line,
            "{lines} lines, a row on line {last_line}"
        ),
        Err(ReadError::Object(_)) => {}
        Err(e) => panic!("an in-memory object failed as a source or stopped: {e:?}"),
    }
}

/// Event times in every form a document may give them: text that parses gives an instant whose
/// RFC 3339 form parses back to the same instant; a JSON number is epoch milliseconds.
pub fn timestamp(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(t) = EventTime::from_text(text).get() {
            let again = EventTime::from_text(&t.to_rfc3339());
            assert_eq!(again.get(), Ok(t), "{text:?} → {t}");
        }
    }
    if let Ok(value) = serde_json::from_slice::<EventTime>(data) {
        let _ = value.get();
    }
}
