//! Encoders: NDJSON lines → the bytes of an object, whole or streamed in parts.
//!
//! Stream pipelines encode a run of lines with one call ([`Encoder::encode`]: one compressor call
//! over the run is several times faster than one per line). Object ingest writes outputs larger
//! than memory through [`Encoder::stream`], taking the encoded bytes out whenever a part is full.
//! Both go through the same encoder, so a pipeline's outputs look the same whichever path wrote
//! them. Parquet can follow behind the same trait.

use std::io::Write;

/// Turns NDJSON into an object's bytes.
pub trait Encoder: Send + Sync {
    /// File name ending, without the dot (e.g. `json.gz`).
    fn extension(&self) -> &'static str;
    /// The object's `Content-Type`.
    fn content_type(&self) -> &'static str;
    /// Encodes whole lines, each ending with `\n`.
    fn encode(&self, ndjson: &[u8]) -> std::io::Result<Vec<u8>>;
    /// A streaming encoder whose buffer starts with `capacity` bytes.
    fn stream(&self, capacity: usize) -> Box<dyn EncodeStream>;
}

/// One object being encoded line by line.
pub trait EncodeStream: Send {
    /// Appends NDJSON (whole lines).
    fn write(&mut self, ndjson: &[u8]) -> std::io::Result<()>;
    /// Encoded bytes waiting to be taken.
    fn buffered(&self) -> usize;
    /// Takes the encoded bytes so far (a part of the object).
    fn take(&mut self) -> Vec<u8>;
    /// Ends the object and returns its last bytes.
    fn finish(self: Box<Self>) -> std::io::Result<Vec<u8>>;
}

/// Newline-delimited JSON, gzip-compressed. Athena, Glue and Spark read `.json.gz` as is.
#[derive(Debug, Clone, Copy)]
pub struct NdjsonGzip {
    /// Compression level.
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

const NDJSON: &str = "application/x-ndjson";

impl Encoder for NdjsonGzip {
    fn extension(&self) -> &'static str {
        "json.gz"
    }
    fn content_type(&self) -> &'static str {
        NDJSON
    }
    fn encode(&self, ndjson: &[u8]) -> std::io::Result<Vec<u8>> {
        // NDJSON of readings compresses to about a tenth.
        let mut gz =
            flate2::write::GzEncoder::new(Vec::with_capacity(ndjson.len() / 8), self.level);
        gz.write_all(ndjson)?;
        gz.finish()
    }
    fn stream(&self, capacity: usize) -> Box<dyn EncodeStream> {
        Box::new(GzipStream(flate2::write::GzEncoder::new(
            Vec::with_capacity(capacity),
            self.level,
        )))
    }
}

struct GzipStream(flate2::write::GzEncoder<Vec<u8>>);

impl EncodeStream for GzipStream {
    fn write(&mut self, ndjson: &[u8]) -> std::io::Result<()> {
        self.0.write_all(ndjson)
    }
    fn buffered(&self) -> usize {
        self.0.get_ref().len()
    }
    fn take(&mut self) -> Vec<u8> {
        // The compressor keeps its state; only the bytes it has emitted move out.
        std::mem::take(self.0.get_mut())
    }
    fn finish(self: Box<Self>) -> std::io::Result<Vec<u8>> {
        self.0.finish()
    }
}

/// Plain newline-delimited JSON: for quarantine, which people read by hand.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ndjson;

impl Encoder for Ndjson {
    fn extension(&self) -> &'static str {
        "json"
    }
    fn content_type(&self) -> &'static str {
        NDJSON
    }
    fn encode(&self, ndjson: &[u8]) -> std::io::Result<Vec<u8>> {
        Ok(ndjson.to_vec())
    }
    fn stream(&self, capacity: usize) -> Box<dyn EncodeStream> {
        Box::new(PlainStream(Vec::with_capacity(capacity)))
    }
}

struct PlainStream(Vec<u8>);

impl EncodeStream for PlainStream {
    fn write(&mut self, ndjson: &[u8]) -> std::io::Result<()> {
        self.0.extend_from_slice(ndjson);
        Ok(())
    }
    fn buffered(&self) -> usize {
        self.0.len()
    }
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
    fn finish(self: Box<Self>) -> std::io::Result<Vec<u8>> {
        Ok(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gunzip(bytes: &[u8]) -> String {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn gzip_ndjson_round_trips() {
        let bytes = NdjsonGzip::default()
            .encode(b"{\"a\":1}\n{\"a\":2}\n")
            .unwrap();
        assert_eq!(&bytes[..2], &crate::records::GZIP_MAGIC);
        assert_eq!(gunzip(&bytes), "{\"a\":1}\n{\"a\":2}\n");
    }

    #[test]
    fn streamed_parts_concatenate_to_one_gzip_member() {
        for encoder in [&NdjsonGzip::default() as &dyn Encoder, &Ndjson] {
            let mut stream = encoder.stream(64);
            let mut object = Vec::new();
            let mut expected = String::new();
            for i in 0..2_000 {
                let line = format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 50));
                stream.write(line.as_bytes()).unwrap();
                expected.push_str(&line);
                if stream.buffered() >= 4096 {
                    object.extend(stream.take());
                }
            }
            object.extend(stream.finish().unwrap());
            let text = if encoder.extension().ends_with(".gz") {
                gunzip(&object)
            } else {
                String::from_utf8(object).unwrap()
            };
            assert_eq!(text, expected, "{}", encoder.extension());
        }
    }
}
