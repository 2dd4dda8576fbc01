//! Redriving quarantined entries through the current transform (`runnel quarantine redrive`).
//!
//! A stream pipeline's function takes, besides its source's events, a *redrive request*: an
//! object whose first key is `runnelRedrive`, holding quarantine entries as they are stored. Each
//! entry is processed again as the document it was — same stream, position, document index and
//! KPL user record, so its output gets its original `_id` — and, since entries are independent,
//! each gets objects of its own keyed by its place: a second redrive of the same entry overwrites
//! them. Entries still bad are not quarantined again (they are already there); the answer says
//! which entries landed, which are still bad and which failed transiently.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::records::Place;
use crate::source::{BatchOutcome, FailureMode, RecordStatus, SourceRecord};
use crate::transform::Transform;

use super::execute::WriteKind;
use super::outcome::settle_statuses;
use super::plan::Dest;
pub use super::quarantine::{QuarantinedEntry, RowOrigin};
use super::Processor;

/// The first key of a redrive request.
pub const REDRIVE_KEY: &str = "runnelRedrive";
/// A redrive request: `{"runnelRedrive": {"entries": [...]}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RedriveRequest {
    /// The entries to process again.
    pub entries: Vec<QuarantinedEntry>,
}

impl RedriveRequest {
    /// The request as the event a function takes.
    pub fn to_event(&self) -> serde_json::Value {
        serde_json::json!({ REDRIVE_KEY: self })
    }
}

/// What a redrive came to, by entry `_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedriveAnswer {
    /// Processed: written, or filtered out by the transform. These can leave quarantine.
    pub landed: Vec<String>,
    /// Bad data still, with why.
    pub still_bad: Vec<StillBad>,
    /// Failed transiently (a write, or the transform's `Transient`): try again later.
    pub failed: Vec<String>,
}

/// An entry the current transform still refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StillBad {
    /// The entry's `_id`.
    pub id: String,
    /// Why, now.
    pub reason: String,
}

/// The records and places of a request's entries; entries whose bytes are not base64, and rows
/// of ingested objects, are still bad at once.
pub(crate) struct Prepared {
    pub data: Vec<Vec<u8>>,
    pub usable: Vec<usize>,
    pub undecodable: Vec<StillBad>,
}

pub(crate) fn prepare(request: &RedriveRequest) -> Prepared {
    let mut out = Prepared {
        data: Vec::new(),
        usable: Vec::new(),
        undecodable: Vec::new(),
    };
    for (i, e) in request.entries.iter().enumerate() {
        if e.row.is_some() {
            out.undecodable.push(StillBad {
                id: e.id.clone(),
                reason: format!(
                    "a row of the ingested object {}: redrive it through the ingest function",
                    e.stream
                ),
            });
            continue;
        }
        match e.data() {
            Ok(bytes) => {
                out.data.push(bytes);
                out.usable.push(i);
            }
            Err(err) => out.undecodable.push(StillBad {
                id: e.id.clone(),
                reason: format!("data_base64 is not base64: {err}"),
            }),
        }
    }
    out
}

/// The source records of the usable entries: identified by `_id`, at their original place.
pub(crate) fn records<'a>(
    request: &'a RedriveRequest,
    prepared: &'a Prepared,
) -> (Vec<SourceRecord<'a>>, Vec<Option<Place<'a>>>) {
    prepared
        .usable
        .iter()
        .zip(&prepared.data)
        .map(|(&i, data)| {
            let e = &request.entries[i];
            let record = SourceRecord {
                item_identifier: &e.id,
                stream: &e.stream,
                position: &e.position,
                partition_key: e.partition_key.as_deref(),
                arrival: e.arrival,
                data,
            };
            (record, e.place())
        })
        .unzip()
}

/// The answer from the processor's outcome over [`records`].
pub(crate) fn answer(
    request: &RedriveRequest,
    prepared: Prepared,
    outcome: &BatchOutcome,
    reasons: Vec<Option<String>>,
) -> RedriveAnswer {
    let mut answer = RedriveAnswer {
        still_bad: prepared.undecodable,
        ..RedriveAnswer::default()
    };
    for ((&i, status), reason) in prepared.usable.iter().zip(&outcome.records).zip(reasons) {
        let id = request.entries[i].id.clone();
        match status {
            RecordStatus::Written | RecordStatus::Filtered => answer.landed.push(id),
            RecordStatus::Quarantined => answer.still_bad.push(StillBad {
                id,
                reason: reason.unwrap_or_default(),
            }),
            RecordStatus::Failed => answer.failed.push(id),
        }
    }
    answer
}

/// An invocation's event: the source's batch, or a redrive request (an object whose first key
/// is [`REDRIVE_KEY`]). Told apart by the first key alone, so a batch is parsed in one pass as
/// before.
#[derive(Debug)]
pub enum StreamEvent<E> {
    /// The source's event.
    Batch(E),
    /// Quarantine entries to process again.
    Redrive(RedriveRequest),
}

impl<'de, E: Deserialize<'de>> Deserialize<'de> for StreamEvent<E> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(StreamEventVisitor(PhantomData))
    }
}

struct StreamEventVisitor<E>(PhantomData<E>);

impl<'de, E: Deserialize<'de>> Visitor<'de> for StreamEventVisitor<E> {
    type Value = StreamEvent<E>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an event object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let first: Option<Cow<'de, str>> = map.next_key()?;
        if first.as_deref() == Some(REDRIVE_KEY) {
            let request = map.next_value()?;
            while map
                .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                .is_some()
            {}
            return Ok(StreamEvent::Redrive(request));
        }
        let rest = Chained { first, rest: map };
        E::deserialize(de::value::MapAccessDeserializer::new(rest)).map(StreamEvent::Batch)
    }
}

/// A map whose first key was already read: hands it back, then the rest.
struct Chained<'de, A> {
    first: Option<Cow<'de, str>>,
    rest: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Chained<'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match self.first.take() {
            Some(Cow::Borrowed(key)) => seed
                .deserialize(IntoDeserializer::<A::Error>::into_deserializer(key))
                .map(Some),
            Some(Cow::Owned(key)) => seed
                .deserialize(IntoDeserializer::<A::Error>::into_deserializer(key))
                .map(Some),
            None => self.rest.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.rest.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.rest
            .size_hint()
            .map(|n| n + usize::from(self.first.is_some()))
    }
}

/// A function's answer: the source's response, or a redrive's.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum StreamAnswer<R> {
    /// The source's response.
    Batch(R),
    /// What a redrive came to.
    Redrive(RedriveAnswer),
}

impl<T: Transform> Processor<T> {
    /// Processes quarantine entries again (see [`crate::pipeline::redrive`]): `places` gives
    /// each record's place in its original record (`None`: the whole record). Report-all; every
    /// record's output under keys of its own; still-bad documents are not written again. Returns
    /// the outcome and, per record, why it is still bad.
    pub(crate) async fn redrive(
        &self,
        records: &[SourceRecord<'_>],
        places: &[Option<Place<'_>>],
    ) -> (BatchOutcome, Vec<Option<String>>) {
        let mut outcome = BatchOutcome::default();
        outcome.stats.records_in = records.len();
        outcome.stats.bytes_in = records.iter().map(|r| r.data.len()).sum();
        let prepared = self.prepare(records, Some(places), &mut outcome).await;
        let mut reasons = vec![None; records.len()];
        for item in &prepared.items {
            if let (Dest::Quarantine(_), None) = (&item.dest, &reasons[item.record]) {
                let entry: Result<QuarantinedEntry, _> =
                    serde_json::from_slice(&prepared.lines[item.line.clone()]);
                reasons[item.record] = entry.ok().map(|e| e.reason);
            }
        }
        let failed = self
            .write(
                records,
                &prepared,
                FailureMode::ReportAll,
                WriteKind::Redrive,
                &mut outcome,
            )
            .await;
        settle_statuses(records, &prepared, &failed, &mut outcome);
        (outcome, reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::kinesis::KinesisBatch;

    #[test]
    fn a_batch_parses_as_before_and_a_redrive_by_its_first_key() {
        for sample in [
            include_str!("../../../events/kinesis-clean.json"),
            include_str!("../../../events/kinesis-poison.json"),
        ] {
            let direct: KinesisBatch = serde_json::from_str(sample).unwrap();
            match serde_json::from_str::<StreamEvent<KinesisBatch>>(sample).unwrap() {
                StreamEvent::Batch(b) => assert_eq!(b, direct),
                StreamEvent::Redrive(_) => panic!("a batch"),
            }
        }
        let request = RedriveRequest {
            entries: vec![entry("s:1:0", None, Some(0))],
        };
        let text = request.to_event().to_string();
        match serde_json::from_str::<StreamEvent<KinesisBatch>>(&text).unwrap() {
            StreamEvent::Redrive(r) => assert_eq!(r, request),
            StreamEvent::Batch(_) => panic!("a redrive"),
        }
        // Neither: the source's own error.
        let err = serde_json::from_str::<StreamEvent<KinesisBatch>>(r#"{"Other": 1}"#).unwrap_err();
        assert!(err.to_string().contains("Records"), "{err}");
        assert!(serde_json::from_str::<StreamEvent<KinesisBatch>>("[1]").is_err());
    }

    fn entry(id: &str, sub_record: Option<u32>, index: Option<u32>) -> QuarantinedEntry {
        QuarantinedEntry {
            id: id.into(),
            kind: "validation".into(),
            reason: "temperature: out of range".into(),
            stream: "s".into(),
            position: "1".into(),
            sub_record,
            document_index: index,
            partition_key: None,
            arrival: None,
            source_arn: None,
            data_base64: "e30=".into(),
            row: None,
        }
    }

    #[test]
    fn places_keep_the_original_ids_and_distinct_keys() {
        assert_eq!(entry("s:1", None, None).place(), None);
        let plain = entry("s:1:3", None, Some(3));
        assert_eq!(
            plain.place().map(|p| (p.ordinal, p.index, p.id)),
            Some((3, 3, None))
        );
        let kpl = entry("s:1:2:3", Some(2), Some(3));
        let p = kpl.place().unwrap();
        assert_eq!(
            (p.ordinal, p.sub_record, p.index, p.id),
            (300_003, Some(2), 3, None)
        );
        // A log event's own id is kept as the document's.
        let log = entry(
            "36512345678901234567890123456789012345678901234567890123",
            None,
            Some(0),
        );
        assert_eq!(log.place().unwrap().id, Some(log.id.as_str()));
    }
}
