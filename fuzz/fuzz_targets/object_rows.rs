//! An object's CSV or NDJSON rows (gzip or not) read as s3-ingest's transaction rows.
#![no_main]
use runnel::records::Validate;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    runnel::testing::fuzz::object_rows::<s3_ingest::TransactionRow>(data, &|row| row.validate());
});
