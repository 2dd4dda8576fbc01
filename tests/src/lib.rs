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
    let mut keys = Vec::new();
    let mut pages = aws
        .s3()
        .list_objects_v2()
        .bucket(bucket)
        .prefix(prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.unwrap_or_else(|e| panic!("list s3://{bucket}/{prefix}: {e:?}"));
        keys.extend(
            page.contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_string)),
        );
    }
    keys.sort();
    keys
}
