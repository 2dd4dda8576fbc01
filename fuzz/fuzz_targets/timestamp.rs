//! Event times as text (RFC 3339 and the other accepted forms) and as JSON numbers.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| runnel::testing::fuzz::timestamp(data));
