//! Output objects written while rows stream in: each output is encoded into a buffer that is
//! shipped as a multipart-upload part whenever it reaches the part size, so memory stays at a few
//! parts however large the input is. An output that never fills a part is written with one put.
//! Everything goes through the pipeline's [`ObjectStore`] and [`Encoder`], so ingest writes the
//! same objects as the stream path and runs against the in-memory store as well as S3.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::sink::{EncodeStream, Encoder, ObjectStore, PutObject, SinkError, UploadedPart};

/// Part size: above S3's 5 MiB minimum for all but the last part.
pub const PART_SIZE: usize = 8 * 1024 * 1024;

/// A piece of an output object on its way to the store.
#[derive(Debug)]
pub struct Chunk {
    /// The object's key.
    pub key: String,
    /// The object's `Content-Type`.
    pub content_type: &'static str,
    /// Encoded bytes.
    pub data: Vec<u8>,
    /// Whether this is the object's last piece.
    pub last: bool,
}

/// One finished output object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Written {
    /// The object's key.
    pub key: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// How many parts it was written in.
    pub parts: u32,
}

/// Why the outputs of an object could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// The store failed a call.
    #[error(transparent)]
    Store(#[from] SinkError),
    /// The row reader stopped before finishing some outputs (its own error says why).
    #[error("the row reader stopped before finishing its outputs")]
    Unfinished,
}

struct Open {
    upload_id: String,
    parts: Vec<UploadedPart>,
    bytes: u64,
}

/// Receives chunks and writes them to `bucket`. On the first failure it aborts every open
/// multipart upload (no orphaned parts are billed) and returns the error.
pub async fn uploader(
    store: Arc<dyn ObjectStore>,
    bucket: String,
    mut rx: mpsc::Receiver<Chunk>,
) -> Result<Vec<Written>, UploadError> {
    let mut open: HashMap<String, Open> = HashMap::new();
    let mut done = Vec::new();
    let result: Result<(), SinkError> = async {
        while let Some(chunk) = rx.recv().await {
            if chunk.last && !open.contains_key(&chunk.key) {
                let bytes = chunk.data.len() as u64;
                store
                    .put(PutObject {
                        bucket: bucket.clone(),
                        key: chunk.key.clone(),
                        body: chunk.data,
                        content_type: chunk.content_type,
                    })
                    .await?;
                done.push(Written {
                    key: chunk.key,
                    bytes,
                    parts: 1,
                });
                continue;
            }
            if !open.contains_key(&chunk.key) {
                let upload_id = store
                    .start_upload(&bucket, &chunk.key, chunk.content_type)
                    .await?;
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
            let part = store
                .upload_part(&bucket, &chunk.key, &state.upload_id, number, chunk.data)
                .await?;
            state.parts.push(part);
            if chunk.last {
                let state = open.remove(&chunk.key).expect("present");
                let parts = state.parts.len() as u32;
                store
                    .complete_upload(&bucket, &chunk.key, &state.upload_id, state.parts)
                    .await?;
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
    let result = match result {
        Err(e) => Err(UploadError::Store(e)),
        Ok(()) if !open.is_empty() => Err(UploadError::Unfinished),
        Ok(()) => Ok(done),
    };
    if result.is_err() {
        for (key, state) in open {
            if let Err(e) = store.abort_upload(&bucket, &key, &state.upload_id).await {
                tracing::warn!(error = %crate::error::chain(&e), "could not abort a multipart upload; a lifecycle rule removes it");
            }
        }
    }
    result
}

/// Why a part writer stopped.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    /// The encoder failed.
    #[error("encode {key}")]
    Encode {
        /// The output's key.
        key: String,
        /// The encoder's error.
        #[source]
        source: std::io::Error,
    },
    /// The uploader is gone (its own error says why).
    #[error("the uploader stopped (see its error)")]
    UploaderStopped,
}

/// Lines gathered before one encoder call: a compressor called twice per short line spends most
/// of its time on call overhead and buffer moves (measured: `ingest-throughput`, BENCHMARKS.md).
const ENCODE_BATCH: usize = 64 * 1024;

/// The blocking side: one output object being filled with lines.
pub struct PartWriter {
    key: String,
    content_type: &'static str,
    stream: Box<dyn EncodeStream>,
    /// Lines not yet given to the encoder.
    pending: Vec<u8>,
    /// Lines written so far.
    pub lines: u64,
}

impl PartWriter {
    /// An output under `key`, encoded by `encoder`.
    pub fn new(key: String, encoder: &dyn Encoder) -> Self {
        PartWriter {
            key,
            content_type: encoder.content_type(),
            stream: encoder.stream(64 * 1024),
            pending: Vec::with_capacity(ENCODE_BATCH + 4096),
            lines: 0,
        }
    }

    /// Adds a line (without its newline); ships a part through `tx` when the buffer is full.
    pub fn push(&mut self, line: &[u8], tx: &mpsc::Sender<Chunk>) -> Result<(), PartError> {
        let encode = |source| PartError::Encode {
            key: self.key.clone(),
            source,
        };
        self.pending.extend_from_slice(line);
        self.pending.push(b'\n');
        self.lines += 1;
        if self.pending.len() < ENCODE_BATCH {
            return Ok(());
        }
        self.stream.write(&self.pending).map_err(encode)?;
        self.pending.clear();
        if self.stream.buffered() >= PART_SIZE {
            let data = self.stream.take();
            self.send(data, false, tx)?;
        }
        Ok(())
    }

    fn send(&self, data: Vec<u8>, last: bool, tx: &mpsc::Sender<Chunk>) -> Result<(), PartError> {
        tx.blocking_send(Chunk {
            key: self.key.clone(),
            content_type: self.content_type,
            data,
            last,
        })
        .map_err(|_| PartError::UploaderStopped)
    }

    /// Flushes the rest as the last part.
    pub fn finish(self, tx: &mpsc::Sender<Chunk>) -> Result<(), PartError> {
        let PartWriter {
            key,
            content_type,
            mut stream,
            pending,
            ..
        } = self;
        let encode = |source| PartError::Encode {
            key: key.clone(),
            source,
        };
        stream.write(&pending).map_err(encode)?;
        let data = stream.finish().map_err(encode)?;
        tx.blocking_send(Chunk {
            key,
            content_type,
            data,
            last: true,
        })
        .map_err(|_| PartError::UploaderStopped)
    }
}
