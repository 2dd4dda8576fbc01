//! Transforms that await a lookup before `apply` (`Transform::ENRICHES`): what the lookup finds
//! lands; one partition key's lookups run one at a time in record order while keys run
//! concurrently; a failed lookup reports its record (and, in order, the later ones) and is never
//! quarantined; a refused or panicking lookup quarantines its document. The exactly-once property
//! under re-delivery is checked with lookups in `esm_contract.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use runnel::pipeline::{Pipeline, StreamConfig};
use runnel::sink::MemoryStore;
use runnel::source::kinesis::KinesisBatch;
use runnel::source::Kinesis;
use runnel::testing::documents_under;
use runnel::transform::{Outputs, RecordContext, Transform, TransformError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize)]
struct Reading {
    device: String,
    value: i64,
    /// Filled in by the lookup.
    #[serde(skip)]
    site: Option<String>,
}

#[derive(Debug, Serialize)]
struct Placed {
    device: String,
    value: i64,
    site: String,
}

/// A device registry behind a cache: each device is looked up once, then served from the cache.
#[derive(Default)]
struct Sites {
    cache: tokio::sync::Mutex<HashMap<String, String>>,
    registry_calls: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// `(partition key, position, started)` in the order they happened.
    log: Mutex<Vec<(String, String, bool)>>,
}

#[derive(Clone, Default)]
struct PlaceDevices(Arc<Sites>);

impl Transform for PlaceDevices {
    type Input = Reading;
    type Output = Placed;
    const ENRICHES: bool = true;

    async fn enrich(
        &self,
        mut reading: Reading,
        ctx: &RecordContext<'_>,
    ) -> Result<Reading, TransformError> {
        let sites = &self.0;
        let key = ctx.partition_key.unwrap_or_default().to_string();
        let note = |started| {
            let entry = (key.clone(), ctx.position.to_string(), started);
            sites.log.lock().unwrap().push(entry);
        };
        note(true);
        let now = sites.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        sites.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(2)).await;
        let found = match reading.device.as_str() {
            "unreachable" => Err(TransformError::Transient("registry timed out".into())),
            "retired" => Err(TransformError::Reject("device is retired".into())),
            "cursed" => panic!("registry client bug"),
            device => {
                let mut cache = sites.cache.lock().await;
                let site = cache.entry(device.to_string()).or_insert_with(|| {
                    sites.registry_calls.fetch_add(1, Ordering::SeqCst);
                    format!("site-of-{device}")
                });
                reading.site = Some(site.clone());
                Ok(reading)
            }
        };
        sites.in_flight.fetch_sub(1, Ordering::SeqCst);
        note(false);
        found
    }

    fn apply(
        &self,
        reading: Reading,
        _: &RecordContext<'_>,
        out: &mut Outputs<Placed>,
    ) -> Result<(), TransformError> {
        let site = reading
            .site
            .ok_or_else(|| TransformError::Reject("not enriched".into()))?;
        out.push(Placed {
            device: reading.device,
            value: reading.value,
            site,
        });
        Ok(())
    }
}

fn seq(i: usize) -> String {
    format!("4959{i:04}")
}

/// A Kinesis batch of `(partition key, device)` readings, valued by their index.
fn batch(readings: &[(&str, &str)]) -> KinesisBatch {
    let records: Vec<serde_json::Value> = readings
        .iter()
        .enumerate()
        .map(|(i, (key, device))| {
            let data = serde_json::json!({ "device": device, "value": i }).to_string();
            serde_json::json!({
                "eventID": format!("shardId-000000000001:{}", seq(i)),
                "kinesis": {
                    "sequenceNumber": seq(i),
                    "partitionKey": key,
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "approximateArrivalTimestamp": 1795323300.25
                }
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

fn pipeline(
    transform: PlaceDevices,
    store: &MemoryStore,
) -> runnel::pipeline::Runner<Kinesis, PlaceDevices> {
    Pipeline::new("iot")
        .source(Kinesis)
        .transform(transform)
        .config(StreamConfig::new("iot", "curated"))
        .store(store.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn lookups_land_run_per_key_in_order_and_keys_concurrently() {
    let store = MemoryStore::new();
    let transform = PlaceDevices::default();
    let sites = transform.0.clone();
    let readings: Vec<(&str, &str)> = (0..12)
        .map(|i| (["k1", "k2", "k3"][i % 3], ["pump", "valve"][i % 2]))
        .collect();
    let (response, outcome) = pipeline(transform, &store).handle(&batch(&readings)).await;
    assert!(
        response.unwrap().batch_item_failures.is_empty(),
        "{outcome:?}"
    );

    let landed = documents_under(&store, "curated", "iot/").unwrap();
    assert_eq!(landed.len(), 12);
    for doc in &landed {
        assert_eq!(
            doc["site"],
            format!("site-of-{}", doc["device"].as_str().unwrap())
        );
    }
    assert_eq!(
        sites.registry_calls.load(Ordering::SeqCst),
        2,
        "the cache served the rest"
    );

    let log = sites.log.lock().unwrap().clone();
    for key in ["k1", "k2", "k3"] {
        let steps: Vec<(String, bool)> = log
            .iter()
            .filter(|(k, _, _)| k == key)
            .map(|(_, position, started)| (position.clone(), *started))
            .collect();
        let expected: Vec<(String, bool)> = (0..12)
            .filter(|i| readings[*i].0 == key)
            .flat_map(|i| [(seq(i), true), (seq(i), false)])
            .collect();
        assert_eq!(
            steps, expected,
            "key {key}: one lookup at a time, in record order"
        );
    }
    assert!(
        sites.most_in_flight.load(Ordering::SeqCst) >= 2,
        "lookups of different keys overlap"
    );
    assert!(
        sites.most_in_flight.load(Ordering::SeqCst) <= 3,
        "at most one per key"
    );
}

#[tokio::test]
async fn failed_lookups_are_retried_and_refused_ones_quarantined() {
    let store = MemoryStore::new();
    let readings = [
        ("k1", "pump"),
        ("k2", "retired"),
        ("k3", "cursed"),
        ("k1", "valve"),
        ("k2", "unreachable"),
        ("k3", "pump"),
    ];
    let (response, outcome) = pipeline(PlaceDevices::default(), &store)
        .handle(&batch(&readings))
        .await;
    let reported: Vec<String> = response
        .unwrap()
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier.unwrap())
        .collect();
    // Ordered (Kinesis): the failed lookup's record and every later one are retried.
    assert_eq!(reported, [seq(4), seq(5)], "{outcome:?}");

    let landed: Vec<String> = documents_under(&store, "curated", "iot/")
        .unwrap()
        .iter()
        .map(|d| d["device"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(landed, ["pump", "valve"]);

    let quarantined = documents_under(&store, "curated", "quarantine/").unwrap();
    let kinds: Vec<(&str, &str)> = quarantined
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), e["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "rejected",
                "transform rejected the record: device is retired"
            ),
            ("panic", "transform panicked: registry client bug"),
        ],
        "{quarantined:?}"
    );
    assert!(
        !quarantined
            .iter()
            .any(|e| e["_id"].as_str().unwrap().contains(&seq(4))),
        "a failed lookup is never quarantined"
    );
}
