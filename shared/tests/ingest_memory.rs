//! Object ingest through the in-memory store: the same pipeline code as on S3, with a transform
//! that filters, fans out, rejects, panics and fails transiently.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use runnel::ingest::{IngestConfig, IngestRunner, ManifestStatus};
use runnel::pipeline::Pipeline;
use runnel::records::FieldError;
use runnel::sink::{MemoryStore, ObjectStore, PutObject};
use runnel::source::S3Objects;
use runnel::telemetry::Metrics;
use runnel::transform::{Outputs, RecordContext, Transform, TransformError};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
struct Order {
    id: String,
    qty: i64,
    at: DateTime<Utc>,
}

#[derive(Serialize)]
struct Line {
    order: String,
    unit: i64,
    at: DateTime<Utc>,
}

/// `qty` 0 is filtered out, `qty` n > 1 fans out into n lines, `qty` 13 is rejected, `qty` 66
/// panics, and order `o-8` fails transiently while `outage` holds attempts.
#[derive(Clone, Default)]
struct Orders {
    outage: Arc<AtomicUsize>,
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
        match order.qty {
            13 => return Err(TransformError::Reject("unlucky".into())),
            66 => panic!("transform bug"),
            _ if order.id == "o-8" && self.outage.load(Ordering::SeqCst) > 0 => {
                self.outage.fetch_sub(1, Ordering::SeqCst);
                return Err(TransformError::Transient("price service down".into()));
            }
            _ => {}
        }
        for unit in 0..order.qty {
            out.push(Line {
                order: order.id.clone(),
                unit,
                at: order.at,
            });
        }
        Ok(())
    }

    fn event_time(&self, line: &Line) -> Option<DateTime<Utc>> {
        Some(line.at)
    }
}

fn runner(store: &MemoryStore, transform: Orders) -> IngestRunner<Orders> {
    Pipeline::new("orders")
        .source(S3Objects)
        .transform(transform)
        .store(store.clone())
        .config(IngestConfig::new("orders", "curated"))
        .build()
        .unwrap()
}

async fn upload(store: &MemoryStore, key: &str, body: &str) -> String {
    store
        .put(PutObject {
            bucket: "raw".into(),
            key: key.into(),
            body: body.as_bytes().to_vec(),
            content_type: "text/csv",
        })
        .await
        .unwrap();
    store.head("raw", key).await.unwrap().unwrap().etag
}

fn event(key: &str) -> serde_json::Value {
    serde_json::json!({"detail-type": "Object Created", "source": "aws.s3",
        "detail": {"bucket": {"name": "raw"}, "object": {"key": key}}})
}

fn lines(store: &MemoryStore, prefix: &str) -> Vec<serde_json::Value> {
    runnel::testing::documents_under(store, "curated", prefix).unwrap()
}

const CSV: &str = "id,qty,at\n\
    o-1,1,2026-11-22T10:00:00Z\n\
    o-2,0,2026-11-22T10:00:00Z\n\
    o-3,3,2026-11-23T01:00:00Z\n\
    o-4,13,2026-11-22T10:00:00Z\n\
    o-5,66,2026-11-22T10:00:00Z\n\
    o-6,-1,2026-11-22T10:00:00Z\n\
    o-7,x,2026-11-22T10:00:00Z\n\
    o-8,1,2026-11-22T10:00:00Z\n";

#[tokio::test]
async fn rows_filter_fan_out_and_bad_rows_are_quarantined_by_kind() {
    let store = MemoryStore::new();
    let runner = runner(&store, Orders::default());
    let key = "in/dt=2026-11-22/orders.csv";
    upload(&store, key, CSV).await;
    let mut metrics = Metrics::new("Test");
    let out = runner.handle(&mut metrics, &event(key)).await.unwrap();
    assert_eq!(out["objects"][0]["status"], "complete", "{out}");
    let day22 = lines(&store, "orders/dt=2026-11-22/");
    let day23 = lines(&store, "orders/dt=2026-11-23/");
    let ids = |l: &[serde_json::Value]| -> Vec<String> {
        l.iter()
            .map(|v| v["_id"].as_str().unwrap().to_string())
            .collect()
    };
    let source = format!("s3://raw/{key}");
    assert_eq!(
        ids(&day22),
        [format!("{source}:2:0"), format!("{source}:9:0")]
    );
    assert_eq!(
        ids(&day23),
        [0, 1, 2].map(|n| match n {
            0 => format!("{source}:4:0"),
            n => format!("{source}:4:0:{n}"),
        })
    );
    let quarantine = lines(&store, "quarantine/orders/dt=2026-11-22/");
    let kinds: Vec<(&str, &str)> = quarantine
        .iter()
        .map(|q| (q["position"].as_str().unwrap(), q["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("5", "rejected"),
            ("6", "panic"),
            ("7", "validation"),
            ("8", "csv")
        ]
    );
    for q in &quarantine {
        assert_eq!(q["stream"], source.as_str());
        assert_eq!(q["row"]["csv_header"], "id,qty,at");
    }
    let manifest: runnel::ingest::Manifest = serde_json::from_slice(
        &store.objects()[&(
            "curated".to_string(),
            format!("state/orders/raw/{key}.manifest.json"),
        )],
    )
    .unwrap();
    assert_eq!(manifest.status, ManifestStatus::Complete);
    assert_eq!(
        (
            manifest.rows_in,
            manifest.rows_out,
            manifest.rows_quarantined
        ),
        (8, 5, 4)
    );
}

#[tokio::test]
async fn a_transient_failure_fails_the_object_and_leaves_nothing_behind() {
    let store = MemoryStore::new();
    let transform = Orders::default();
    transform.outage.store(1, Ordering::SeqCst);
    let runner = runner(&store, transform.clone());
    let key = "in/dt=2026-11-22/orders.csv";
    upload(&store, key, CSV).await;
    let before = store.objects();
    let mut metrics = Metrics::new("Test");
    let err = runner
        .handle(&mut metrics, &event(key))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 9 failed transiently"), "{err}");
    assert_eq!(store.objects(), before, "no output, quarantine or manifest");
    assert_eq!(store.open_uploads(), 0);
    // Lambda retries the event; the dependency is back.
    let out = runner.handle(&mut metrics, &event(key)).await.unwrap();
    assert_eq!(out["objects"][0]["status"], "complete", "{out}");
    let again = runner.handle(&mut metrics, &event(key)).await.unwrap();
    assert_eq!(again["objects"][0]["status"], "duplicate");
}
