//! Output objects written while rows stream in: each output is compressed into a buffer that is
//! shipped as a multipart-upload part whenever it reaches the part size, so memory stays at a few
//! parts however large the input is. An output that never fills a part is written with one put.

use std::collections::HashMap;
use std::io::Write;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use tokio::sync::mpsc;

/// Part size: above S3's 5 MiB minimum for all but the last part.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// A piece of an output object on its way to S3.
#[derive(Debug)]
pub struct Chunk {
    pub key: String,
    pub content_type: &'static str,
    pub data: Vec<u8>,
    pub last: bool,
}

/// One finished output object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Written {
    pub key: String,
    pub bytes: u64,
    pub parts: u32,
}

struct Open {
    upload_id: String,
    parts: Vec<CompletedPart>,
    bytes: u64,
}

/// Receives chunks and writes them to `bucket`. On the first failure it aborts every open
/// multipart upload (no orphaned parts are billed) and returns the error.
pub async fn uploader(
    s3: aws_sdk_s3::Client,
    bucket: String,
    mut rx: mpsc::Receiver<Chunk>,
) -> Result<Vec<Written>, String> {
    let mut open: HashMap<String, Open> = HashMap::new();
    let mut done = Vec::new();
    let result: Result<(), String> = async {
        while let Some(chunk) = rx.recv().await {
            let single = chunk.last && !open.contains_key(&chunk.key);
            if single {
                let bytes = chunk.data.len() as u64;
                s3.put_object()
                    .bucket(&bucket)
                    .key(&chunk.key)
                    .content_type(chunk.content_type)
                    .body(ByteStream::from(chunk.data))
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "put s3://{bucket}/{}: {}",
                            chunk.key,
                            crate::error::chain(&e)
                        )
                    })?;
                done.push(Written {
                    key: chunk.key,
                    bytes,
                    parts: 1,
                });
                continue;
            }
            if !open.contains_key(&chunk.key) {
                let created = s3
                    .create_multipart_upload()
                    .bucket(&bucket)
                    .key(&chunk.key)
                    .content_type(chunk.content_type)
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "start upload s3://{bucket}/{}: {}",
                            chunk.key,
                            crate::error::chain(&e)
                        )
                    })?;
                let upload_id = created.upload_id().unwrap_or_default().to_string();
                open.insert(
                    chunk.key.clone(),
                    Open {
                        upload_id,
                        parts: Vec::new(),
                        bytes: 0,
                    },
                );
            }
            let state = open.get_mut(&chunk.key).expect("inserted above");
            let number = state.parts.len() as i32 + 1;
            state.bytes += chunk.data.len() as u64;
            let part = s3
                .upload_part()
                .bucket(&bucket)
                .key(&chunk.key)
                .upload_id(&state.upload_id)
                .part_number(number)
                .body(ByteStream::from(chunk.data))
                .send()
                .await
                .map_err(|e| {
                    format!(
                        "upload part {number} of s3://{bucket}/{}: {}",
                        chunk.key,
                        crate::error::chain(&e)
                    )
                })?;
            state.parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag().map(str::to_string))
                    .build(),
            );
            if chunk.last {
                let state = open.remove(&chunk.key).expect("present");
                let parts = state.parts.len() as u32;
                s3.complete_multipart_upload()
                    .bucket(&bucket)
                    .key(&chunk.key)
                    .upload_id(&state.upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(state.parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(|e| {
                        format!(
                            "complete upload s3://{bucket}/{}: {}",
                            chunk.key,
                            crate::error::chain(&e)
                        )
                    })?;
                done.push(Written {
                    key: chunk.key,
                    bytes: state.bytes,
                    parts,
                });
            }
        }
        Ok(())
    }
    .await;
    // On failure, or when the sender stopped before finishing some outputs, abort what is open
    // rather than leave billed parts behind.
    let result = result.and_then(|()| match open.is_empty() {
        true => Ok(()),
        false => Err("the row reader stopped before finishing its outputs".to_string()),
    });
    if result.is_err() {
        for (key, state) in open {
            let _ = s3
                .abort_multipart_upload()
                .bucket(&bucket)
                .key(&key)
                .upload_id(&state.upload_id)
                .send()
                .await;
        }
    }
    result.map(|()| done)
}

enum Sink {
    // Boxed: the compressor state is ten times the size of the other variant.
    Gzip(Box<flate2::write::GzEncoder<Vec<u8>>>),
    Plain(Vec<u8>),
}

/// The blocking side: one output object being filled with lines.
pub struct PartWriter {
    key: String,
    content_type: &'static str,
    sink: Sink,
    pub lines: u64,
}

impl PartWriter {
    pub fn gzip(key: String) -> Self {
        PartWriter {
            key,
            content_type: "application/x-ndjson",
            sink: Sink::Gzip(Box::new(flate2::write::GzEncoder::new(
                Vec::with_capacity(PART_SIZE + 64 * 1024),
                flate2::Compression::fast(),
            ))),
            lines: 0,
        }
    }

    pub fn plain(key: String) -> Self {
        PartWriter {
            key,
            content_type: "application/x-ndjson",
            sink: Sink::Plain(Vec::with_capacity(64 * 1024)),
            lines: 0,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    fn buffer(&mut self) -> &mut Vec<u8> {
        match &mut self.sink {
            Sink::Gzip(g) => g.get_mut(),
            Sink::Plain(v) => v,
        }
    }

    /// Adds a line; ships a part through `tx` when the buffer is full.
    pub fn push(&mut self, line: &[u8], tx: &mpsc::Sender<Chunk>) -> Result<(), String> {
        let write = match &mut self.sink {
            Sink::Gzip(g) => g.write_all(line).and_then(|_| g.write_all(b"\n")),
            Sink::Plain(v) => {
                v.extend_from_slice(line);
                v.push(b'\n');
                Ok(())
            }
        };
        write.map_err(|e| format!("compress {}: {e}", self.key))?;
        self.lines += 1;
        if self.buffer().len() >= PART_SIZE {
            let data = std::mem::take(self.buffer());
            self.send(data, false, tx)?;
        }
        Ok(())
    }

    fn send(&self, data: Vec<u8>, last: bool, tx: &mpsc::Sender<Chunk>) -> Result<(), String> {
        tx.blocking_send(Chunk {
            key: self.key.clone(),
            content_type: self.content_type,
            data,
            last,
        })
        .map_err(|_| "the uploader stopped (see its error)".to_string())
    }

    /// Flushes the rest as the last part.
    pub fn finish(self, tx: &mpsc::Sender<Chunk>) -> Result<(), String> {
        let key = self.key.clone();
        let content_type = self.content_type;
        let data = match self.sink {
            Sink::Gzip(g) => g.finish().map_err(|e| format!("compress {key}: {e}"))?,
            Sink::Plain(v) => v,
        };
        tx.blocking_send(Chunk {
            key,
            content_type,
            data,
            last: true,
        })
        .map_err(|_| "the uploader stopped (see its error)".to_string())
    }
}
