//! The quarantine entry: one NDJSON line per bad document, record or ingested row, with its
//! reason and raw bytes, under the quarantine prefix by arrival day. Stream processing and object
//! ingest write it; redrive and `runnel quarantine` read it back.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::records::{BadData, Place};
use crate::sink::daily_partition;
use crate::source::SourceRecord;
use crate::transform::Transform;

use super::plan::{Dest, Item, Prepared};
use super::Processor;

/// One quarantine entry as stored (one NDJSON line under the quarantine prefix): what stream
/// processing and object ingest write and what a redrive reads.
///
/// A row of an ingested object is an entry like a stream's: `stream` is the object
/// (`s3://bucket/key`), `position` its line, `arrival` the object's day, and [`Self::row`] holds
/// what reading the row again needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuarantinedEntry {
    /// The id the document's output would have had.
    #[serde(rename = "_id")]
    pub id: String,
    /// What was wrong: `json`, `validation`, `gzip`, `kpl`, `too_large`, `empty`, `rejected`,
    /// `panic`.
    pub kind: String,
    /// Why, in words.
    pub reason: String,
    /// The stream (shard, queue, table stream, topic-partition).
    pub stream: String,
    /// The record's position in it.
    pub position: String,
    /// The KPL user record, for an aggregated record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_record: Option<u32>,
    /// The document's index in its payload; `None` when the whole record was bad.
    pub document_index: Option<u32>,
    /// The record's partition key.
    pub partition_key: Option<String>,
    /// When the source received the record.
    pub arrival: Option<DateTime<Utc>>,
    /// The source's ARN.
    pub source_arn: Option<String>,
    /// The bytes: the document's, or the whole record's (or row's).
    pub data_base64: String,
    /// For a row of an ingested object: the version it was read from and its CSV header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<RowOrigin>,
}

/// Where a quarantined row came from, beyond its object and line: what a redrive needs to read
/// it as ingest read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowOrigin {
    /// The object's ETag when the row was read: a redrive lands the row only while that version
    /// is still the one ingested.
    pub etag: String,
    /// The CSV header the row was read under; `None` for an NDJSON row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv_header: Option<String>,
}

impl QuarantinedEntry {
    /// The day partition the entry is stored under (`dt=YYYY-MM-DD`, by arrival).
    pub fn day(&self) -> String {
        crate::sink::daily_partition(self.arrival.unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
    }

    /// The stored bytes, decoded.
    pub fn data(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.data_base64)
    }

    /// Where the document sat in its record, as the processor numbers it; `None` for a whole
    /// record (decoded again like any record). The ordinal index names the entry's objects: a
    /// user record's documents get `(user record + 1) * 100000 + index`, unique beside the
    /// record's own.
    pub(crate) fn place(&self) -> Option<Place<'_>> {
        let index = self.document_index?;
        let ordinal = match self.sub_record {
            Some(j) => j
                .saturating_add(1)
                .saturating_mul(100_000)
                .saturating_add(index),
            None => index,
        };
        let mut place = Place {
            ordinal,
            sub_record: self.sub_record,
            index,
            id: None,
        };
        // An id other than the one its place gives was the payload's own (a log event's).
        if self.id != entry_id(&self.stream, &self.position, &place) {
            place.id = Some(&self.id);
        }
        Some(place)
    }
}

/// The `_id` of a quarantine entry: the document's own id when its payload gives one, else
/// `stream:position[:user record]:index`.
pub(crate) fn entry_id(stream: &str, position: &str, place: &Place<'_>) -> String {
    match (place.id, place.sub_record) {
        (Some(own), _) => own.to_string(),
        (None, Some(j)) => format!("{stream}:{position}:{j}:{}", place.index),
        (None, None) => format!("{stream}:{position}:{}", place.index),
    }
}

impl<T: Transform> Processor<T> {
    /// Appends the quarantine entry of a bad document (`place`) or of a whole record.
    pub(super) fn quarantine_item(
        &self,
        prepared: &mut Prepared,
        record: usize,
        rec: &SourceRecord<'_>,
        place: Option<Place<'_>>,
        raw: &[u8],
        bad: &BadData,
    ) {
        let arrival = rec.arrival.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let p = place.unwrap_or_default();
        // The entry type redrive reads back; its allocations are on the bad-data path only.
        let entry = QuarantinedEntry {
            id: entry_id(rec.stream, rec.position, &p),
            kind: bad.kind().to_string(),
            reason: bad.to_string(),
            stream: rec.stream.to_string(),
            position: rec.position.to_string(),
            sub_record: p.sub_record,
            document_index: place.map(|p| p.index),
            partition_key: rec.partition_key.map(str::to_string),
            arrival: rec.arrival,
            source_arn: self.config.source_arn.clone(),
            data_base64: base64::engine::general_purpose::STANDARD.encode(raw),
            row: None,
        };
        let start = prepared.lines.len();
        serde_json::to_writer(&mut prepared.lines, &entry).expect("quarantine entry serialises");
        prepared.lines.push(b'\n');
        prepared.items.push(Item {
            record,
            ordinal: p.ordinal,
            output: 0,
            // Quarantine is partitioned by arrival day: stable across deliveries, unlike "now".
            dest: Dest::Quarantine(daily_partition(arrival)),
            line: start..prepared.lines.len(),
            observed: None,
            probes: Vec::new(),
        });
    }
}
