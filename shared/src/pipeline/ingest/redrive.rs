//! Redriving quarantined rows (`runnel quarantine redrive` against an ingest function).
//!
//! Each row is read again as ingest read it — under its CSV header, numbered by its line — and
//! goes through the current transform. What lands is written under keys of the row's own
//! (`<stem>-<etag>-line<N>.<ext>`: a second redrive of the row overwrites them) and added to the
//! object's manifest, so a new version of the object retires them with the rest of its outputs.
//! A row whose object has been replaced since is stale: the new version was read afresh.

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use super::manifest::Manifest;
use super::object::{Ingest, IngestError};
use super::reader::{format_from_key, read_rows, ObjectFormat, ReadError, Row, RowFormat};
use super::stream::{Rows, Stop};
use super::upload::{uploader, Chunk, Written};
use crate::engine::redrive::{QuarantinedEntry, RedriveAnswer, RedriveRequest, StillBad};
use crate::s3event::ObjectRef;
use crate::transform::Transform;

/// A usable entry: its row, where it was read, and its bytes.
struct Redriven<'a> {
    entry: &'a QuarantinedEntry,
    line: u64,
    data: Vec<u8>,
}

/// What one row came to.
enum RowResult {
    Landed,
    StillBad(String),
    Failed(String),
}

impl<T: Transform> Ingest<T> {
    /// Processes quarantined rows again through the transform; entries that are not rows of an
    /// ingested object are still bad. Store failures fail the entries they touch, not the call.
    pub async fn redrive(&self, request: &RedriveRequest) -> RedriveAnswer {
        let mut answer = RedriveAnswer::default();
        let mut objects: BTreeMap<(&str, &str), Vec<Redriven<'_>>> = BTreeMap::new();
        for entry in &request.entries {
            match usable(entry) {
                Ok((bucket, key, row)) => objects.entry((bucket, key)).or_default().push(row),
                Err(reason) => answer.still_bad.push(StillBad {
                    id: entry.id.clone(),
                    reason,
                }),
            }
        }
        for ((bucket, key), rows) in objects {
            let obj = ObjectRef {
                bucket: bucket.to_string(),
                key: key.to_string(),
                etag: None,
                size: None,
                version_id: None,
                sequencer: None,
            };
            for (row, result) in self.redrive_object(&obj, &rows).await {
                let id = row.entry.id.clone();
                match result {
                    RowResult::Landed => answer.landed.push(id),
                    RowResult::StillBad(reason) => answer.still_bad.push(StillBad { id, reason }),
                    RowResult::Failed(reason) => {
                        tracing::warn!(entry = %id, %reason, "redriven row failed transiently");
                        answer.failed.push(id);
                    }
                }
            }
        }
        answer
    }

    /// Redrives rows of one object against its manifest.
    async fn redrive_object<'r, 'e>(
        &self,
        obj: &ObjectRef,
        rows: &'r [Redriven<'e>],
    ) -> Vec<(&'r Redriven<'e>, RowResult)> {
        let all = |result: &dyn Fn() -> RowResult| rows.iter().map(|r| (r, result())).collect();
        let manifest_key = self.manifest_key(obj);
        let manifest = match self.read_manifest(&manifest_key).await {
            Err(e) => return all(&|| RowResult::Failed(crate::error::chain(&e))),
            Ok(None) => {
                return all(&|| {
                    RowResult::StillBad(format!(
                        "{} has no manifest: it was never ingested, or its state was removed",
                        obj.uri()
                    ))
                })
            }
            Ok(Some(m)) => m,
        };
        let (current, stale): (Vec<_>, Vec<_>) = rows.iter().partition(|r| {
            r.entry.row.as_ref().map(|o| o.etag.as_str()) == Some(manifest.etag.as_str())
        });
        let mut results: Vec<_> = stale
            .into_iter()
            .map(|r| {
                let reason = format!(
                    "{} is now version {}, ingested afresh: this row of an earlier version is stale",
                    obj.uri(),
                    manifest.etag
                );
                (r, RowResult::StillBad(reason))
            })
            .collect();
        if current.is_empty() {
            return results;
        }
        let (read, written) = self.land(obj, &manifest, &current).await;
        let written = match written {
            Ok(written) => written,
            Err(e) => {
                let reason = crate::error::chain(&e);
                return results
                    .into_iter()
                    .chain(
                        current
                            .into_iter()
                            .map(|r| (r, RowResult::Failed(reason.clone()))),
                    )
                    .collect();
            }
        };
        let landed: Vec<u64> = current
            .iter()
            .zip(&read)
            .filter(|(_, result)| matches!(result, RowResult::Landed))
            .map(|(r, _)| r.line)
            .collect();
        let mut read = read;
        if !landed.is_empty() {
            let updated = with_redriven(manifest, written, &landed);
            if let Err(e) = self
                .put_json(&self.config.state.bucket, &manifest_key, &updated)
                .await
            {
                // The outputs are there but the manifest does not list them: a new version would
                // not retire them. The entries stay in quarantine; a redrive again overwrites.
                let reason = format!("updating the manifest: {}", crate::error::chain(&e));
                for result in &mut read {
                    if matches!(result, RowResult::Landed) {
                        *result = RowResult::Failed(reason.clone());
                    }
                }
            }
        }
        results.extend(current.into_iter().zip(read));
        results
    }

    /// Reads each row again and writes what it makes; returns each row's result and the
    /// objects written (or why the writing failed).
    async fn land(
        &self,
        obj: &ObjectRef,
        manifest: &Manifest,
        rows: &[&Redriven<'_>],
    ) -> (Vec<RowResult>, Result<Vec<Written>, IngestError>) {
        let (tx, rx) = mpsc::channel::<Chunk>(2);
        // Bad rows are reported, not quarantined again: this channel carries nothing.
        let (qtx, _qrx) = mpsc::channel::<Chunk>(1);
        let upload = tokio::spawn(uploader(
            self.store.clone(),
            self.config.output.curated.bucket.clone(),
            rx,
        ));
        let mut state = Rows::new(self, obj, &manifest.etag, &manifest.day);
        state.redriving = true;
        let format = format_from_key(&obj.key).expect("checked by usable()");
        let max_row = self.config.max_row_bytes;
        let transform = self.transform.clone();
        let inputs: Vec<(u64, Vec<u8>)> = rows
            .iter()
            .map(|r| (r.line, row_bytes(r, format.rows)))
            .collect();
        let handle = tokio::runtime::Handle::current();
        // Blocking, as streaming is: the transform's lookups are awaited from this thread.
        let read = tokio::task::spawn_blocking(move || {
            let _guard = handle.enter();
            let check = |input: &T::Input| transform.validate(input);
            let base = state.key_suffix.clone();
            let (name, ext) = base.split_once('.').unwrap_or((&base, ""));
            let format = ObjectFormat {
                rows: format.rows,
                gzip: false,
            };
            inputs
                .iter()
                .map(|(line, bytes)| {
                    state.key_suffix = format!("{name}-line{line}.{ext}");
                    state.still_bad = None;
                    state.stop = None;
                    let mut seen = false;
                    let read = read_rows::<T::Input, _, _>(
                        &bytes[..],
                        format,
                        max_row,
                        &check,
                        |row: Row<'_, T::Input>| {
                            seen = true;
                            let row = Row { line: *line, ..row };
                            if let Err(e) = state.on_row(row, &tx, &qtx) {
                                state.stop = Some(Stop::Part(e));
                            }
                            match state.stop {
                                Some(_) => Err("stopped".into()),
                                None => Ok(()),
                            }
                        },
                    );
                    let mut finished = Ok(());
                    for (_, w) in std::mem::take(&mut state.writers) {
                        finished = finished.and_then(|()| w.finish(&tx));
                    }
                    match (read, state.stop.take(), state.still_bad.take()) {
                        (Err(ReadError::Object(problem)), _, _) => {
                            RowResult::StillBad(problem.to_string())
                        }
                        (_, Some(Stop::Transient { reason, .. }), _) => RowResult::Failed(reason),
                        (_, Some(Stop::Part(e)), _) => RowResult::Failed(crate::error::chain(&e)),
                        (_, Some(Stop::Read(e)), _) => RowResult::Failed(e.to_string()),
                        (_, None, Some(reason)) => RowResult::StillBad(reason),
                        _ if !seen => RowResult::StillBad("the row is empty".into()),
                        _ => match finished {
                            Ok(()) => RowResult::Landed,
                            Err(e) => RowResult::Failed(crate::error::chain(&e)),
                        },
                    }
                })
                .collect::<Vec<_>>()
            // Dropping the sender ends the uploader.
        })
        .await;
        let task_failed = |source| IngestError::Task {
            bucket: obj.bucket.clone(),
            key: obj.key.clone(),
            source,
        };
        let written = match upload.await {
            Err(e) => Err(task_failed(e)),
            Ok(result) => result.map_err(|source| IngestError::Output {
                bucket: obj.bucket.clone(),
                key: obj.key.clone(),
                source: Box::new(source),
            }),
        };
        match read {
            Ok(results) => (results, written),
            Err(e) => {
                let reason = e.to_string();
                let failed = rows.iter().map(|_| RowResult::Failed(reason.clone()));
                (failed.collect(), written.and(Err(task_failed(e))))
            }
        }
    }
}

/// The entry as a row to read again, with its object; or why it cannot be.
fn usable(entry: &QuarantinedEntry) -> Result<(&str, &str, Redriven<'_>), String> {
    if entry.row.is_none() {
        return Err(format!(
            "not a row of an ingested object (from {}): redrive it through its stream function",
            entry.stream
        ));
    }
    if entry.kind == "too_large" {
        return Err(
            "the row was longer than MAX_ROW_BYTES and only its first bytes were kept; \
                    fix the source object and upload it again"
                .into(),
        );
    }
    let (bucket, key) = entry
        .stream
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
        .ok_or_else(|| format!("stream {:?} is not an s3://bucket/key", entry.stream))?;
    let header = entry.row.as_ref().and_then(|o| o.csv_header.as_ref());
    match format_from_key(key) {
        None => return Err(format!("{} is not a CSV or NDJSON object", entry.stream)),
        Some(f) if f.rows == RowFormat::Csv && header.is_none() => {
            return Err("a CSV row without the header it was read under".into())
        }
        Some(_) => {}
    }
    let line = entry
        .position
        .parse()
        .map_err(|_| format!("position {:?} is not a line number", entry.position))?;
    let data = entry
        .data()
        .map_err(|e| format!("data_base64 is not base64: {e}"))?;
    Ok((bucket, key, Redriven { entry, line, data }))
}

/// The bytes to read the row from: a CSV row under its header, an NDJSON row alone.
fn row_bytes(row: &Redriven<'_>, format: RowFormat) -> Vec<u8> {
    let header = row.entry.row.as_ref().and_then(|o| o.csv_header.as_deref());
    match (format, header) {
        (RowFormat::Csv, Some(header)) => {
            let mut bytes = Vec::with_capacity(header.len() + 1 + row.data.len());
            bytes.extend_from_slice(header.as_bytes());
            bytes.push(b'\n');
            bytes.extend_from_slice(&row.data);
            bytes
        }
        _ => row.data.clone(),
    }
}

/// The manifest with the redriven outputs listed (a key written again replaces its entry) and
/// the lines recorded.
fn with_redriven(mut manifest: Manifest, written: Vec<Written>, lines: &[u64]) -> Manifest {
    for w in written {
        match manifest.outputs.iter_mut().find(|o| o.key == w.key) {
            Some(same) => *same = w,
            None => manifest.outputs.push(w),
        }
    }
    manifest.redriven.extend_from_slice(lines);
    manifest.redriven.sort_unstable();
    manifest.redriven.dedup();
    manifest
}
