//! Parts of the batch readers (Kinesis, SQS, DynamoDB Streams, Kafka, Firehose): a reader
//! takes only the fields its source uses and appends each one's text or bytes to a buffer of the
//! whole batch, keeping where it sits ([`Span`]), instead of allocating a string per field as
//! `aws_lambda_events`' models do.
//!
//! A lean reader reads every event its full model reads, to the same values (each has a
//! differential fuzz target); it may read more, since it does not check fields it skips.

use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

/// Where one field's text or bytes sit in a batch's buffer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) start: usize,
    pub(crate) end: usize,
}

impl Span {
    /// The span of what was appended to a buffer that held `start` bytes before.
    fn since(start: usize, len: usize) -> Span {
        Span { start, end: len }
    }

    /// The text this span covers.
    pub(crate) fn text(self, text: &str) -> &str {
        &text[self.start..self.end]
    }

    /// The bytes this span covers.
    pub(crate) fn bytes(self, bytes: &[u8]) -> &[u8] {
        &bytes[self.start..self.end]
    }
}

/// Fails on a key seen twice, as a derived model does.
pub(crate) fn once<T, E: de::Error>(slot: &Option<T>, name: &'static str) -> Result<(), E> {
    match slot {
        Some(_) => Err(E::duplicate_field(name)),
        None => Ok(()),
    }
}

/// The buffer sizes of the last batch a model read, which the next one reserves up front: a warm
/// function's batches are alike, and growing the buffers by doubling cost an eighth of the
/// Kinesis parse (`kinesis-throughput` under callgrind).
pub(crate) struct LastSizes<const N: usize>([AtomicUsize; N]);

impl<const N: usize> LastSizes<N> {
    /// No batch read yet.
    pub(crate) const fn new() -> Self {
        Self([const { AtomicUsize::new(0) }; N])
    }

    /// The size of buffer `i` in the last batch.
    pub(crate) fn get(&self, i: usize) -> usize {
        self.0[i].load(Ordering::Relaxed)
    }

    /// Remembers this batch's sizes.
    pub(crate) fn set(&self, sizes: [usize; N]) {
        for (slot, size) in self.0.iter().zip(sizes) {
            slot.store(size, Ordering::Relaxed);
        }
    }
}

/// A batch as a lean reader keeps it: its entries, and the two buffers their spans point into.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Buffers<E> {
    pub(crate) entries: Vec<E>,
    /// Ids, keys and names, one after the other.
    pub(crate) text: String,
    /// The records' payloads, one after the other.
    pub(crate) data: Vec<u8>,
}

impl<E> Default for Buffers<E> {
    fn default() -> Self {
        Buffers {
            entries: Vec::new(),
            text: String::new(),
            data: Vec::new(),
        }
    }
}

/// One entry of a lean reader's batch (a record, a message).
pub(crate) trait ReadEntry: Sized {
    /// What a list of entries is called in an error (`a list of SQS messages`).
    const LIST: &'static str;

    /// The buffer sizes of the last batch this reader read.
    fn last_sizes() -> &'static LastSizes<3>;

    /// What one entry is called in an error (`an SQS message`).
    const ONE: &'static str;

    /// Reads one entry's fields, appending its parts to the batch's buffers.
    fn read_fields<'de, A: MapAccess<'de>>(
        map: A,
        buffers: &mut Buffers<Self>,
    ) -> Result<Self, A::Error>;
}

/// The naming part of a [`ReadEntry`] impl: what one entry and a list of them are called in
/// errors, and the reader's own buffer sizes of its last batch.
macro_rules! entry_names {
    ($one:literal, $list:literal) => {
        const ONE: &'static str = $one;
        const LIST: &'static str = $list;

        fn last_sizes() -> &'static $crate::source::batch_reader::LastSizes<3> {
            static LAST_SIZES: $crate::source::batch_reader::LastSizes<3> =
                $crate::source::batch_reader::LastSizes::new();
            &LAST_SIZES
        }
    };
}
pub(crate) use entry_names;

/// A batch's list of entries, read into its buffers, which are reserved at the last batch's
/// sizes first.
pub(crate) struct EntriesSeed<'b, E>(pub(crate) &'b mut Buffers<E>);

impl<'de, E: ReadEntry> DeserializeSeed<'de> for EntriesSeed<'_, E> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, E: ReadEntry> Visitor<'de> for EntriesSeed<'_, E> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(E::LIST)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (buffers, sizes) = (self.0, E::last_sizes());
        buffers
            .entries
            .reserve(seq.size_hint().unwrap_or(0).max(sizes.get(0)));
        buffers.text.reserve(sizes.get(1));
        buffers.data.reserve(sizes.get(2));
        while let Some(entry) = seq.next_element_seed(EntrySeed(&mut *buffers))? {
            buffers.entries.push(entry);
        }
        sizes.set([
            buffers.entries.len(),
            buffers.text.len(),
            buffers.data.len(),
        ]);
        Ok(())
    }
}

/// Reads an event that is an object holding its entries under `Records` (Kinesis, SQS, DynamoDB
/// Streams); its other keys are skipped. `Records` is required, and refused when given twice.
/// `event` says what the event is in an error (`an SQS event`).
pub(crate) fn read_records<'de, D, E>(
    deserializer: D,
    event: &'static str,
) -> Result<Buffers<E>, D::Error>
where
    D: Deserializer<'de>,
    E: ReadEntry,
{
    deserializer.deserialize_map(RecordsVisitor(event, PhantomData))
}

struct RecordsVisitor<E>(&'static str, PhantomData<E>);

impl<'de, E: ReadEntry> Visitor<'de> for RecordsVisitor<E> {
    type Value = Buffers<E>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (an object with Records)", self.0)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Buffers<E>, A::Error> {
        let mut buffers = None;
        while let Some(records) = map.next_key_seed(IsRecords)? {
            if records {
                once(&buffers, "Records")?;
                let mut b = Buffers::default();
                map.next_value_seed(EntriesSeed(&mut b))?;
                buffers = Some(b);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        buffers.ok_or_else(|| de::Error::missing_field("Records"))
    }
}

/// Whether an event's key is `Records`.
struct IsRecords;

impl<'de> DeserializeSeed<'de> for IsRecords {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        read_name(deserializer, |name| name == b"Records")
    }
}

struct EntrySeed<'b, E>(&'b mut Buffers<E>);

impl<'de, E: ReadEntry> DeserializeSeed<'de> for EntrySeed<'_, E> {
    type Value = E;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<E, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, E: ReadEntry> Visitor<'de> for EntrySeed<'_, E> {
    type Value = E;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(E::ONE)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<E, A::Error> {
        E::read_fields(map, self.0)
    }
}

/// Declares the keys a reader takes: an enum with a variant per JSON name and one (after
/// `else`) for every other key, read from the name's bytes by [`read_name`].
macro_rules! name_keys {
    ($(#[$meta:meta])* enum $name:ident { $($variant:ident = $json:literal,)* } else $other:ident) => {
        $(#[$meta])*
        enum $name {
            $($variant,)*
            $other,
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::source::batch_reader::read_name(deserializer, |name| match name {
                    $($json => $name::$variant,)*
                    _ => $name::$other,
                })
            }
        }
    };
}
pub(crate) use name_keys;

/// Reads an object key as a batch reader's name for it (`name` maps the key's bytes), as bytes:
/// the names compared are ASCII, and serde_json checks a key read as a string for UTF-8 first
/// (a sixth of the Kinesis parse went to such checks).
pub(crate) fn read_name<'de, D, K>(
    deserializer: D,
    name: impl FnOnce(&[u8]) -> K,
) -> Result<K, D::Error>
where
    D: Deserializer<'de>,
{
    deserializer.deserialize_bytes(NameVisitor(name))
}

struct NameVisitor<F>(F);

impl<K, F: FnOnce(&[u8]) -> K> Visitor<'_> for NameVisitor<F> {
    type Value = K;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<K, E> {
        Ok((self.0)(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<K, E> {
        self.visit_bytes(v.as_bytes())
    }
}

/// A string appended to the batch's text.
pub(crate) struct Text<'b>(pub(crate) &'b mut String);

impl<'de> DeserializeSeed<'de> for Text<'_> {
    type Value = Span;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Span, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Text<'_> {
    type Value = Span;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
        let start = self.0.len();
        self.0.push_str(v);
        Ok(Span::since(start, self.0.len()))
    }
}

/// The unescaped bytes of a string, appended to the batch's data and not checked for UTF-8: a
/// payload is checked once more where it is parsed as a document, and a payload that is not
/// UTF-8 is then that record's bad data rather than the whole batch's.
pub(crate) struct Bytes<'b>(pub(crate) &'b mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for Bytes<'_> {
    type Value = Span;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Span, D::Error> {
        deserializer.deserialize_bytes(self)
    }
}

impl Visitor<'_> for Bytes<'_> {
    type Value = Span;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Span, E> {
        let start = self.0.len();
        self.0.extend_from_slice(v);
        Ok(Span::since(start, self.0.len()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
        self.visit_bytes(v.as_bytes())
    }
}

/// A value or `null` (read as an absent value, as `Option` reads it): `Optional(Text(..))`,
/// `Optional(Bytes(..))`.
pub(crate) struct Optional<S>(pub(crate) S);

impl<'de, S: DeserializeSeed<'de, Value = Span>> DeserializeSeed<'de> for Optional<S> {
    type Value = Option<Span>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<Span>, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de, Value = Span>> Visitor<'de> for Optional<S> {
    type Value = Option<Span>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Option<Span>, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Span>, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<Span>, D::Error> {
        self.0.deserialize(d).map(Some)
    }
}

/// Base64 text decoded onto the end of the batch's data. Read as bytes: base64 is ASCII, so the
/// UTF-8 check a string gets would be spent for nothing.
pub(crate) struct Base64<'b>(pub(crate) &'b mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for Base64<'_> {
    type Value = Span;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Span, D::Error> {
        deserializer.deserialize_bytes(self)
    }
}

impl Visitor<'_> for Base64<'_> {
    type Value = Span;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("base64 text")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Span, E> {
        let start = self.0.len();
        base64_simd::STANDARD
            .decode_append(v, self.0)
            .map_err(|_| {
                self.0.truncate(start);
                E::custom("data is not base64")
            })?;
        Ok(Span::since(start, self.0.len()))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Span, E> {
        self.visit_bytes(v.as_bytes())
    }
}

/// Epoch milliseconds as a number or a string of one (Kafka's `timestamp`, Firehose's
/// `approximateArrivalTimestamp`), taken as `aws_lambda_events`' `MillisecondTimestamp` takes
/// them: through `f64`, a whole, non-negative number below 2^64, then split into seconds and
/// milliseconds by floating-point arithmetic, which can be a millisecond off. A fraction of a
/// millisecond is an error here, where that model panics.
pub(crate) struct ModelMillis(pub(crate) DateTime<Utc>);

impl<'de> Deserialize<'de> for ModelMillis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(EpochVisitor::<Millis>(PhantomData))
            .map(ModelMillis)
    }
}

/// How an epoch time is read from a number (or a number in a string).
pub(crate) trait EpochUnit {
    /// What the visitor expects, for errors.
    const EXPECTING: &'static str;

    /// The time of `v` units after the epoch.
    fn time<E: de::Error>(v: f64) -> Result<DateTime<Utc>, E>;

    /// The number a string holds.
    fn number<E: de::Error>(v: &str) -> Result<f64, E>;
}

/// Reads an epoch time in unit `U`, from any JSON number or a string of one.
pub(crate) struct EpochVisitor<U>(pub(crate) PhantomData<U>);

impl<U: EpochUnit> Visitor<'_> for EpochVisitor<U> {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(U::EXPECTING)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<DateTime<Utc>, E> {
        U::time(v)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<DateTime<Utc>, E> {
        U::time(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<DateTime<Utc>, E> {
        U::time(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<DateTime<Utc>, E> {
        U::time(U::number(v)?)
    }
}

/// Epoch milliseconds as [`ModelMillis`] reads them.
struct Millis;

impl EpochUnit for Millis {
    const EXPECTING: &'static str = "epoch milliseconds";

    fn time<E: de::Error>(v: f64) -> Result<DateTime<Utc>, E> {
        // 2^64: the full model reads the number's decimal digits as a u64.
        const LIMIT: f64 = 18_446_744_073_709_551_616.0;
        if !v.is_finite() || v.is_sign_negative() || v >= LIMIT {
            return Err(E::custom(format!(
                "timestamp {v} is not epoch milliseconds"
            )));
        }
        if v.fract() != 0.0 {
            return Err(E::custom(format!(
                "timestamp {v} is malformed: a fraction of a millisecond"
            )));
        }
        let seconds = v / 1000.0;
        let nanos = (seconds.fract() * 1000.0) as u32 * 1_000_000;
        Utc.timestamp_opt(seconds as i64, nanos)
            .latest()
            .ok_or_else(|| E::custom(format!("timestamp {v} is out of range")))
    }

    fn number<E: de::Error>(v: &str) -> Result<f64, E> {
        v.parse::<f64>()
            .map_err(|_| E::custom(format!("timestamp {v:?} is not a number")))
    }
}
