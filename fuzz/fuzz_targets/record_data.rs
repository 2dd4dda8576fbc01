//! A record's bytes: KPL aggregates, gzip, CloudWatch Logs payloads, JSON and NDJSON.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| runnel::testing::fuzz::record_data(data));
