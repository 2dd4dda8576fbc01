//! A Kinesis event through the readings pipeline (the lean model, decoding, transform, sink).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    runnel::testing::fuzz::batch_event(
        data,
        runnel::source::Kinesis,
        kinesis_processor::IotTransform,
    );
});
