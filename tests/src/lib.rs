//! Helpers shared by the integration tests: the emulator's clients and unique resource names.
//!
//! Tests run against the endpoint in `AWS_ENDPOINT_URL`, set by `scripts/with-emulator`. Every test
//! names its own resources (bucket, stream, topic) with a unique suffix, so tests running in
//! parallel never see each other's data and no reset is needed between them.

use std::sync::atomic::{AtomicU32, Ordering};

use runnel::aws::Aws;

/// A name no other test in this run (or an earlier run against the same emulator) uses.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos:x}", std::process::id())
}

/// Clients configured exactly as a handler would configure them, from the environment.
///
/// Panics with a clear message when no emulator endpoint is set: these tests must never reach AWS.
pub async fn emulator() -> Aws {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1") || endpoint.starts_with("http://localhost"),
        "integration tests need AWS_ENDPOINT_URL pointing at a local emulator (got {endpoint:?}); \
         run them with `make test` or `scripts/with-emulator cargo test`"
    );
    Aws::from_env().await
}

/// Creates a bucket with a unique name and returns the name.
pub async fn new_bucket(aws: &Aws, prefix: &str) -> String {
    let name = unique_name(prefix);
    aws.s3()
        .create_bucket()
        .bucket(&name)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create bucket {name}: {e:?}"));
    name
}

/// Reads a whole object.
pub async fn get_object(aws: &Aws, bucket: &str, key: &str) -> Vec<u8> {
    let out = aws
        .s3()
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get s3://{bucket}/{key}: {e:?}"));
    out.body
        .collect()
        .await
        .expect("read body")
        .into_bytes()
        .to_vec()
}

/// Every key under a prefix, sorted.
pub async fn list_keys(aws: &Aws, bucket: &str, prefix: &str) -> Vec<String> {
    let mut keys = runnel::aws::s3::list_keys(&aws.s3(), bucket, prefix)
        .await
        .unwrap_or_else(|e| panic!("{}", runnel::error::chain(&e)));
    keys.sort();
    keys
}

/// The workspace root (where `events/` lives).
pub fn workspace_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Reads a sample event from `events/`.
pub fn event_file(name: &str) -> String {
    let path = workspace_root().join("events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Lines of a (possibly gzip-compressed) NDJSON object, parsed.
pub fn ndjson_lines(body: &[u8]) -> Vec<serde_json::Value> {
    runnel::testing::ndjson_documents(body)
        .unwrap_or_else(|e| panic!("{}", runnel::error::chain(&e)))
}

/// Builds the Lambda event the Kinesis event source mapping would deliver for these records, as
/// JSON in Lambda's shape, and parses it as the handler's runtime does.
pub fn kinesis_event(
    stream_arn: &str,
    shard_id: &str,
    records: &[aws_sdk_kinesis::types::Record],
) -> runnel::source::kinesis::KinesisBatch {
    use aws_lambda_events::encodings::SecondTimestamp;
    use aws_lambda_events::event::kinesis::{KinesisEvent, KinesisEventRecord, KinesisRecord};
    let mut event = KinesisEvent::default();
    event.records = records
        .iter()
        .map(|r| {
            let mut k = KinesisRecord::default();
            k.sequence_number = r.sequence_number().to_string();
            k.partition_key = r.partition_key().unwrap_or_default().to_string();
            k.data.0 = r.data().as_ref().to_vec();
            let arrival = r
                .approximate_arrival_timestamp()
                .map(|t| t.as_nanos() / 1_000_000)
                .unwrap_or_default();
            k.approximate_arrival_timestamp = SecondTimestamp(
                chrono::DateTime::from_timestamp_millis(arrival as i64).unwrap_or_default(),
            );
            k.kinesis_schema_version = Some("1.0".into());
            let mut rec = KinesisEventRecord::default();
            rec.kinesis = k;
            rec.event_id = Some(format!("{shard_id}:{}", r.sequence_number()));
            rec.event_name = Some("aws:kinesis:record".into());
            rec.event_source = Some("aws:kinesis".into());
            rec.event_source_arn = Some(stream_arn.to_string());
            rec.aws_region = Some("us-east-1".into());
            rec.event_version = Some("1.0".into());
            rec
        })
        .collect();
    let json = serde_json::to_vec(&event).expect("the event serialises");
    serde_json::from_slice(&json).expect("the handler's model reads the event")
}

/// Creates a one-shard stream and waits until it is ACTIVE; returns (name, arn, shard id).
pub async fn new_stream(aws: &Aws, prefix: &str) -> (String, String, String) {
    use aws_sdk_kinesis::types::StreamStatus;
    let kinesis = aws.kinesis();
    let name = unique_name(prefix);
    kinesis
        .create_stream()
        .stream_name(&name)
        .shard_count(1)
        .send()
        .await
        .expect("create stream");
    for attempt in 0.. {
        let d = kinesis
            .describe_stream_summary()
            .stream_name(&name)
            .send()
            .await
            .expect("describe stream");
        let s = d.stream_description_summary().expect("summary");
        if s.stream_status() == &StreamStatus::Active {
            let arn = s.stream_arn().to_string();
            let shards = kinesis
                .list_shards()
                .stream_name(&name)
                .send()
                .await
                .expect("list shards");
            return (name, arn, shards.shards()[0].shard_id().to_string());
        }
        assert!(attempt < 100, "stream {name} never became ACTIVE");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    unreachable!()
}

/// Reads every record on a shard from the start.
pub async fn read_shard(
    aws: &Aws,
    stream: &str,
    shard_id: &str,
) -> Vec<aws_sdk_kinesis::types::Record> {
    let kinesis = aws.kinesis();
    let mut iterator = kinesis
        .get_shard_iterator()
        .stream_name(stream)
        .shard_id(shard_id)
        .shard_iterator_type(aws_sdk_kinesis::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .expect("shard iterator")
        .shard_iterator;
    let mut records = Vec::new();
    while let Some(it) = iterator {
        let out = kinesis
            .get_records()
            .shard_iterator(it)
            .limit(10_000)
            .send()
            .await
            .expect("get records");
        let got = out.records().to_vec();
        let empty = got.is_empty();
        records.extend(got);
        if empty {
            break;
        }
        iterator = out.next_shard_iterator;
    }
    records
}

/// A child process killed when dropped, so a failing test leaves nothing running.
pub struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free TCP port on 127.0.0.1, never one this process was handed before: a port is free again
/// between this call and the server binding it, so two tests starting servers at once could
/// otherwise be given the same one and both talk to whichever server bound it first.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        if !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// A local Lambda Runtime API (cargo-lambda's), for running handler binaries as Lambda would.
pub struct RuntimeApi {
    pub port: u16,
    _server: KillOnDrop,
}

impl RuntimeApi {
    /// Starts `cargo lambda watch --only-lambda-apis` on a free port and waits until it listens.
    pub fn start() -> RuntimeApi {
        let port = free_port();
        let server = std::process::Command::new("cargo")
            .args(["lambda", "watch", "--only-lambda-apis", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(workspace_root())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("cargo-lambda is needed (make tools installs it into .tools/lambda; make test puts it on PATH)");
        let server = KillOnDrop(server);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "cargo lambda watch did not listen on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        RuntimeApi {
            port,
            _server: server,
        }
    }

    /// Runs a handler binary against this Runtime API with the given extra environment.
    pub fn run_handler(&self, binary: &str, env: &[(&str, &str)]) -> std::process::Child {
        std::process::Command::new(binary)
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{}/.rt", self.port),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", "_")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"))
    }

    /// Invokes the running handler with an event built in the test (written to a temporary file).
    pub fn invoke_value(&self, event: &serde_json::Value) -> serde_json::Value {
        let dir = workspace_root().join("target").join("test-events");
        std::fs::create_dir_all(&dir).expect("create target/test-events");
        let path = dir.join(format!("{}.json", unique_name("event")));
        std::fs::write(&path, event.to_string()).expect("write event");
        let out = self.invoke_path(&path);
        let _ = std::fs::remove_file(&path);
        out
    }

    /// Invokes the running handler with an `events/` file through `cargo lambda invoke`.
    pub fn invoke(&self, event_file: &str) -> serde_json::Value {
        self.invoke_path(&workspace_root().join("events").join(event_file))
    }

    fn invoke_path(&self, path: &std::path::Path) -> serde_json::Value {
        let event_file = path.display().to_string();
        let child = std::process::Command::new("cargo")
            .args(["lambda", "invoke", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.port.to_string()])
            .arg("--data-file")
            .arg(path)
            .arg("_")
            .current_dir(workspace_root())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run cargo lambda invoke");
        // An invoke waits for a handler forever; bound it so a dead handler fails the test.
        let mut child = KillOnDrop(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while child.0.try_wait().expect("poll invoke").is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "cargo lambda invoke {event_file}: no answer in 60 s (is the handler running?)"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let status = child.0.wait().expect("invoke status");
        let (mut stdout, mut stderr) = (Vec::new(), String::new());
        use std::io::Read;
        child
            .0
            .stdout
            .take()
            .expect("piped")
            .read_to_end(&mut stdout)
            .expect("read stdout");
        child
            .0
            .stderr
            .take()
            .expect("piped")
            .read_to_string(&mut stderr)
            .expect("read stderr");
        assert!(status.success(), "cargo lambda invoke failed: {stderr}");
        serde_json::from_slice(&stdout).unwrap_or_else(|e| {
            panic!(
                "response is not JSON ({e}): {}",
                String::from_utf8_lossy(&stdout)
            )
        })
    }
}

/// Puts an object.
pub async fn put_object(aws: &Aws, bucket: &str, key: &str, body: Vec<u8>) -> String {
    aws.s3()
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put s3://{bucket}/{key}: {e:?}"))
        .e_tag()
        .unwrap_or_default()
        .trim_matches('"')
        .to_string()
}

/// The S3 notification S3 sends for a put: the key URL-encoded with `+` for spaces.
pub fn s3_put_notification(bucket: &str, key: &str, etag: &str, size: u64) -> serde_json::Value {
    let encoded: String = key
        .split(' ')
        .map(percent_encode_key)
        .collect::<Vec<_>>()
        .join("+");
    serde_json::json!({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
        "eventTime": "2026-11-22T06:00:00.000Z", "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "raw-created",
               "bucket": {"name": bucket, "arn": format!("arn:aws:s3:::{bucket}")},
               "object": {"key": encoded, "size": size, "eTag": etag, "sequencer": "0066A1B2C3D4E5F600"}}
    }]})
}

fn percent_encode_key(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The EventBridge "Object Created" event for the same object (key not encoded).
pub fn s3_eventbridge_created(bucket: &str, key: &str, etag: &str, size: u64) -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": "Object Created",
        "source": "aws.s3", "account": "123456789012", "time": "2026-11-22T06:00:00Z", "region": "us-east-1",
        "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {"version": "0", "bucket": {"name": bucket},
                   "object": {"key": key, "size": size, "etag": etag, "sequencer": "0066A1B2C3D4E5F600"},
                   "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "reason": "PutObject"}
    })
}
