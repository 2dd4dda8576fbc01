//! The record an S3 on-failure destination stored: classified like any other failure report,
//! with its `payload` (the whole batch, up to megabytes) measured while it is parsed, never kept.

use serde_json::Value;

use super::classify::{classify, Incoming};

/// Classifies the record an S3 on-failure destination stored (JSON text). Its `payload` — the
/// whole batch, up to megabytes — is measured while it is parsed and never kept.
pub fn classify_stored(text: &[u8]) -> serde_json::Result<Incoming> {
    let StoredFields {
        fields,
        payload_bytes,
    } = serde_json::from_slice(text)?;
    let mut incoming = classify(&Value::Object(fields));
    if let Incoming::Invocation(record) = &mut incoming {
        record.request_payload_bytes = record.request_payload_bytes.or(payload_bytes);
    }
    Ok(incoming)
}

/// A stored record's fields but `payload`, and the length of that.
struct StoredFields {
    fields: serde_json::Map<String, Value>,
    payload_bytes: Option<usize>,
}

impl<'de> serde::Deserialize<'de> for StoredFields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = StoredFields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<StoredFields, A::Error> {
                let mut fields = serde_json::Map::new();
                let mut payload_bytes = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "payload" {
                        payload_bytes = Some(map.next_value::<TextLength>()?.0);
                    } else {
                        fields.insert(key, map.next_value()?);
                    }
                }
                Ok(StoredFields {
                    fields,
                    payload_bytes,
                })
            }
        }
        deserializer.deserialize_map(Fields)
    }
}

/// The length of a string value (anything else counts as empty), without keeping it.
struct TextLength(usize);

impl<'de> serde::Deserialize<'de> for TextLength {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Length;
        impl<'de> serde::de::Visitor<'de> for Length {
            type Value = TextLength;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TextLength, E> {
                Ok(TextLength(v.len()))
            }
            // Anything else is skipped whole and counts as nothing.
            fn visit_unit<E: serde::de::Error>(self) -> Result<TextLength, E> {
                Ok(TextLength(0))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<TextLength, E> {
                Ok(TextLength(0))
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<TextLength, E> {
                Ok(TextLength(0))
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<TextLength, E> {
                Ok(TextLength(0))
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<TextLength, E> {
                Ok(TextLength(0))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<TextLength, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(TextLength(0))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<TextLength, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(TextLength(0))
            }
        }
        deserializer.deserialize_any(Length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_stored_record_is_classified_with_its_payload_measured_not_kept() {
        let record = json!({"requestContext":{"requestId":"r","functionArn":"arn:aws:lambda:us-east-1:1:function:f","condition":"RecordAgeExceeded"},
            "payload": "{\"Records\":[1,2,3]}",
            "KinesisBatchInfo":{"shardId":"shardId-1","startSequenceNumber":"1","endSequenceNumber":"9","streamArn":"arn:aws:kinesis:us-east-1:1:stream/s"}});
        let Incoming::Invocation(r) = classify_stored(record.to_string().as_bytes()).unwrap()
        else {
            panic!("an invocation record")
        };
        assert_eq!(r.request_payload_bytes, Some(19));
        assert_eq!(r.batch.unwrap().shard_id, "shardId-1");
        // A payload that is not text is skipped; what is not a JSON object is an error.
        let odd = json!({"requestContext":{"functionArn":"arn:aws:lambda:us-east-1:1:function:f","condition":"c"},"payload":{"a":[1,{"b":null}]}});
        assert!(matches!(
            classify_stored(odd.to_string().as_bytes()),
            Ok(Incoming::Invocation(_))
        ));
        assert!(classify_stored(b"[1]").is_err());
        assert!(classify_stored(b"hello").is_err());
    }
}
