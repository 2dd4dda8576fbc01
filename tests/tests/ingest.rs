//! `s3-ingest` against the emulator: real objects uploaded, events in both shapes handled,
//! curated output, quarantine and manifest read back and checked.

use std::io::Write;

use runnel::ingest::{Ingest, IngestConfig, Manifest, ObjectOutcome};
use runnel::s3event::objects;
use runnel::sink::S3Store;
use runnel::telemetry::Metrics;
use runnel_tests::*;
use s3_ingest::{Transaction, TransactionTransform};

struct Env {
    aws: runnel::aws::Aws,
    raw: String,
    curated: String,
}

async fn setup() -> Env {
    let aws = emulator().await;
    let raw = new_bucket(&aws, "raw").await;
    let curated = new_bucket(&aws, "curated").await;
    Env { aws, raw, curated }
}

fn ingest(env: &Env, extra: &[(&str, &str)]) -> Ingest<TransactionTransform> {
    let curated = env.curated.clone();
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // The template's settings for s3-ingest.
    let cfg = IngestConfig::from_lookup("s3-ingest", move |n| {
        extra
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .or_else(|| match n {
                "OUTPUT_BUCKET" => Some(curated.clone()),
                "OUTPUT_PREFIX" => Some("transactions".into()),
                "QUARANTINE_PREFIX" => Some("quarantine/transactions".into()),
                "STATE_PREFIX" => Some("manifests/transactions".into()),
                _ => None,
            })
    })
    .unwrap();
    s3_ingest::pipeline()
        .store(S3Store::new(env.aws.s3()))
        .config(cfg)
        .build()
        .unwrap()
        .into_ingest()
}

const HEADER: &str =
    "transaction_id,account_id,amount,currency,timestamp,merchant,category,country";

fn row(i: usize, day: u32) -> String {
    format!(
        "tx-{i:07},acc-{:04},{}.{:02},EUR,2026-11-{day:02}T{:02}:{:02}:00Z,Shop {},groceries,DE",
        i % 977,
        i % 500,
        i % 100,
        i % 24,
        i % 60,
        i % 31
    )
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

async fn run(
    ingest: &Ingest<TransactionTransform>,
    event: &serde_json::Value,
) -> serde_json::Value {
    let mut m = Metrics::new("Test");
    runnel::ingest::handle(ingest, &mut m, event).await.unwrap()
}

async fn manifest(env: &Env, raw_key: &str) -> Manifest {
    let key = format!("manifests/transactions/{}/{raw_key}.manifest.json", env.raw);
    serde_json::from_slice(&get_object(&env.aws, &env.curated, &key).await).unwrap()
}

async fn curated_rows(env: &Env, prefix: &str) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    for k in list_keys(&env.aws, &env.curated, prefix).await {
        rows.extend(ndjson_lines(&get_object(&env.aws, &env.curated, &k).await));
    }
    rows
}

#[tokio::test]
async fn csv_with_bad_rows_lands_partitioned_with_quarantine_and_manifest() {
    let env = setup().await;
    let ingest = ingest(&env, &[]);
    let key = "transactions/dt=2026-11-22/daily export é 01.csv";
    let mut body = format!("{HEADER}\n");
    for i in 0..50 {
        body.push_str(&row(i, 22));
        body.push('\n');
    }
    body.push_str("tx-bad-1,acc-1,12.345,EUR,2026-11-22T01:00:00Z,Shop,,DE\n"); // line 52: 3 decimals
    body.push_str("tx-bad-2,acc-1,1.00,EUR,yesterday,Shop,,DE\n"); // line 53: bad time
    body.push_str(&format!("{}\n", row(50, 21))); // line 54: previous day
    body.push_str("just,three,fields\n"); // line 55
    let etag = put_object(&env.aws, &env.raw, key, body.clone().into_bytes()).await;

    let event = s3_put_notification(&env.raw, key, &etag, body.len() as u64);
    assert!(event["Records"][0]["s3"]["object"]["key"]
        .as_str()
        .unwrap()
        .contains("daily+export+%C3%A9+01.csv"));
    let out = run(&ingest, &event).await;
    assert_eq!(out["objects"][0]["status"], "complete", "{out}");

    let m = manifest(&env, key).await;
    // 54 data lines: 51 valid (50 of the 22nd, one of the 21st), 3 bad.
    assert_eq!((m.rows_in, m.rows_out, m.rows_quarantined), (54, 51, 3));
    assert_eq!(m.day, "2026-11-22");
    assert_eq!(m.etag, etag);
    assert_eq!(m.input_crc32, format!("{:08x}", crc32(body.as_bytes())));
    assert_eq!(
        m.outputs.len(),
        2,
        "two days of event time: {:?}",
        m.outputs
    );
    assert!(m
        .outputs
        .iter()
        .any(|w| w.key.starts_with("transactions/dt=2026-11-21/")));

    let day22 = curated_rows(&env, "transactions/dt=2026-11-22/").await;
    assert_eq!(day22.len(), 50);
    let first: Transaction = serde_json::from_value(day22[0].clone()).unwrap();
    assert_eq!(first.transaction_id, "tx-0000000");
    assert_eq!(day22[0]["_id"], "tx-0000000");
    assert_eq!(day22[0]["_line"], 2);
    assert_eq!(day22[0]["_source"], format!("s3://{}/{key}", env.raw));
    assert_eq!(day22[3]["amount_minor"], 303);

    let q = ndjson_lines(
        &get_object(&env.aws, &env.curated, &m.quarantine.as_ref().unwrap().key).await,
    );
    let entries: Vec<runnel::pipeline::redrive::QuarantinedEntry> = q
        .iter()
        .map(|e| serde_json::from_value(e.clone()).unwrap())
        .collect();
    let lines: Vec<&str> = entries.iter().map(|e| e.position.as_str()).collect();
    assert_eq!(lines, ["52", "53", "55"]);
    assert_eq!(
        entries[0].data().unwrap(),
        b"tx-bad-1,acc-1,12.345,EUR,2026-11-22T01:00:00Z,Shop,,DE"
    );
    let origin = entries[0].row.as_ref().unwrap();
    assert_eq!(origin.etag, m.etag);
    assert_eq!(origin.csv_header.as_deref(), Some(HEADER));
    assert_eq!(
        q[0]["reason"],
        "failed validation: amount: \"12.345\" has more than 2 decimal place(s)"
    );
    assert_eq!(
        q[2]["reason"],
        "failed validation: row: has 3 fields, the header has 8"
    );
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = flate2::Crc::new();
    c.update(data);
    c.sum()
}

#[tokio::test]
async fn duplicate_deliveries_in_both_shapes_do_no_harm() {
    let env = setup().await;
    let ingest = ingest(&env, &[]);
    let key = "transactions/dt=2026-11-22/part-0001.ndjson.gz";
    let ndjson: String = (0..20)
        .map(|i| {
            let f: Vec<String> = row(i, 22).split(',').map(str::to_string).collect();
            format!(
                "{{\"transaction_id\":\"{}\",\"account_id\":\"{}\",\"amount\":\"{}\",\"currency\":\"{}\",\"timestamp\":\"{}\",\"merchant\":\"{}\"}}\n",
                f[0], f[1], f[2], f[3], f[4], f[5]
            )
        })
        .collect();
    let body = gzip(ndjson.as_bytes());
    let etag = put_object(&env.aws, &env.raw, key, body.clone()).await;
    let first = run(
        &ingest,
        &s3_put_notification(&env.raw, key, &etag, body.len() as u64),
    )
    .await;
    assert_eq!(first["objects"][0]["rows_out"], 20);
    let before: Vec<(String, Vec<u8>)> = {
        let mut v = Vec::new();
        for k in list_keys(&env.aws, &env.curated, "transactions/").await {
            v.push((k.clone(), get_object(&env.aws, &env.curated, &k).await));
        }
        v
    };
    let again = run(
        &ingest,
        &s3_eventbridge_created(&env.raw, key, &etag, body.len() as u64),
    )
    .await;
    assert_eq!(again["objects"][0]["status"], "duplicate");
    let again2 = run(
        &ingest,
        &s3_put_notification(&env.raw, key, &etag, body.len() as u64),
    )
    .await;
    assert_eq!(again2["objects"][0]["status"], "duplicate");
    let mut after = Vec::new();
    for k in list_keys(&env.aws, &env.curated, "transactions/").await {
        after.push((k.clone(), get_object(&env.aws, &env.curated, &k).await));
    }
    assert_eq!(before, after);
}

#[tokio::test]
async fn a_new_version_replaces_the_old_outputs() {
    let env = setup().await;
    let ingest = ingest(&env, &[]);
    let key = "transactions/dt=2026-11-22/part-0002.csv";
    let v1 = format!("{HEADER}\n{}\n{}\n", row(1, 22), row(2, 21));
    let e1 = put_object(&env.aws, &env.raw, key, v1.clone().into_bytes()).await;
    run(&ingest, &s3_put_notification(&env.raw, key, &e1, 0)).await;
    let v2 = format!("{HEADER}\n{}\n{}\n{}\n", row(1, 22), row(3, 22), row(4, 22));
    let e2 = put_object(&env.aws, &env.raw, key, v2.into_bytes()).await;
    assert_ne!(e1, e2);
    run(&ingest, &s3_put_notification(&env.raw, key, &e2, 0)).await;
    let rows = curated_rows(&env, "transactions/dt=").await;
    let ids: Vec<&str> = rows.iter().map(|r| r["_id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["tx-0000001", "tx-0000003", "tx-0000004"],
        "the old version's outputs (incl. dt=2026-11-21) are gone"
    );
    // A late event for the old version reprocesses nothing: the current version is ingested.
    let late = run(&ingest, &s3_put_notification(&env.raw, key, &e1, 0)).await;
    assert_eq!(late["objects"][0]["status"], "duplicate");
}

#[tokio::test]
async fn objects_that_are_not_what_their_name_says_are_quarantined_whole() {
    let env = setup().await;
    let ingest = ingest(&env, &[("MAX_OBJECT_BYTES", "1000")]);
    let fake_gz = "transactions/dt=2026-11-22/part-0003.csv.gz";
    let body = format!("{HEADER}\n{}\n", row(1, 22));
    let etag = put_object(&env.aws, &env.raw, fake_gz, body.clone().into_bytes()).await;
    let out = run(&ingest, &s3_put_notification(&env.raw, fake_gz, &etag, 0)).await;
    assert_eq!(out["objects"][0]["status"], "quarantined");
    let m = manifest(&env, fake_gz).await;
    assert_eq!(
        m.reason.as_deref(),
        Some("the name says gzip but the content is not gzip")
    );
    let copy = m.quarantine.unwrap().key;
    assert_eq!(
        get_object(&env.aws, &env.curated, &copy).await,
        body.as_bytes()
    );
    let reason: serde_json::Value = serde_json::from_slice(
        &get_object(&env.aws, &env.curated, &format!("{copy}.reason.json")).await,
    )
    .unwrap();
    assert_eq!(
        reason["reason"],
        "the name says gzip but the content is not gzip"
    );
    assert!(
        list_keys(&env.aws, &env.curated, "transactions/")
            .await
            .is_empty(),
        "nothing curated from a bad object"
    );

    let big = "transactions/dt=2026-11-22/part-0004.csv";
    let body = format!("{HEADER}\n{}", format!("{}\n", row(1, 22)).repeat(40));
    let etag = put_object(&env.aws, &env.raw, big, body.into_bytes()).await;
    run(&ingest, &s3_put_notification(&env.raw, big, &etag, 0)).await;
    assert!(manifest(&env, big)
        .await
        .reason
        .unwrap()
        .contains("over the limit of 1000"));

    let unknown = "transactions/dt=2026-11-22/readme.txt";
    let etag = put_object(&env.aws, &env.raw, unknown, b"hello".to_vec()).await;
    run(&ingest, &s3_put_notification(&env.raw, unknown, &etag, 0)).await;
    assert!(manifest(&env, unknown)
        .await
        .reason
        .unwrap()
        .starts_with("unsupported file type"));
}

#[tokio::test]
async fn deleted_object_and_garbage_events_are_handled() {
    let env = setup().await;
    let ingest = ingest(&env, &[]);
    let out = run(
        &ingest,
        &s3_put_notification(&env.raw, "transactions/gone.csv", "abc", 1),
    )
    .await;
    assert_eq!(out["objects"][0]["status"], "missing");
    let mut m = Metrics::new("Test");
    let err = runnel::ingest::handle(&ingest, &mut m, &serde_json::json!({"hello": "world"}))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("not an S3 object-created event"),
        "{err}"
    );
}

/// Large input streams through in bounded memory with multipart output. The size is
/// `RUNNEL_BIG_INPUT_MB` (default 40 MB of CSV; `make test-big` uses 500).
#[tokio::test]
async fn large_gzip_csv_streams_with_multipart_output() {
    let env = setup().await;
    let ingest = ingest(&env, &[]);
    let target_mb: usize = std::env::var("RUNNEL_BIG_INPUT_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let key = "transactions/dt=2026-11-22/big.csv.gz";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(format!("{HEADER}\n").as_bytes()).unwrap();
    let mut written = 0usize;
    let mut rows = 0usize;
    while written < target_mb * 1_000_000 {
        let line = format!("{}\n", row(rows, 22));
        written += line.len();
        gz.write_all(line.as_bytes()).unwrap();
        rows += 1;
    }
    let body = gz.finish().unwrap();
    let etag = put_object(&env.aws, &env.raw, key, body.clone()).await;
    let objs = objects(&s3_put_notification(
        &env.raw,
        key,
        &etag,
        body.len() as u64,
    ))
    .unwrap();
    let (outcome, _) = ingest.ingest(&objs[0]).await.unwrap();
    let ObjectOutcome::Ingested(m) = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(
        (m.rows_in as usize, m.rows_out as usize, m.rows_quarantined),
        (rows, rows, 0)
    );
    assert_eq!(m.outputs.len(), 1);
    assert!(
        m.outputs[0].parts >= 2,
        "output of {} bytes went in {} part(s)",
        m.outputs[0].bytes,
        m.outputs[0].parts
    );
    let data = get_object(&env.aws, &env.curated, &m.outputs[0].key).await;
    assert_eq!(data.len() as u64, m.outputs[0].bytes);
    // The multipart object is one valid gzip stream holding every row, in order.
    let lines = ndjson_lines(&data);
    assert_eq!(lines.len(), rows);
    assert_eq!(lines[rows - 1]["_id"], format!("tx-{:07}", rows - 1));
    println!(
        "large input: {written} bytes of CSV, {} gzip, {rows} rows, output {} bytes in {} parts",
        body.len(),
        m.outputs[0].bytes,
        m.outputs[0].parts
    );
}
