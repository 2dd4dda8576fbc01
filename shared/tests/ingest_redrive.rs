//! Redriving quarantined rows through an ingest function's current transform, in the
//! in-memory store: rows valid now land once under their original ids and keys of their own, the
//! manifest lists them (so a new version of the object retires them), rows still bad say why, and
//! rows of a replaced version are stale.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use runnel::ingest::{IngestConfig, IngestRunner, Manifest};
use runnel::pipeline::redrive::{QuarantinedEntry, RedriveAnswer, RedriveRequest};
use runnel::prelude::*;
use runnel::sink::{ObjectStore, PutObject};
use runnel::telemetry::Metrics;
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Order {
    id: String,
    qty: i64,
}

#[derive(Serialize)]
struct Line {
    order: String,
    qty: i64,
}

/// Refuses `qty` 13 until `fixed`; a negative `qty` never validates.
#[derive(Clone, Default)]
struct Orders {
    fixed: Arc<AtomicBool>,
}

impl Transform for Orders {
    type Input = Order;
    type Output = Line;

    fn validate(&self, order: &Order) -> Result<(), Vec<FieldError>> {
        if order.qty < 0 {
            return Err(vec![FieldError::new("qty", "must not be negative")]);
        }
        Ok(())
    }

    fn apply(
        &self,
        order: Order,
        _: &RecordContext<'_>,
        out: &mut Outputs<Line>,
    ) -> Result<(), TransformError> {
        if order.qty == 13 && !self.fixed.load(Ordering::SeqCst) {
            return Err(TransformError::Reject("unlucky".into()));
        }
        out.push(Line {
            order: order.id,
            qty: order.qty,
        });
        Ok(())
    }
}

const KEY: &str = "in/dt=2026-11-22/orders.csv";
const CSV: &str = "id,qty\no-1,1\no-2,13\no-3,-1\no-4,x\n";

struct Setup {
    store: MemoryStore,
    transform: Orders,
    runner: IngestRunner<Orders>,
}

fn setup() -> Setup {
    let store = MemoryStore::new();
    let transform = Orders::default();
    let runner = Pipeline::new("orders")
        .source(S3Objects)
        .transform(transform.clone())
        .store(store.clone())
        .config(IngestConfig::new("orders", "curated"))
        .build()
        .unwrap();
    Setup {
        store,
        transform,
        runner,
    }
}

impl Setup {
    async fn ingest(&self, body: &str) {
        self.store
            .put(PutObject {
                bucket: "raw".into(),
                key: KEY.into(),
                body: body.as_bytes().to_vec(),
                content_type: "text/csv",
            })
            .await
            .unwrap();
        let event = serde_json::json!({"Records": [{"eventSource": "aws:s3",
            "s3": {"bucket": {"name": "raw"}, "object": {"key": KEY}}}]});
        let out = self.handle(&event).await;
        assert_eq!(out["objects"][0]["status"], "complete", "{out}");
    }

    async fn handle(&self, event: &serde_json::Value) -> serde_json::Value {
        self.runner
            .handle(&mut Metrics::new("Test"), event)
            .await
            .unwrap()
    }

    async fn redrive(&self, entries: Vec<QuarantinedEntry>) -> RedriveAnswer {
        let event = RedriveRequest { entries }.to_event();
        serde_json::from_value(self.handle(&event).await).unwrap()
    }

    fn quarantined(&self) -> Vec<QuarantinedEntry> {
        runnel::testing::documents_under(&self.store, "curated", "quarantine/orders/dt=2026-11-22/")
            .unwrap()
            .into_iter()
            .map(|v| serde_json::from_value(v).unwrap())
            .collect()
    }

    fn landed(&self) -> Vec<(String, serde_json::Value)> {
        let objects = self.store.objects();
        let mut landed: Vec<_> = objects
            .iter()
            .filter(|((b, k), _)| b == "curated" && k.starts_with("orders/"))
            .flat_map(|((_, k), body)| {
                runnel::testing::ndjson_documents(body)
                    .unwrap()
                    .into_iter()
                    .map(|d| (k.clone(), d))
            })
            .collect();
        landed.sort_by(|a, b| a.1["_id"].as_str().cmp(&b.1["_id"].as_str()));
        landed
    }

    fn manifest(&self) -> Manifest {
        let key = format!("state/orders/raw/{KEY}.manifest.json");
        serde_json::from_slice(&self.store.objects()[&("curated".to_string(), key)]).unwrap()
    }
}

fn ids(landed: &[(String, serde_json::Value)]) -> Vec<&str> {
    landed
        .iter()
        .map(|(_, d)| d["_id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn rows_valid_now_land_once_under_their_ids_and_the_rest_stay_bad() {
    let s = setup();
    s.ingest(CSV).await;
    let source = format!("s3://raw/{KEY}");
    let entries = s.quarantined();
    let kinds: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.position.as_str(), e.kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [("3", "rejected"), ("4", "validation"), ("5", "csv")]
    );
    let etag = s.manifest().etag;
    for e in &entries {
        assert_eq!(e.stream, source);
        let row = e
            .row
            .as_ref()
            .expect("an ingested row says where it came from");
        assert_eq!(
            (row.etag.as_str(), row.csv_header.as_deref()),
            (etag.as_str(), Some("id,qty"))
        );
        assert_eq!(e.day(), "dt=2026-11-22");
    }
    assert_eq!(ids(&s.landed()), [format!("{source}:2:0")]);

    // Still refused: nothing lands, every entry says why.
    let answer = s.redrive(entries.clone()).await;
    assert!(
        answer.landed.is_empty() && answer.failed.is_empty(),
        "{answer:?}"
    );
    let reasons: Vec<&str> = answer.still_bad.iter().map(|b| b.reason.as_str()).collect();
    assert!(reasons[0].contains("unlucky"), "{reasons:?}");
    assert!(
        reasons[1].contains("qty: must not be negative"),
        "{reasons:?}"
    );

    // The rule is fixed: the refused row lands under its original id, in an object of its own.
    s.transform.fixed.store(true, Ordering::SeqCst);
    let answer = s.redrive(entries.clone()).await;
    assert_eq!(answer.landed, [format!("{source}:3:0")], "{answer:?}");
    let still: Vec<&str> = answer.still_bad.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(still, [format!("{source}:4:0"), format!("{source}:5:0")]);
    let landed = s.landed();
    assert_eq!(
        ids(&landed),
        [format!("{source}:2:0"), format!("{source}:3:0")]
    );
    let (key, doc) = &landed[1];
    assert!(key.ends_with("-line3.json.gz"), "{key}");
    assert_eq!(
        (doc["order"].as_str(), doc["_line"].as_u64()),
        (Some("o-2"), Some(3))
    );
    let manifest = s.manifest();
    assert_eq!(manifest.redriven, [3]);
    assert!(
        manifest.outputs.iter().any(|w| &w.key == key),
        "{manifest:?}"
    );

    // A second redrive (its entries never left quarantine) overwrites: nothing twice.
    let again = s.redrive(entries.clone()).await;
    assert_eq!(again.landed, answer.landed);
    assert_eq!(
        ids(&s.landed()),
        [format!("{source}:2:0"), format!("{source}:3:0")]
    );
    assert_eq!(s.manifest().outputs.len(), manifest.outputs.len());

    // A new version replaces the old one's outputs, the redriven row's included; the old
    // version's rows are stale.
    s.ingest("id,qty\no-9,2\n").await;
    assert_eq!(ids(&s.landed()), [format!("{source}:2:0")]);
    assert_eq!(s.landed()[0].1["order"], "o-9");
    let stale = s.redrive(entries[..1].to_vec()).await;
    assert!(stale.landed.is_empty(), "{stale:?}");
    assert!(stale.still_bad[0].reason.contains("stale"), "{stale:?}");
}

#[tokio::test]
async fn entries_that_are_not_rows_are_refused_with_a_reason() {
    let s = setup();
    s.ingest(CSV).await;
    let row = s.quarantined().remove(0);
    let stream_entry = QuarantinedEntry {
        row: None,
        ..row.clone()
    };
    let too_long = QuarantinedEntry {
        id: "long".into(),
        kind: "too_large".into(),
        ..row.clone()
    };
    let not_base64 = QuarantinedEntry {
        id: "garbled".into(),
        data_base64: "%%%".into(),
        ..row.clone()
    };
    let answer = s.redrive(vec![stream_entry, too_long, not_base64]).await;
    assert!(
        answer.landed.is_empty() && answer.failed.is_empty(),
        "{answer:?}"
    );
    let reasons: Vec<&str> = answer.still_bad.iter().map(|b| b.reason.as_str()).collect();
    assert!(reasons[0].contains("stream function"), "{reasons:?}");
    assert!(reasons[1].contains("MAX_ROW_BYTES"), "{reasons:?}");
    assert!(reasons[2].contains("not base64"), "{reasons:?}");
    let malformed = s
        .runner
        .handle(
            &mut Metrics::new("Test"),
            &serde_json::json!({"runnelRedrive": {"entries": 1}}),
        )
        .await
        .unwrap_err();
    assert!(
        malformed.to_string().contains("not a redrive request"),
        "{malformed}"
    );
}
