//! Redriving quarantine entries through a fixed transform: entries valid now land with their
//! original ids, still-bad ones are reported and not quarantined again, a transient failure is
//! reported, and a second redrive duplicates nothing.

mod common;

use base64::Engine as _;
use common::*;
use runnel::pipeline::redrive::{QuarantinedEntry, RedriveRequest};
use runnel::pipeline::{Pipeline, StreamConfig};
use runnel::sink::MemoryStore;
use runnel::source::kinesis::KinesisBatch;
use runnel::source::Kinesis;
use runnel::testing::documents_under;

fn event(records: &[Vec<u8>]) -> KinesisBatch {
    let records: Vec<serde_json::Value> = records
        .iter()
        .enumerate()
        .map(|(i, data)| {
            serde_json::json!({
                "eventID": format!("{SHARD}:{}", seq(i)),
                "kinesis": {
                    "sequenceNumber": seq(i),
                    "partitionKey": "p",
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "approximateArrivalTimestamp": 1795323300.25
                }
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

fn runner(
    transform: TestTransform,
    store: &MemoryStore,
) -> runnel::pipeline::Runner<Kinesis, TestTransform> {
    Pipeline::new("iot")
        .source(Kinesis)
        .transform(transform)
        .config(StreamConfig::new("iot", "curated"))
        .store(store.clone())
        .build()
        .unwrap()
}

fn output_ids(store: &MemoryStore) -> Vec<String> {
    ids(&documents_under(store, "curated", "iot/").unwrap())
}

fn entries(store: &MemoryStore) -> Vec<QuarantinedEntry> {
    documents_under(store, "curated", "quarantine/")
        .unwrap()
        .into_iter()
        .map(|d| serde_json::from_value(d).unwrap())
        .collect()
}

#[tokio::test]
async fn valid_entries_land_with_their_ids_once_and_bad_ones_stay() {
    let store = MemoryStore::new();
    let first = TestTransform {
        reject_device: Some("blocked".into()),
        panic_on_device: Some("buggy".into()),
        ..TestTransform::default()
    };
    let records = vec![
        // Three documents; the second is refused by the first transform.
        format!(
            "{}\n{}\n{}",
            reading_json("dev-a", 1, 1),
            reading_json("blocked", 2, 2),
            reading_json("fan-b", 3, 3)
        )
        .into_bytes(),
        gzip(reading_json("buggy", 4, 4).as_bytes()),
        reading_json("dev-c", 99, 5).into_bytes(), // invalid hour: bad under any transform
        reading_json("dev-d", 5, 6).into_bytes(),
    ];
    let (response, _) = runner(first, &store).handle(&event(&records)).await;
    assert!(response.unwrap().batch_item_failures.is_empty());
    let before = output_ids(&store);
    let quarantined = entries(&store);
    let entry_ids = |es: &[QuarantinedEntry]| {
        let mut v: Vec<String> = es.iter().map(|e| e.id.clone()).collect();
        v.sort();
        v
    };
    let (blocked, buggy, invalid) = (
        format!("{SHARD}:{}:1", seq(0)),
        format!("{SHARD}:{}:0", seq(1)),
        format!("{SHARD}:{}:0", seq(2)),
    );
    assert_eq!(entry_ids(&quarantined), {
        let mut v = vec![blocked.clone(), buggy.clone(), invalid.clone()];
        v.sort();
        v
    });
    let objects_before = store.objects().len();

    // The fixed transform.
    let fixed = runner(TestTransform::default(), &store);
    let request = RedriveRequest {
        entries: quarantined.clone(),
    };
    let answer = fixed.redrive(&request).await.unwrap();
    let mut landed = answer.landed.clone();
    landed.sort();
    assert_eq!(landed, {
        let mut v = vec![blocked.clone(), buggy.clone()];
        v.sort();
        v
    });
    assert_eq!(answer.still_bad.len(), 1);
    assert_eq!(answer.still_bad[0].id, invalid);
    assert!(
        answer.still_bad[0].reason.contains("hour"),
        "{:?}",
        answer.still_bad
    );
    assert!(answer.failed.is_empty());

    // Landed under their original ids, each once; nothing quarantined again.
    let mut want = before.clone();
    want.extend([blocked.clone(), buggy.clone()]);
    want.sort();
    assert_eq!(output_ids(&store), want);
    assert_eq!(
        entries(&store).len(),
        3,
        "quarantine is not written by a redrive"
    );
    let objects_after = store.objects().len();
    assert_eq!(
        objects_after,
        objects_before + 2,
        "one object per landed entry"
    );

    // A second redrive of every entry overwrites the same objects.
    let again = fixed.redrive(&request).await.unwrap();
    assert_eq!(again.landed.len(), 2);
    assert_eq!(output_ids(&store), want);
    assert_eq!(store.objects().len(), objects_after);

    // A transient failure is reported for a later try, not counted as landed.
    let flaky = TestTransform::default();
    flaky.transient_failures.lock().unwrap().insert(seq(1), 1);
    let answer = runner(flaky, &store).redrive(&request).await.unwrap();
    assert_eq!(answer.failed, vec![buggy.clone()]);
    assert_eq!(answer.landed, vec![blocked.clone()]);
}

#[tokio::test]
async fn entries_that_are_not_base64_are_still_bad_and_firehose_refuses_redrive() {
    let store = MemoryStore::new();
    let mut entry: QuarantinedEntry = serde_json::from_value(serde_json::json!({
        "_id": "s:1:0", "kind": "json", "reason": "r", "stream": "s", "position": "1",
        "document_index": 0, "partition_key": null, "arrival": null, "source_arn": null,
        "data_base64": "***"
    }))
    .unwrap();
    let request = RedriveRequest {
        entries: vec![entry.clone()],
    };
    let answer = runner(TestTransform::default(), &store)
        .redrive(&request)
        .await
        .unwrap();
    assert_eq!(answer.still_bad.len(), 1);
    assert!(answer.still_bad[0].reason.contains("base64"));
    assert!(store.objects().is_empty());

    entry.data_base64 = base64::engine::general_purpose::STANDARD.encode(reading_json("d", 1, 1));
    let firehose = Pipeline::new("iot")
        .source(runnel::source::Firehose)
        .transform(TestTransform::default())
        .config(StreamConfig::new("iot", "curated"))
        .store(store.clone())
        .build()
        .unwrap();
    let err = firehose
        .redrive(&RedriveRequest {
            entries: vec![entry],
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("delivery stream"), "{err}");
}
