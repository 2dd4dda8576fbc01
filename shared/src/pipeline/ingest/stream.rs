//! Streaming one object: source bytes → rows → transform → encoded outputs in parts, on a
//! blocking thread, while uploader tasks write the parts through the store.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use tokio::sync::mpsc;

use super::keys::{day_start, output_stem, short_etag};
use super::object::{Ingest, IngestError};
use super::reader::{format_from_key, read_rows, ObjectProblem, ReadError, Row, SourceReader};
use super::upload::{uploader, Chunk, PartError, PartWriter, UploadError, Written};
use crate::engine::apply::{self, Scratch};
use crate::engine::quarantine::{QuarantinedEntry, RowOrigin};
use crate::records::BadData;
use crate::s3event::ObjectRef;
use crate::sink::{Encoder, LeadField, Ndjson, Partitioner};
use crate::transform::{default_document_id, RecordContext, Transform, TransformError};

/// Row counts and checksum of a streamed object.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCounts {
    /// Rows read.
    pub rows_in: u64,
    /// Output documents written.
    pub rows_out: u64,
    /// Rows quarantined.
    pub rows_quarantined: u64,
    /// CRC-32 of the object's stored bytes.
    pub crc: u32,
}

/// What streaming an object wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Streamed {
    /// Curated outputs.
    pub outputs: Vec<Written>,
    /// The quarantine object of bad rows, if any.
    pub quarantine: Option<Written>,
    /// Counts and checksum.
    pub counts: ReadCounts,
}

/// Why the blocking reader stopped early.
pub(super) enum Stop {
    Part(PartError),
    Transient { line: u64, reason: String },
    Read(std::io::Error),
}

/// The row callback's state: open outputs, counts and reused buffers.
pub(super) struct Rows<T: Transform> {
    transform: Arc<T>,
    partitioner: Arc<dyn Partitioner<T::Output>>,
    encoder: Arc<dyn Encoder>,
    source: Arc<str>,
    /// `source` as a JSON string, escaped once for every line.
    source_json: String,
    etag: String,
    /// Event time of outputs whose transform names none: the object's day.
    day_start: chrono::DateTime<chrono::Utc>,
    /// `<output prefix>/` and `-<stem>-<etag>.<ext>` around each partition.
    key_prefix: String,
    pub(super) key_suffix: String,
    quarantine_key: String,
    pub(super) writers: BTreeMap<String, PartWriter>,
    quarantine: Option<PartWriter>,
    pub(super) counts: ReadCounts,
    /// Redriving: a bad row is not quarantined again, its reason is kept here instead.
    pub(super) redriving: bool,
    pub(super) still_bad: Option<String>,
    scratch: Scratch<T::Output>,
    /// The id of a quarantined row.
    id: String,
    line: Vec<u8>,
    /// Partition paths of the row's outputs, one after the other, and each output's path and
    /// line ranges (in `paths` and `line`).
    paths: String,
    placed: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
    pub(super) stop: Option<Stop>,
    /// Awaits a transform's lookups from the blocking reader thread.
    runtime: tokio::runtime::Handle,
}

impl<T: Transform> Rows<T> {
    /// The state for rows of `obj` at version `etag`, of `day`, writing outputs named
    /// `<stem>-<etag>.<ext>`.
    pub(super) fn new(ingest: &Ingest<T>, obj: &ObjectRef, etag: &str, day: &str) -> Self {
        let output = &ingest.config.output;
        let stem = output_stem(&obj.key);
        let tag = short_etag(etag);
        let source = obj.uri();
        Rows {
            transform: ingest.transform.clone(),
            partitioner: ingest.sink.partitioner.clone(),
            encoder: ingest.sink.encoder.clone(),
            source: Arc::from(source.as_str()),
            source_json: serde_json::to_string(&source).expect("a string serialises"),
            etag: etag.to_string(),
            day_start: day_start(day).unwrap_or_default(),
            key_prefix: output.curated.key(""),
            key_suffix: format!("{stem}-{tag}.{}", ingest.sink.encoder.extension()),
            quarantine_key: output
                .quarantine
                .key(&format!("dt={day}/{stem}-{tag}.json")),
            writers: BTreeMap::new(),
            quarantine: None,
            counts: ReadCounts::default(),
            redriving: false,
            still_bad: None,
            scratch: Scratch::default(),
            id: String::with_capacity(96),
            line: Vec::with_capacity(1024),
            paths: String::with_capacity(64),
            placed: Vec::with_capacity(1),
            stop: None,
            runtime: tokio::runtime::Handle::current(),
        }
    }

    pub(super) fn on_row(
        &mut self,
        row: Row<'_, T::Input>,
        tx: &mpsc::Sender<Chunk>,
        qtx: &mpsc::Sender<Chunk>,
    ) -> Result<(), PartError> {
        self.counts.rows_in += 1;
        // The line number as text, on the stack: the row's position.
        let mut digits = itoa::Buffer::new();
        let position = digits.format(row.line);
        let source = self.source.clone();
        let ctx = RecordContext {
            stream: &source,
            position,
            index: 0,
            partition_key: None,
            arrival: None,
        };
        let input = match row.parsed {
            Ok(input) => input,
            Err(bad) => return self.quarantine_row(&ctx, row.raw, row.header, &bad, qtx),
        };
        let input = match T::ENRICHES {
            false => input,
            true => match self.enrich(input, &ctx) {
                Ok(Ok(input)) => input,
                Ok(Err(reason)) => {
                    self.stop = Some(Stop::Transient {
                        line: row.line,
                        reason,
                    });
                    return Ok(());
                }
                Err(bad) => return self.quarantine_row(&ctx, row.raw, row.header, &bad, qtx),
            },
        };
        let bad = match apply::apply(self.transform.as_ref(), input, &ctx, &mut self.scratch) {
            Ok(None) => None,
            Ok(Some(reason)) => {
                self.stop = Some(Stop::Transient {
                    line: row.line,
                    reason,
                });
                return Ok(());
            }
            Err(bad) => Some(bad),
        };
        // Serialise every output before writing any, so a row is written whole or quarantined.
        self.line.clear();
        self.paths.clear();
        self.placed.clear();
        let lead = [
            ("_source", LeadField::Json(&self.source_json)),
            ("_line", LeadField::Int(row.line)),
        ];
        let (paths, placed) = (&mut self.paths, &mut self.placed);
        let bad = bad.or_else(|| {
            apply::write_lines(
                self.transform.as_ref(),
                self.partitioner.as_ref(),
                &ctx,
                self.day_start,
                &lead,
                &mut self.scratch,
                &mut self.line,
                |_, path, range| {
                    let at = paths.len();
                    paths.push_str(path);
                    placed.push((at..paths.len(), range));
                },
            )
            .err()
        });
        if let Some(bad) = bad {
            return self.quarantine_row(&ctx, row.raw, row.header, &bad, qtx);
        }
        for (path, range) in &self.placed {
            let partition = &self.paths[path.clone()];
            // Looked up by `&str`: a key is allocated only for a partition not seen before.
            let writer = match self.writers.get_mut(partition) {
                Some(writer) => writer,
                None => {
                    let key = format!("{}{partition}/{}", self.key_prefix, self.key_suffix);
                    let writer = PartWriter::new(key, self.encoder.as_ref());
                    self.writers.entry(partition.to_string()).or_insert(writer)
                }
            };
            writer.push(&self.line[range.clone()], tx)?;
            self.counts.rows_out += 1;
        }
        Ok(())
    }

    /// Awaits the row's lookup on the reader thread (rows are read in order, one at a time).
    /// `Ok(Err(_))` is a transient failure; `Err` is bad data (refused, or a panic).
    fn enrich(
        &self,
        input: T::Input,
        ctx: &RecordContext<'_>,
    ) -> Result<Result<T::Input, String>, BadData> {
        let looked_up = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.runtime.block_on(self.transform.enrich(input, ctx))
        }))
        .map_err(|panic| BadData::Panicked(crate::engine::apply::panic_message(&panic)))?;
        match looked_up {
            Ok(input) => Ok(Ok(input)),
            Err(TransformError::Transient(reason)) => Ok(Err(reason)),
            Err(TransformError::Reject(reason)) => Err(BadData::Rejected(reason)),
        }
    }

    fn quarantine_row(
        &mut self,
        ctx: &RecordContext<'_>,
        raw: &[u8],
        header: &[u8],
        bad: &BadData,
        qtx: &mpsc::Sender<Chunk>,
    ) -> Result<(), PartError> {
        if self.redriving {
            self.still_bad = Some(bad.to_string());
            return Ok(());
        }
        default_document_id(&mut self.id, ctx, 0);
        let entry = QuarantinedEntry {
            id: self.id.clone(),
            kind: bad.kind().to_string(),
            reason: bad.to_string(),
            stream: self.source.to_string(),
            position: ctx.position.to_string(),
            sub_record: None,
            document_index: None,
            partition_key: None,
            // The object's day: where the entry is stored, as a stream's arrival day is.
            arrival: Some(self.day_start),
            source_arn: None,
            data_base64: base64::engine::general_purpose::STANDARD.encode(raw),
            row: Some(RowOrigin {
                etag: self.etag.clone(),
                csv_header: (!header.is_empty())
                    .then(|| String::from_utf8_lossy(header).into_owned()),
            }),
        };
        let json = serde_json::to_vec(&entry).expect("quarantine entries serialise");
        let key = &self.quarantine_key;
        self.quarantine
            .get_or_insert_with(|| PartWriter::new(key.clone(), &Ndjson))
            .push(&json, qtx)?;
        self.counts.rows_quarantined += 1;
        Ok(())
    }
}

impl<T: Transform> Ingest<T> {
    /// Streams the object through the transform into curated and quarantine outputs.
    /// `Ok(Err(_))`: the object is bad as a whole.
    pub(super) async fn stream(
        &self,
        obj: &ObjectRef,
        etag: &str,
        day: &str,
    ) -> Result<Result<Streamed, ObjectProblem>, IngestError> {
        let format = format_from_key(&obj.key).expect("checked by the caller");
        let Some(body) = self.store.get(&obj.bucket, &obj.key, Some(etag)).await? else {
            // Deleted between HEAD and GET: the next delivery (or none) settles it.
            return Err(IngestError::Read {
                bucket: obj.bucket.clone(),
                key: obj.key.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "the object is gone"),
            });
        };
        let output = &self.config.output;
        let (tx, rx) = mpsc::channel::<Chunk>(2);
        let (qtx, qrx) = mpsc::channel::<Chunk>(2);
        let curated_upload = tokio::spawn(uploader(
            self.store.clone(),
            output.curated.bucket.clone(),
            rx,
        ));
        let quarantine_upload = tokio::spawn(uploader(
            self.store.clone(),
            output.quarantine.bucket.clone(),
            qrx,
        ));
        let mut rows = Rows::new(self, obj, etag, day);
        let max_row = self.config.max_row_bytes;
        let transform = self.transform.clone();
        let handle = tokio::runtime::Handle::current();
        let read = tokio::task::spawn_blocking(move || {
            let _guard = handle.enter();
            let bridge = tokio_util::io::SyncIoBridge::new(body);
            let mut crc_reader = flate2::CrcReader::new(SourceReader(bridge));
            let check = |input: &T::Input| transform.validate(input);
            let outcome = read_rows::<T::Input, _, _>(
                &mut crc_reader,
                format,
                max_row,
                &check,
                |row: Row<'_, T::Input>| {
                    match rows.on_row(row, &tx, &qtx) {
                        Err(e) => rows.stop = Some(Stop::Part(e)),
                        Ok(()) if rows.stop.is_none() => return Ok(()),
                        Ok(()) => {}
                    }
                    Err("stopped".to_string())
                },
            );
            let finished = match outcome {
                Ok(_lines) => {
                    // Drain what is left so the CRC covers the whole object.
                    let _ = std::io::copy(&mut crc_reader, &mut std::io::sink());
                    rows.counts.crc = crc_reader.crc().sum();
                    let mut done = Ok(());
                    for (_, w) in std::mem::take(&mut rows.writers) {
                        done = done.and_then(|()| w.finish(&tx));
                    }
                    if let Some(q) = rows.quarantine.take() {
                        done = done.and_then(|()| q.finish(&qtx));
                    }
                    done.map(|()| Ok(rows.counts)).map_err(Stop::Part)
                }
                Err(ReadError::Object(p)) => Ok(Err(p)),
                Err(ReadError::Source(e)) => Err(Stop::Read(e)),
                Err(ReadError::Stopped(_)) => {
                    Err(rows.stop.take().expect("a stopped read says why"))
                }
            };
            finished
            // Dropping the senders ends the uploaders (aborting anything unfinished).
        });
        let err_read = |source| IngestError::Read {
            bucket: obj.bucket.clone(),
            key: obj.key.clone(),
            source,
        };
        let read = read.await.map_err(|source| IngestError::Task {
            bucket: obj.bucket.clone(),
            key: obj.key.clone(),
            source,
        })?;
        let output_err = |source: UploadError| IngestError::Output {
            bucket: obj.bucket.clone(),
            key: obj.key.clone(),
            source: Box::new(source),
        };
        let joined = |r: Result<Result<Vec<Written>, UploadError>, tokio::task::JoinError>| {
            r.map_err(|source| IngestError::Task {
                bucket: obj.bucket.clone(),
                key: obj.key.clone(),
                source,
            })
        };
        let curated_written = joined(curated_upload.await)?;
        let quarantine_written = joined(quarantine_upload.await)?;
        match read {
            Err(stop) => {
                // An upload failure explains a stopped reader better than the reader's own error.
                for written in [&curated_written, &quarantine_written] {
                    if let Err(UploadError::Store(e)) = written {
                        return Err(output_err(UploadError::Store(e.clone())));
                    }
                }
                Err(match stop {
                    Stop::Part(source) => IngestError::Encode {
                        bucket: obj.bucket.clone(),
                        key: obj.key.clone(),
                        source,
                    },
                    Stop::Transient { line, reason } => IngestError::Transient {
                        bucket: obj.bucket.clone(),
                        key: obj.key.clone(),
                        line,
                        reason,
                    },
                    Stop::Read(e) => err_read(e),
                })
            }
            Ok(Err(problem)) => Ok(Err(problem)),
            Ok(Ok(counts)) => {
                let outputs = curated_written.map_err(output_err)?;
                let mut quarantine = quarantine_written.map_err(output_err)?;
                Ok(Ok(Streamed {
                    outputs,
                    quarantine: quarantine.pop(),
                    counts,
                }))
            }
        }
    }
}
