//! Output writers and object stores.
//!
//! A writer ([`ObjectWriter`]) turns a run of JSON lines into one object's bytes (gzip NDJSON
//! today; Parquet can follow behind the same trait). A store ([`ObjectStore`]) puts whole objects
//! under a key: [`S3Store`] for S3, [`MemoryStore`] for tests and benchmarks. Keys are chosen by the
//! caller and deterministic, so a repeated put overwrites instead of duplicating.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::error::SdkError;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Datelike, Timelike, Utc};
use futures::future::BoxFuture;

/// A bucket and a key prefix (no leading or trailing slash needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    pub prefix: String,
}

impl Location {
    pub fn new(bucket: impl Into<String>, prefix: impl Into<String>) -> Self {
        Location {
            bucket: bucket.into(),
            prefix: prefix.into().trim_matches('/').to_string(),
        }
    }

    /// Joins the prefix and a relative key.
    pub fn key(&self, relative: &str) -> String {
        if self.prefix.is_empty() {
            relative.to_string()
        } else {
            format!("{}/{}", self.prefix, relative)
        }
    }
}

/// The Hive-style partition path of an event time: `dt=YYYY-MM-DD/hour=HH`.
pub fn hourly_partition(time: DateTime<Utc>) -> String {
    format!(
        "dt={:04}-{:02}-{:02}/hour={:02}",
        time.year(),
        time.month(),
        time.day(),
        time.hour()
    )
}

/// The Hive-style partition path of a day: `dt=YYYY-MM-DD`.
pub fn daily_partition(time: DateTime<Utc>) -> String {
    format!(
        "dt={:04}-{:02}-{:02}",
        time.year(),
        time.month(),
        time.day()
    )
}

/// A field put in front of a serialised value by [`json_line`].
#[derive(Debug, Clone, Copy)]
pub enum Lead<'a> {
    Str(&'a str),
    Int(u64),
}

/// Serialises `value` as one JSON object line with `lead` fields first (e.g. `_id`). A value
/// that is not an object is kept under `value`.
pub fn json_line<V: serde::Serialize>(
    lead: &[(&str, Lead<'_>)],
    value: &V,
) -> serde_json::Result<Vec<u8>> {
    let mut line = Vec::with_capacity(256);
    write_json_line(&mut line, lead, value)?;
    Ok(line)
}

/// Appends what [`json_line`] returns to `out` (no newline). Splices bytes instead of building a
/// `Value`: this runs once per output record. On error `out` is left as it was.
pub fn write_json_line<V: serde::Serialize>(
    out: &mut Vec<u8>,
    lead: &[(&str, Lead<'_>)],
    value: &V,
) -> serde_json::Result<()> {
    let start = out.len();
    let result = splice_line(out, start, lead, value);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn splice_line<V: serde::Serialize>(
    line: &mut Vec<u8>,
    start: usize,
    lead: &[(&str, Lead<'_>)],
    value: &V,
) -> serde_json::Result<()> {
    line.push(b'{');
    for (n, (name, field)) in lead.iter().enumerate() {
        if n > 0 {
            line.push(b',');
        }
        serde_json::to_writer(&mut *line, name)?;
        line.push(b':');
        match field {
            Lead::Str(s) => serde_json::to_writer(&mut *line, s)?,
            Lead::Int(i) => line.extend_from_slice(i.to_string().as_bytes()),
        }
    }
    // Serialise in place; the value's own `{` becomes the separator after the lead fields.
    let at = line.len();
    serde_json::to_writer(&mut *line, value)?;
    match &line[at..] {
        b"{}" => {
            line.truncate(at);
            line.push(b'}');
        }
        [b'{', ..] if lead.is_empty() => {
            line.remove(start);
        }
        [b'{', ..] => line[at] = b',',
        _ => {
            let body = line.split_off(at);
            if !lead.is_empty() {
                line.push(b',');
            }
            line.extend_from_slice(b"\"value\":");
            line.extend_from_slice(&body);
            line.push(b'}');
        }
    }
    Ok(())
}

/// Turns a run of JSON lines into the bytes of one object.
pub trait ObjectWriter: Send + Sync {
    /// File name ending, without the dot (e.g. `json.gz`).
    fn extension(&self) -> &'static str;
    fn content_type(&self) -> &'static str;
    /// Encodes NDJSON: whole lines, each ending with `\n`. One contiguous slice because one
    /// compressor call over the run is several times faster than one call per line.
    fn encode(&self, ndjson: &[u8]) -> std::io::Result<Vec<u8>>;
}

/// Newline-delimited JSON, gzip-compressed. Athena, Glue and Spark read `.json.gz` as is.
#[derive(Debug, Clone, Copy)]
pub struct NdjsonGzip {
    pub level: flate2::Compression,
}

impl Default for NdjsonGzip {
    fn default() -> Self {
        // Level 1 (fastest): on IoT JSON it gives most of level 6's ratio at a fraction of the CPU.
        NdjsonGzip {
            level: flate2::Compression::fast(),
        }
    }
}

impl ObjectWriter for NdjsonGzip {
    fn extension(&self) -> &'static str {
        "json.gz"
    }
    fn content_type(&self) -> &'static str {
        "application/x-ndjson"
    }
    fn encode(&self, ndjson: &[u8]) -> std::io::Result<Vec<u8>> {
        // NDJSON of readings compresses to about a tenth.
        let mut gz =
            flate2::write::GzEncoder::new(Vec::with_capacity(ndjson.len() / 8), self.level);
        gz.write_all(ndjson)?;
        gz.finish()
    }
}

/// Plain newline-delimited JSON: for quarantine, which people read by hand.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ndjson;

impl ObjectWriter for Ndjson {
    fn extension(&self) -> &'static str {
        "json"
    }
    fn content_type(&self) -> &'static str {
        "application/x-ndjson"
    }
    fn encode(&self, ndjson: &[u8]) -> std::io::Result<Vec<u8>> {
        Ok(ndjson.to_vec())
    }
}

/// What kind of failure a store reported. Every kind is retryable from the data's point of view:
/// the data is fine, the destination was not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkErrorKind {
    /// 503 SlowDown, throttling codes.
    Throttled,
    /// A timeout while connecting or waiting for the answer.
    Timeout,
    /// No connection, or a 5xx answer.
    Unavailable,
    /// The store refused the request (access denied, no such bucket): needs an operator.
    Rejected,
    /// The writer could not encode the object.
    Encode,
}

/// A failed put, with the object it concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("put s3://{bucket}/{key} failed ({kind:?}): {message}")]
pub struct SinkError {
    pub bucket: String,
    pub key: String,
    pub kind: SinkErrorKind,
    pub message: String,
}

/// One object to put.
#[derive(Debug, Clone)]
pub struct PutObject {
    pub bucket: String,
    pub key: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

/// Puts whole objects.
pub trait ObjectStore: Send + Sync {
    fn put(&self, object: PutObject) -> BoxFuture<'_, Result<(), SinkError>>;
}

/// S3 through the shared SDK client.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client) -> Self {
        S3Store { client }
    }
}

/// Classifies an SDK error by its kind and status code, never by its message text.
pub fn classify<E, R>(err: &SdkError<E, R>) -> SinkErrorKind
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
    R: std::fmt::Debug,
{
    match err {
        SdkError::TimeoutError(_) => SinkErrorKind::Timeout,
        SdkError::DispatchFailure(f) if f.is_timeout() => SinkErrorKind::Timeout,
        SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => SinkErrorKind::Unavailable,
        SdkError::ServiceError(e) => {
            let code = e.err().code().unwrap_or_default();
            if matches!(
                code,
                "SlowDown"
                    | "Throttling"
                    | "ThrottlingException"
                    | "RequestLimitExceeded"
                    | "TooManyRequestsException"
            ) {
                SinkErrorKind::Throttled
            } else if matches!(
                code,
                "InternalError" | "ServiceUnavailable" | "RequestTimeout"
            ) {
                SinkErrorKind::Unavailable
            } else {
                SinkErrorKind::Rejected
            }
        }
        _ => SinkErrorKind::Unavailable,
    }
}

impl ObjectStore for S3Store {
    fn put(&self, object: PutObject) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            let PutObject {
                bucket,
                key,
                body,
                content_type,
            } = object;
            let result = self
                .client
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .content_type(content_type)
                .body(ByteStream::from(body))
                .send()
                .await;
            result.map(|_| ()).map_err(|e| SinkError {
                kind: classify(&e),
                message: crate::error::chain(&e),
                bucket,
                key,
            })
        })
    }
}

/// Objects by (bucket, key).
pub type ObjectMap = BTreeMap<(String, String), Vec<u8>>;

/// An in-memory object store: clones share their objects, so a test or benchmark keeps one
/// clone to read what the code under test put through another.
#[derive(Clone, Default)]
pub struct MemoryStore {
    objects: Arc<Mutex<ObjectMap>>,
    puts: Arc<Mutex<u64>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn objects(&self) -> ObjectMap {
        self.objects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Number of successful puts (overwrites included).
    pub fn put_count(&self) -> u64 {
        *self.puts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ObjectStore for MemoryStore {
    fn put(&self, object: PutObject) -> BoxFuture<'_, Result<(), SinkError>> {
        Box::pin(async move {
            *self.puts.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            self.objects
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((object.bucket, object.key), object.body);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn partitions_are_hive_style() {
        let t = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(hourly_partition(t), "dt=2026-01-02/hour=03");
        assert_eq!(daily_partition(t), "dt=2026-01-02");
    }

    #[test]
    fn json_lines_lead_with_their_fields() {
        let v = serde_json::json!({"a": 1});
        assert_eq!(
            json_line(&[("_id", Lead::Str("x\"y")), ("_line", Lead::Int(7))], &v).unwrap(),
            br#"{"_id":"x\"y","_line":7,"a":1}"#
        );
        assert_eq!(
            json_line(&[("_id", Lead::Str("x"))], &serde_json::json!({})).unwrap(),
            br#"{"_id":"x"}"#
        );
        assert_eq!(
            json_line(&[("_id", Lead::Str("x"))], &5).unwrap(),
            br#"{"_id":"x","value":5}"#
        );
        assert_eq!(json_line(&[], &v).unwrap(), br#"{"a":1}"#);
        // Appending keeps what is already in the buffer, in every shape.
        let mut out = b"prev\n".to_vec();
        write_json_line(&mut out, &[], &v).unwrap();
        write_json_line(&mut out, &[("_id", Lead::Str("y"))], &3).unwrap();
        assert_eq!(out, b"prev\n{\"a\":1}{\"_id\":\"y\",\"value\":3}");
    }

    #[test]
    fn a_value_that_fails_to_serialise_leaves_the_buffer_as_it_was() {
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), 3); // a map with non-string keys is not JSON
        let mut out = b"kept".to_vec();
        assert!(write_json_line(&mut out, &[("_id", Lead::Str("x"))], &bad).is_err());
        assert_eq!(out, b"kept");
    }

    #[test]
    fn location_joins_prefix() {
        assert_eq!(
            Location::new("b", "/curated/iot/").key("x.json"),
            "curated/iot/x.json"
        );
        assert_eq!(Location::new("b", "").key("x.json"), "x.json");
    }

    #[test]
    fn gzip_ndjson_round_trips() {
        let bytes = NdjsonGzip::default()
            .encode(b"{\"a\":1}\n{\"a\":2}\n")
            .unwrap();
        assert_eq!(&bytes[..2], &crate::records::GZIP_MAGIC);
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"a\":2}\n");
    }

    #[tokio::test]
    async fn memory_store_overwrites_and_counts_puts() {
        let store = MemoryStore::new();
        let put = |key: &str, body: &[u8]| PutObject {
            bucket: "b".into(),
            key: key.into(),
            body: body.to_vec(),
            content_type: "text/plain",
        };
        store.put(put("k", b"1")).await.unwrap();
        store.clone().put(put("k", b"2")).await.unwrap();
        let objects = store.objects();
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[&("b".to_string(), "k".to_string())], b"2");
        assert_eq!(store.put_count(), 2);
    }
}
