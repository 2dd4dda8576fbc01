//! Record decoding and validation: raw bytes → typed, validated values.
//!
//! A payload may be gzip-compressed (detected by its magic bytes, not by a flag) and may hold one
//! JSON document or newline-delimited JSON (several documents). Each document is deserialised into
//! the user's type and checked by its [`Validate`] rules. A payload-level failure (bad gzip, too
//! large) fails the whole payload; a document-level failure fails that document only.
//! CloudWatch Logs subscription payloads are recognised and split into their log events
//! ([`cloudwatch_logs`]); KPL-aggregated records into their user records ([`kpl`]).

pub mod cloudwatch_logs;
pub mod kpl;
mod validate;

pub use validate::{check, FieldError, Validate};

use std::borrow::Cow;
use std::io::Read;
use std::ops::ControlFlow;

use serde::de::DeserializeOwned;

/// First two bytes of every gzip member (RFC 1952).
pub(crate) const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why a payload or one of its documents is bad data. Bad data is permanent: retrying cannot help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadData {
    /// A payload (after decompression) or a row over the size limit.
    #[error("too large: {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Size in bytes, as far as it was read (a decompressed payload stops one past the limit).
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The payload carries the gzip magic bytes but does not decompress (the decoder's message).
    #[error("payload starts like gzip but does not decompress: {0}")]
    Gzip(String),
    /// The record starts like a KPL aggregate but is not a sound one (what is wrong).
    #[error("{0}")]
    Aggregate(String),
    /// The payload or row holds nothing but whitespace.
    #[error("payload is empty")]
    Empty,
    /// A document is not JSON or does not fit the input type (serde's message).
    #[error("not valid JSON: {0}")]
    Json(String),
    /// A CSV row does not parse or does not fit the input type (the parser's message).
    #[error("not valid CSV: {0}")]
    Csv(String),
    /// The value broke validation rules, every one listed.
    #[error("failed validation: {}", join(.0))]
    Invalid(Vec<FieldError>),
    /// The transform rejected the record, or its output does not serialise (the reason).
    #[error("transform rejected the record: {0}")]
    Rejected(String),
    /// The transform panicked on the record (the panic message); the record is quarantined
    /// instead of failing the batch.
    #[error("transform panicked: {0}")]
    Panicked(String),
}

fn join(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl BadData {
    /// A short, stable name for metrics and quarantine entries.
    pub fn kind(&self) -> &'static str {
        match self {
            BadData::TooLarge { .. } => "too_large",
            BadData::Gzip(_) => "gzip",
            BadData::Aggregate(_) => "kpl",
            BadData::Empty => "empty",
            BadData::Json(_) => "json",
            BadData::Csv(_) => "csv",
            BadData::Invalid(_) => "validation",
            BadData::Rejected(_) => "rejected",
            BadData::Panicked(_) => "panic",
        }
    }
}

/// Limits applied while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest payload accepted after decompression; also bounds gzip bombs.
    pub max_decoded_bytes: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        // Kinesis records are at most 10 MiB even on streams that raise the 1 MiB default.
        DecodeLimits {
            max_decoded_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Returns the payload, decompressed when it carries the gzip magic bytes.
pub fn decompress(data: &[u8], limits: DecodeLimits) -> Result<Cow<'_, [u8]>, BadData> {
    if data.len() > limits.max_decoded_bytes {
        return Err(BadData::TooLarge {
            size: data.len(),
            limit: limits.max_decoded_bytes,
        });
    }
    if !data.starts_with(&GZIP_MAGIC) {
        return Ok(Cow::Borrowed(data));
    }
    let mut out = Vec::with_capacity(data.len() * 4);
    // Read one byte past the limit to tell "exactly at the limit" from "over it".
    let mut decoder =
        flate2::read::MultiGzDecoder::new(data).take(limits.max_decoded_bytes as u64 + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| BadData::Gzip(e.to_string()))?;
    if out.len() > limits.max_decoded_bytes {
        return Err(BadData::TooLarge {
            size: out.len(),
            limit: limits.max_decoded_bytes,
        });
    }
    Ok(Cow::Owned(out))
}

/// Splits a payload into its JSON documents: one per non-blank line. A single pretty-printed
/// document spanning lines is accepted too (when the payload as a whole parses as one value).
pub fn documents(payload: &[u8]) -> Vec<&[u8]> {
    let lines: Vec<&[u8]> = payload
        .split(|b| *b == b'\n')
        .map(trim_ascii)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.len() > 1 && (lines[0] == b"{" || lines[0] == b"[") {
        // Looks like pretty-printed JSON: treat the payload as one document.
        let whole = trim_ascii(payload);
        if serde_json::from_slice::<serde::de::IgnoredAny>(whole).is_ok() {
            return vec![whole];
        }
    }
    lines
}

fn trim_ascii(mut s: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = s {
        if first.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    while let [rest @ .., last] = s {
        if last.is_ascii_whitespace() {
            s = rest;
        } else {
            break;
        }
    }
    s
}

/// Field rules applied to each decoded value: a transform's `validate`,
/// or a type's [`Validate::validate`].
pub(crate) type Check<'a, T> = &'a dyn Fn(&T) -> Result<(), Vec<FieldError>>;

/// Deserialises one document and checks it.
pub(crate) fn parse_document<T: DeserializeOwned>(
    doc: &[u8],
    check: Check<'_, T>,
) -> Result<T, BadData> {
    // One UTF-8 check of the whole document (SIMD: AVX2 or SSE4.2 chosen at run time on x86_64,
    // NEON on arm64): parsing text skips the check serde_json makes of every string and key it
    // reads from bytes. A document that is not UTF-8 is parsed as bytes, so its error is
    // serde_json's own, with the place of the bad byte.
    let parsed = match simdutf8::basic::from_utf8(doc) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(doc),
    };
    let value: T = parsed.map_err(|e| BadData::Json(e.to_string()))?;
    check(&value).map_err(BadData::Invalid)?;
    Ok(value)
}

/// A document that is bad data, with its raw bytes for quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadDocument {
    /// Why it is bad data.
    pub reason: BadData,
    /// The document's bytes (decompressed, surrounding whitespace trimmed), for quarantine.
    pub raw: Vec<u8>,
}

/// One document of a payload: the typed value, or why it is bad.
pub type Document<T> = Result<T, BadDocument>;

/// Decodes a whole payload: the outer `Err` is a payload-level failure, the inner ones are per
/// document, in order. Raw bytes are copied only for bad documents.
pub fn decode_payload<T: DeserializeOwned>(
    data: &[u8],
    limits: DecodeLimits,
    check: Check<'_, T>,
) -> Result<Vec<Document<T>>, BadData> {
    let mut docs = Vec::new();
    for_each_document(data, limits, check, |_, doc| {
        docs.push(doc);
        ControlFlow::Continue(())
    })?;
    Ok(docs)
}

/// Where a document sits in its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Place<'a> {
    /// The document's ordinal among all documents of the record, counted across KPL user
    /// records (unique within the record): it names the document's objects.
    pub ordinal: u32,
    /// The KPL user record it came from, for an aggregated record.
    pub sub_record: Option<u32>,
    /// The document's index within its payload (the user record's, for an aggregate): the
    /// [`RecordContext::index`](crate::transform::RecordContext::index) the transform sees.
    pub index: u32,
    /// The document's own id when its payload gives one (a CloudWatch Logs event's id).
    pub id: Option<&'a str>,
}

/// One document's bytes, or why its payload (a KPL user record) is bad data, with that payload.
pub(crate) type RawDocument<'a> = Result<&'a [u8], (BadData, &'a [u8])>;

/// Walks the documents of a record's bytes: a KPL aggregate's user records one after another
/// (each decoded like a record: gzip, CloudWatch Logs, JSON / NDJSON), otherwise the record's own
/// payload. The outer `Err` is a failure of the whole record; a user record that fails is handed
/// to `visit` as one bad document, so its neighbours still land.
pub(crate) fn for_each_raw(
    data: &[u8],
    limits: DecodeLimits,
    mut visit: impl FnMut(Place<'_>, RawDocument<'_>) -> ControlFlow<()>,
) -> Result<(), BadData> {
    let aggregate = match kpl::read(data) {
        kpl::Aggregate::Records(records) => records,
        kpl::Aggregate::Corrupt(reason) => return Err(BadData::Aggregate(reason)),
        kpl::Aggregate::Plain => {
            let mut ordinal = 0;
            return split_payload(data, limits, &mut |index, id, raw| {
                let place = Place {
                    ordinal,
                    sub_record: None,
                    index,
                    id,
                };
                ordinal += 1;
                visit(place, Ok(raw))
            })
            .map(|_| ());
        }
    };
    let mut ordinal = 0;
    for (j, sub) in aggregate.records.iter().enumerate() {
        let sub_record = Some(j as u32);
        let split = split_payload(&sub.data, limits, &mut |index, id, raw| {
            let place = Place {
                ordinal,
                sub_record,
                index,
                id,
            };
            ordinal += 1;
            visit(place, Ok(raw))
        });
        let flow = match split {
            Ok(flow) => flow,
            Err(bad) => {
                let place = Place {
                    ordinal,
                    sub_record,
                    index: 0,
                    id: None,
                };
                ordinal += 1;
                visit(place, Err((bad, &sub.data)))
            }
        };
        if flow.is_break() {
            break;
        }
    }
    Ok(())
}

/// Receives each document of a payload: its index, its own id if the payload gives one, its bytes.
type PayloadVisitor<'v> = dyn FnMut(u32, Option<&str>, &[u8]) -> ControlFlow<()> + 'v;

/// Splits one payload (decompressed when gzip) into documents: a CloudWatch Logs payload's log
/// events, one document, or its NDJSON lines.
fn split_payload(
    data: &[u8],
    limits: DecodeLimits,
    visit: &mut PayloadVisitor<'_>,
) -> Result<ControlFlow<()>, BadData> {
    let payload = decompress(data, limits)?;
    let single = trim_ascii(&payload);
    if single.is_empty() {
        return Err(BadData::Empty);
    }
    if let Some(events) = cloudwatch_logs::documents(single) {
        for (index, (id, d)) in events.iter().enumerate() {
            if visit(index as u32, Some(id), d).is_break() {
                return Ok(ControlFlow::Break(()));
            }
        }
        return Ok(ControlFlow::Continue(()));
    }
    if memchr::memchr(b'\n', single).is_none() {
        // The common case: one document per record.
        return Ok(visit(0, None, single));
    }
    for (index, d) in documents(&payload).into_iter().enumerate() {
        if visit(index as u32, None, d).is_break() {
            return Ok(ControlFlow::Break(()));
        }
    }
    Ok(ControlFlow::Continue(()))
}

/// Like [`decode_payload`], handing each document with its place to `visit` as it is decoded
/// (no list per payload: this runs once per stream record). `visit` may stop early.
pub(crate) fn for_each_document<T: DeserializeOwned>(
    data: &[u8],
    limits: DecodeLimits,
    check: Check<'_, T>,
    mut visit: impl FnMut(Place<'_>, Document<T>) -> ControlFlow<()>,
) -> Result<(), BadData> {
    for_each_raw(data, limits, |place, raw| {
        let doc = match raw {
            Ok(d) => parse_document(d, check).map_err(|reason| BadDocument {
                reason,
                raw: d.to_vec(),
            }),
            Err((reason, payload)) => Err(BadDocument {
                reason,
                raw: payload.to_vec(),
            }),
        };
        visit(place, doc)
    })
}

/// The bytes of the document at `ordinal` of a record, as [`for_each_document`] decodes them (for
/// quarantining a document the transform refused).
pub(crate) fn document_bytes(data: &[u8], limits: DecodeLimits, ordinal: u32) -> Option<Vec<u8>> {
    let mut found = None;
    let _ = for_each_raw(data, limits, |place, raw| {
        if place.ordinal != ordinal {
            return ControlFlow::Continue(());
        }
        found = Some(match raw {
            Ok(d) => d.to_vec(),
            Err((_, payload)) => payload.to_vec(),
        });
        ControlFlow::Break(())
    });
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::io::Write;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Reading {
        device: String,
        value: f64,
    }

    impl Validate for Reading {
        fn validate(&self) -> Result<(), Vec<FieldError>> {
            let mut errors = Vec::new();
            if self.device.is_empty() {
                errors.push(FieldError::new("device", "must not be empty"));
            }
            if !(-100.0..=100.0).contains(&self.value) {
                errors.push(FieldError::new(
                    "value",
                    format!("{} is outside -100..=100", self.value),
                ));
            }
            if errors.is_empty() {
                Ok(())
            } else {
                Err(errors)
            }
        }
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn plain_json_document() {
        let docs = decode_payload::<Reading>(
            br#"{"device":"a","value":1.5}"#,
            DecodeLimits::default(),
            &Reading::validate,
        )
        .unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(
            docs[0],
            Ok(Reading {
                device: "a".into(),
                value: 1.5
            })
        );
    }

    #[test]
    fn gzip_is_detected_by_magic_bytes() {
        let data = gzip(b"{\"device\":\"a\",\"value\":2}\n{\"device\":\"b\",\"value\":3}\n");
        let docs =
            decode_payload::<Reading>(&data, DecodeLimits::default(), &Reading::validate).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].as_ref().unwrap().device, "b");
    }

    #[test]
    fn ndjson_bad_line_fails_only_that_line() {
        let data =
            b"{\"device\":\"a\",\"value\":2}\n\n not json\n{\"device\":\"\",\"value\":500}\r\n";
        let docs =
            decode_payload::<Reading>(data, DecodeLimits::default(), &Reading::validate).unwrap();
        assert_eq!(docs.len(), 3);
        assert!(docs[0].is_ok());
        assert_eq!(docs[1].as_ref().unwrap_err().reason.kind(), "json");
        assert_eq!(docs[1].as_ref().unwrap_err().raw, b"not json");
        match &docs[2] {
            Err(BadDocument {
                reason: BadData::Invalid(errors),
                ..
            }) => {
                let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
                assert_eq!(fields, ["device", "value"]);
            }
            other => panic!("expected validation errors, got {other:?}"),
        }
        assert_eq!(
            docs[2].as_ref().unwrap_err().reason.to_string(),
            "failed validation: device: must not be empty; value: 500 is outside -100..=100"
        );
    }

    #[test]
    fn a_document_that_is_not_utf8_is_bad_json_with_its_place() {
        let docs = decode_payload::<Reading>(
            b"{\"device\":\"a\xff\",\"value\":1}\n{\"device\":\"\xc3\xa9\",\"value\":1}",
            DecodeLimits::default(),
            &Reading::validate,
        )
        .unwrap();
        let bad = docs[0].as_ref().unwrap_err();
        assert_eq!(bad.reason.kind(), "json");
        assert!(
            bad.reason.to_string().contains("line 1 column 13"),
            "{}",
            bad.reason
        );
        assert_eq!(docs[1].as_ref().unwrap().device, "é");
    }

    #[test]
    fn pretty_printed_single_document_is_one_record() {
        let data = b"{\n  \"device\": \"a\",\n  \"value\": 4\n}\n";
        let docs =
            decode_payload::<Reading>(data, DecodeLimits::default(), &Reading::validate).unwrap();
        assert_eq!(docs.len(), 1);
        assert!(docs[0].is_ok());
    }

    #[test]
    fn corrupt_gzip_fails_the_payload() {
        let mut data = gzip(b"{\"device\":\"a\",\"value\":2}");
        let n = data.len();
        data.truncate(n - 6);
        let err = decode_payload::<Reading>(&data, DecodeLimits::default(), &Reading::validate)
            .unwrap_err();
        assert_eq!(err.kind(), "gzip");
    }

    #[test]
    fn gzip_bomb_is_stopped_at_the_limit() {
        let data = gzip(&vec![b' '; 1_000_000]);
        let err = decompress(
            &data,
            DecodeLimits {
                max_decoded_bytes: 64 * 1024,
            },
        )
        .unwrap_err();
        assert_eq!(
            err,
            BadData::TooLarge {
                size: 64 * 1024 + 1,
                limit: 64 * 1024
            }
        );
    }

    #[test]
    fn oversized_raw_payload_is_rejected() {
        let err = decompress(
            &[b'x'; 100],
            DecodeLimits {
                max_decoded_bytes: 99,
            },
        )
        .unwrap_err();
        assert_eq!(err.kind(), "too_large");
    }

    #[test]
    fn cloudwatch_logs_payloads_are_one_document_per_log_event() {
        use super::cloudwatch_logs::LogEvent;
        let sample: serde_json::Value =
            serde_json::from_str(include_str!("../../../events/kinesis-cloudwatch-logs.json"))
                .unwrap();
        let payloads: Vec<Vec<u8>> = sample["Records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(r["kinesis"]["data"].as_str().unwrap())
                    .unwrap()
            })
            .collect();
        let none = |_: &LogEvent| Ok(());
        let docs =
            decode_payload::<LogEvent>(&payloads[0], DecodeLimits::default(), &none).unwrap();
        let ids: Vec<String> = docs.into_iter().map(|d| d.unwrap().id).collect();
        assert_eq!(ids.len(), 3);
        assert!(ids[0].ends_with("00") && ids[2].ends_with("02"), "{ids:?}");
        let second: LogEvent = serde_json::from_slice(
            &document_bytes(&payloads[0], DecodeLimits::default(), 1).unwrap(),
        )
        .unwrap();
        assert!(second.message.contains("sensor-0041"));
        // The control message decodes to nothing at all (not an empty-payload error).
        let control = decode_payload::<LogEvent>(&payloads[1], DecodeLimits::default(), &none);
        assert_eq!(control.unwrap().len(), 0);
    }

    #[test]
    fn blank_payload_is_empty() {
        assert_eq!(
            decode_payload::<Reading>(b" \n\n", DecodeLimits::default(), &Reading::validate)
                .unwrap_err(),
            BadData::Empty
        );
    }
}
