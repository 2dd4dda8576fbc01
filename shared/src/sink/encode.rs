//! Encoders: NDJSON lines → the bytes of an object, whole or streamed in parts.
//!
//! Stream pipelines encode a run of lines with one call ([`Encoder::encode`]: one compressor call
//! over the run is several times faster than one per line). Object ingest writes outputs larger
//! than memory through [`Encoder::stream`], taking the encoded bytes out whenever a part is full.
//! Both go through the same encoder and decode to the same lines whichever path wrote them (a
//! whole run under [`STORED_BELOW`] bytes is stored uncompressed in its gzip member). Parquet
//! can follow behind the same trait.

use std::cell::RefCell;
use std::io::Write;

use flate2::{Compress, Compression, Crc, FlushCompress, Status};

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
        gzip(ndjson, self.level)
    }
    fn stream(&self, capacity: usize) -> Box<dyn EncodeStream> {
        Box::new(GzipStream(flate2::write::GzEncoder::new(
            Vec::with_capacity(capacity),
            self.level,
        )))
    }
}

thread_local! {
    /// A compressor kept for the thread's next run: a new one allocates and clears about 300 KB
    /// of tables, which cost more than compressing a run of a few lines (one object per message
    /// for SQS).
    static COMPRESSOR: RefCell<Option<(Compression, Compress)>> = const { RefCell::new(None) };
}

/// Runs shorter than this are stored in their gzip member as they are: compressed, a run of one
/// reading (an SQS message's object) would be some hundred bytes smaller, while getting a
/// compressor ready for it clears its 128 KiB hash table (about two thirds of that path's
/// instructions, `source-paths --only sqs` under callgrind).
pub(crate) const STORED_BELOW: usize = 1024;
const _: () = assert!(
    STORED_BELOW <= 65_535,
    "a stored deflate block holds at most 64 KiB"
);

/// One gzip member of `data`, as `flate2::write::GzEncoder` writes it (same header, deflate
/// stream and trailer), with the thread's compressor reset instead of a new one. A run shorter
/// than [`STORED_BELOW`] is written as `GzEncoder` writes it at level 0: one stored block.
fn gzip(data: &[u8], level: Compression) -> std::io::Result<Vec<u8>> {
    if data.len() < STORED_BELOW {
        return Ok(stored_gzip(data));
    }
    let kept = COMPRESSOR.with(|c| c.borrow_mut().take());
    let mut compress = match kept {
        Some((kept_level, mut compress)) if kept_level == level => {
            compress.reset();
            compress
        }
        _ => Compress::new(level, false),
    };
    // NDJSON of readings compresses to about a tenth.
    let mut out = Vec::with_capacity(data.len() / 8 + 64);
    out.extend_from_slice(&gzip_header(level));
    loop {
        let read = compress.total_in() as usize;
        let status = compress
            .compress_vec(&data[read..], &mut out, FlushCompress::Finish)
            .map_err(std::io::Error::other)?;
        if status == Status::StreamEnd {
            break;
        }
        out.reserve(out.capacity().max(4096));
    }
    gzip_trailer(&mut out, data);
    COMPRESSOR.with(|c| *c.borrow_mut() = Some((level, compress)));
    Ok(out)
}

/// `GzEncoder`'s member header for `level` (no name, no time, OS "unknown").
fn gzip_header(level: Compression) -> [u8; 10] {
    let xfl = if level.level() >= Compression::best().level() {
        2
    } else if level.level() <= Compression::fast().level() {
        4
    } else {
        0
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// CRC-32 and length of the uncompressed data, ending a member.
fn gzip_trailer(out: &mut Vec<u8>, data: &[u8]) {
    let mut crc = Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&crc.amount().to_le_bytes());
}

/// A gzip member holding `data` (under 64 KiB) in one final stored deflate block (RFC 1951
/// 3.2.4: the block header byte, then the length and its complement, then the bytes).
fn stored_gzip(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).expect("only runs under STORED_BELOW are stored");
    let mut out = Vec::with_capacity(data.len() + 23);
    out.extend_from_slice(&gzip_header(Compression::none()));
    out.push(1);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    gzip_trailer(&mut out, data);
    out
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

    /// A reused compressor writes the bytes a new one writes, call after call and across
    /// levels, with `GzEncoder`'s header; large and incompressible inputs included.
    #[test]
    fn a_reused_compressor_writes_what_a_new_one_writes() {
        let mut noise = Vec::new();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..300_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            noise.push(x as u8);
        }
        let lines: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
            .collect();
        for level in [
            Compression::fast(),
            Compression::new(6),
            Compression::best(),
        ] {
            let encoder = NdjsonGzip { level };
            let just_long = vec![b'x'; STORED_BELOW];
            for input in [&just_long[..], &lines, &noise] {
                let first = encoder.encode(input).unwrap();
                COMPRESSOR.with(|c| c.borrow_mut().take());
                let fresh = encoder.encode(input).unwrap();
                let again = encoder.encode(input).unwrap();
                assert!(first == fresh && fresh == again, "level {level:?}");
                let mut text = Vec::new();
                flate2::read::MultiGzDecoder::new(&first[..])
                    .read_to_end(&mut text)
                    .unwrap();
                assert!(text == input, "level {level:?}, {} bytes", input.len());
                let mut reference = flate2::write::GzEncoder::new(Vec::new(), level);
                reference.write_all(input).unwrap();
                assert_eq!(first[..10], reference.finish().unwrap()[..10]);
            }
        }
    }

    /// A short run is the member `GzEncoder` writes at level 0, whatever the configured level.
    #[test]
    fn short_runs_are_stored_as_gzip_encoder_stores_them() {
        for len in [0, 1, 8, 300, STORED_BELOW - 1] {
            let input: Vec<u8> = (0..len).map(|i| b"{\"a\":1}\n"[i % 8]).collect();
            let mut reference = flate2::write::GzEncoder::new(Vec::new(), Compression::none());
            reference.write_all(&input).unwrap();
            let reference = reference.finish().unwrap();
            for level in [
                Compression::fast(),
                Compression::new(6),
                Compression::best(),
            ] {
                let ours = NdjsonGzip { level }.encode(&input).unwrap();
                assert_eq!(ours, reference, "{len} bytes, level {level:?}");
                assert_eq!(gunzip(&ours).as_bytes(), &input[..]);
            }
        }
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
