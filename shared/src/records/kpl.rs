//! Records aggregated by the Kinesis Producer Library (KPL): many user records in one Kinesis
//! record, to pack small records into the 1 MB / 1,000 records per second of a shard.
//!
//! Format (the KPL's aggregation format): the magic bytes `F3 89 9A C2`, a protobuf
//! `AggregatedRecord`, then the MD5 digest of the protobuf bytes. A record that has the magic but
//! is too short, fails the digest or does not decode is not an aggregate (`Aggregate::Corrupt`):
//! it is quarantined whole, with what is wrong as the reason.

use md5::{Digest, Md5};
use prost::Message;

/// The first bytes of an aggregated record.
pub(crate) const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];
const DIGEST_LEN: usize = 16;

/// The protobuf message of an aggregated record.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct AggregatedRecord {
    /// Partition keys, indexed by the records.
    #[prost(string, repeated, tag = "1")]
    pub partition_key_table: Vec<String>,
    /// Explicit hash keys, indexed by the records.
    #[prost(string, repeated, tag = "2")]
    pub explicit_hash_key_table: Vec<String>,
    /// The user records.
    #[prost(message, repeated, tag = "3")]
    pub records: Vec<SubRecord>,
}

/// One user record of an aggregate.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct SubRecord {
    /// Index into the partition key table.
    #[prost(uint64, required, tag = "1")]
    pub partition_key_index: u64,
    /// Index into the explicit hash key table.
    #[prost(uint64, optional, tag = "2")]
    pub explicit_hash_key_index: Option<u64>,
    /// The user record's bytes.
    #[prost(bytes = "vec", required, tag = "3")]
    pub data: Vec<u8>,
    /// Tags (unused by the KPL).
    #[prost(message, repeated, tag = "4")]
    pub tags: Vec<Tag>,
}

/// A tag of a user record.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct Tag {
    /// The key.
    #[prost(string, required, tag = "1")]
    pub key: String,
    /// The value.
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

/// What a record's bytes are.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Aggregate {
    /// Not an aggregate: no magic bytes.
    Plain,
    /// An aggregate and its user records.
    Records(AggregatedRecord),
    /// The magic bytes, but the rest does not check (why). No JSON or gzip payload starts with
    /// those bytes, so the record could only be quarantined as a plain record: the reason says
    /// what is wrong with the aggregate instead.
    Corrupt(String),
}

/// Reads a record's bytes as a KPL aggregate.
pub(crate) fn read(data: &[u8]) -> Aggregate {
    let Some(body) = data.strip_prefix(&MAGIC) else {
        return Aggregate::Plain;
    };
    if body.len() < DIGEST_LEN {
        return Aggregate::Corrupt(format!(
            "KPL aggregate of {} bytes is shorter than its MD5 digest",
            data.len()
        ));
    }
    let (message, digest) = body.split_at(body.len() - DIGEST_LEN);
    if Md5::digest(message).as_slice() != digest {
        return Aggregate::Corrupt("KPL aggregate fails its MD5 check".into());
    }
    match AggregatedRecord::decode(message) {
        Ok(records) => Aggregate::Records(records),
        Err(e) => Aggregate::Corrupt(format!("KPL aggregate body does not decode: {e}")),
    }
}

/// Builds an aggregated record of `(partition key, data)` user records, as the KPL does (for
/// tests, samples and producers).
pub fn aggregate(records: &[(&str, &[u8])]) -> Vec<u8> {
    let mut keys: Vec<String> = Vec::new();
    let mut subs = Vec::with_capacity(records.len());
    for (key, data) in records {
        let index = match keys.iter().position(|k| k == key) {
            Some(i) => i,
            None => {
                keys.push(key.to_string());
                keys.len() - 1
            }
        };
        subs.push(SubRecord {
            partition_key_index: index as u64,
            explicit_hash_key_index: None,
            data: data.to_vec(),
            tags: Vec::new(),
        });
    }
    let message = AggregatedRecord {
        partition_key_table: keys,
        explicit_hash_key_table: Vec::new(),
        records: subs,
    }
    .encode_to_vec();
    let mut out = Vec::with_capacity(MAGIC.len() + message.len() + DIGEST_LEN);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&message);
    out.extend_from_slice(&Md5::digest(&message));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates_round_trip_with_their_partition_keys() {
        let data = aggregate(&[("a", b"{\"x\":1}"), ("b", b"{\"x\":2}"), ("a", b"")]);
        let Aggregate::Records(agg) = read(&data) else {
            panic!("a sound aggregate")
        };
        assert_eq!(agg.records.len(), 3);
        assert_eq!(agg.partition_key_table, ["a", "b"]);
        assert_eq!(agg.records[2].partition_key_index, 0);
        assert_eq!(agg.records[1].data, b"{\"x\":2}");
    }

    #[test]
    fn a_bad_digest_or_body_is_corrupt_with_a_reason() {
        let mut data = aggregate(&[("a", b"{}")]);
        *data.last_mut().unwrap() ^= 1;
        assert_eq!(
            read(&data),
            Aggregate::Corrupt("KPL aggregate fails its MD5 check".into())
        );
        assert!(matches!(read(&MAGIC), Aggregate::Corrupt(r) if r.contains("shorter")));
        assert_eq!(read(b"{}"), Aggregate::Plain);
    }

    #[test]
    fn only_sound_aggregates_deaggregate() {
        let mut data = aggregate(&[("a", b"{}")]);
        *data.last_mut().unwrap() ^= 1;
        assert!(!matches!(read(&data), Aggregate::Records(_)));
        assert!(!matches!(read(&MAGIC), Aggregate::Records(_)));
        assert!(!matches!(read(b"{\"plain\":true}"), Aggregate::Records(_)));
        // The right digest over bytes that are not the message.
        let junk = [0xFFu8; 8];
        let mut forged = MAGIC.to_vec();
        forged.extend_from_slice(&junk);
        forged.extend_from_slice(&Md5::digest(junk));
        assert!(!matches!(read(&forged), Aggregate::Records(_)));
    }
}
