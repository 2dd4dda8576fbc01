//! The manifest written for each input object, and what happened to an object.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::upload::Written;

/// Whether an object's rows were ingested or the object went to quarantine whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManifestStatus {
    /// Rows were read; good ones landed, bad ones are in quarantine.
    Complete,
    /// The object as a whole was bad and was copied to quarantine.
    Quarantined,
}

impl ManifestStatus {
    /// The status as written in manifests and summaries.
    pub fn as_str(&self) -> &'static str {
        match self {
            ManifestStatus::Complete => "complete",
            ManifestStatus::Quarantined => "quarantined",
        }
    }
}

impl std::fmt::Display for ManifestStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The manifest written for each input object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The source bucket.
    pub source_bucket: String,
    /// The source key.
    pub source_key: String,
    /// The version ingested.
    pub etag: String,
    /// Its size.
    pub size: u64,
    /// The day it belongs to (`YYYY-MM-DD`).
    pub day: String,
    /// What became of it.
    pub status: ManifestStatus,
    /// Why it was quarantined whole.
    pub reason: Option<String>,
    /// Rows read.
    pub rows_in: u64,
    /// Output documents written (a row may make none or several).
    pub rows_out: u64,
    /// Rows quarantined.
    pub rows_quarantined: u64,
    /// CRC-32 of the object's bytes as stored (before decompression), hex.
    pub input_crc32: String,
    /// Curated objects written.
    pub outputs: Vec<Written>,
    /// The quarantine object, if any.
    pub quarantine: Option<Written>,
    /// Lines a redrive landed since (each under outputs of its own, listed in `outputs`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redriven: Vec<u64>,
    /// When it was processed.
    pub processed_at: DateTime<Utc>,
    /// How long it took.
    pub duration_ms: u64,
}

/// What happened to one object.
#[derive(Debug, Clone, PartialEq)]
pub enum ObjectOutcome {
    /// Rows were read and landed.
    Ingested(Manifest),
    /// The object as a whole was bad and went to quarantine.
    Quarantined(Manifest),
    /// This version was already ingested (a duplicate delivery).
    Duplicate {
        /// The version's entity tag.
        etag: String,
    },
    /// The object is gone (deleted after the event was sent).
    Missing,
    /// A marker such as `_SUCCESS`: no rows; the hook still runs.
    Marker,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_keep_their_written_form() {
        assert_eq!(
            serde_json::to_string(&ManifestStatus::Quarantined).unwrap(),
            "\"quarantined\""
        );
        let s: ManifestStatus = serde_json::from_str("\"complete\"").unwrap();
        assert_eq!(s, ManifestStatus::Complete);
        assert!(serde_json::from_str::<ManifestStatus>("\"done\"").is_err());
    }
}
