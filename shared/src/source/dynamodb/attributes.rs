//! DynamoDB attribute values written as plain JSON while the event is read: `S` → string, `N` →
//! number ([`Number`]), `BOOL`, `NULL`, `M` → object, `L` → array, `B` → base64 string, `SS` /
//! `NS` / `BS` → arrays. They follow what `serde_dynamo`'s `AttributeValue` accepts and refuses
//! (one known type name per value, base64 for `B` and `BS`), and what [`super::to_json`] makes of
//! it. A name given twice in a map keeps its last value, as a map does.

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, RandomState};

use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::source::batch_reader::name_keys;
use crate::util::json;

/// What an `N` value's text becomes in the document. Its readers (Athena's JSON SerDe into
/// `DOUBLE`, JavaScript, jq) hold numbers as `f64`, so a number is written as one only when an
/// `f64` keeps it: an integer literal of at most 2^53 in magnitude, or another literal (a
/// fraction or an exponent) of at most 15 significant digits. Anything else — a longer integer,
/// a longer decimal, beyond `f64`'s range either way — is kept as its text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    /// A whole number of at most 2^53 in magnitude.
    Integer(i64),
    /// A finite number with at most 15 significant digits.
    Float(f64),
    /// Anything else, kept as text.
    Text,
}

/// The largest magnitude up to which every integer is an `f64`.
const F64_EXACT_INTEGERS: i64 = 1 << 53;

impl Number {
    /// Reads an `N` value's text.
    pub(crate) fn read(text: &str) -> Number {
        if let Ok(i) = text.parse::<i64>() {
            return if i.unsigned_abs() <= F64_EXACT_INTEGERS.unsigned_abs() {
                Number::Integer(i)
            } else {
                Number::Text
            };
        }
        if text
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b'+')
        {
            // An integer beyond i64.
            return Number::Text;
        }
        // Significant digits: from the first non-zero digit of the mantissa to its last.
        let mantissa = text.split(['e', 'E']).next().unwrap_or("");
        let (mut count, mut first, mut last) = (0, None, 0);
        for digit in mantissa.bytes().filter(u8::is_ascii_digit) {
            if digit != b'0' {
                first.get_or_insert(count);
                last = count + 1;
            }
            count += 1;
        }
        let significant = first.map_or(0, |first| last - first);
        match text.parse::<f64>() {
            // A non-zero value that parses to zero underflowed.
            Ok(f) if significant <= 15 && f.is_finite() && (f != 0.0 || significant == 0) => {
                Number::Float(f)
            }
            _ => Number::Text,
        }
    }
}

/// Appends an `N` value's text as the event reader writes it (for tests beside [`super::to_json`]).
#[cfg(test)]
pub(crate) fn write_number_text(out: &mut Vec<u8>, text: &str) {
    write_number::<serde_json::Error>(out, text).expect("a number's text is written");
}

/// Appends `text` as a JSON string.
fn write_str<E: de::Error>(out: &mut Vec<u8>, text: &str) -> Result<(), E> {
    json::write_str(out, text);
    Ok(())
}

/// Appends an `N` value's text as [`Number`] makes it.
fn write_number<E: de::Error>(out: &mut Vec<u8>, text: &str) -> Result<(), E> {
    match Number::read(text) {
        Number::Integer(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        Number::Float(f) => serde_json::to_writer(&mut *out, &f).map_err(E::custom)?,
        Number::Text => write_str(out, text)?,
    }
    Ok(())
}

/// Appends base64 text once `serde_dynamo`'s reading accepts it (the standard alphabet with
/// canonical padding), which is also how [`super::to_json`] writes the bytes again.
fn write_base64<E: de::Error>(out: &mut Vec<u8>, text: &str) -> Result<(), E> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| E::custom(format!("Failed to decode base64: {e}")))?;
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
    Ok(())
}

/// An item (`Keys`, `NewImage`, `OldImage`): a map of attribute values, or `null` for none.
/// Writes the item's JSON object and gives how many names it has (0 for `null`, then nothing is
/// written).
pub(crate) struct ItemSeed<'b>(pub(crate) &'b mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ItemSeed<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of attribute values or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<usize, E> {
        Ok(0)
    }

    fn visit_unit<E: de::Error>(self) -> Result<usize, E> {
        Ok(0)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_map(MapWriter(self.0))
    }
}

/// Above this many names, a map finds a repeated name through a set of hashes instead of
/// comparing with every name before it.
const LINEAR_NAMES: usize = 32;

/// A map of attribute values (an item or `M`), written as a JSON object.
struct MapWriter<'b>(&'b mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for MapWriter<'_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<usize, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MapWriter<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of attribute values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let out = self.0;
        let start = out.len();
        out.push(b'{');
        // Where each name sits in `out` (as written, quoted and escaped: equal names are equal
        // bytes), and the names' hashes once there are many.
        let mut names: Vec<(usize, usize)> = Vec::new();
        let mut hashes: Option<(RandomState, HashSet<u64>)> = None;
        let mut repeated = false;
        loop {
            let mark = out.len();
            if !names.is_empty() {
                out.push(b',');
            }
            let name_start = out.len();
            // A name is read as a string, as the map's `String` keys are (checked for UTF-8).
            if map.next_key_seed(Scalar::text(&mut *out))?.is_none() {
                out.truncate(mark);
                break;
            }
            let name = (name_start, out.len());
            repeated |= seen_before(out, &names, &mut hashes, name);
            names.push(name);
            out.push(b':');
            map.next_value_seed(ValueWriter(&mut *out))?;
        }
        out.push(b'}');
        if repeated {
            // Rare (Lambda never sends it): the map's own reading keeps each name's last value.
            let object: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&out[start..]).map_err(de::Error::custom)?;
            out.truncate(start);
            serde_json::to_writer(&mut *out, &object).map_err(de::Error::custom)?;
            return Ok(object.len());
        }
        Ok(names.len())
    }
}

/// Whether the name at `name` in `out` is one of `names`.
fn seen_before(
    out: &[u8],
    names: &[(usize, usize)],
    hashes: &mut Option<(RandomState, HashSet<u64>)>,
    name: (usize, usize),
) -> bool {
    let text = |(start, end): (usize, usize)| &out[start..end];
    let same = |other: &(usize, usize)| text(*other) == text(name);
    if names.len() < LINEAR_NAMES {
        return names.iter().any(same);
    }
    let (state, set) = hashes.get_or_insert_with(|| {
        let state = RandomState::new();
        let set = names.iter().map(|n| state.hash_one(text(*n))).collect();
        (state, set)
    });
    // A hash seen before is a repeat or a collision: the names tell which.
    !set.insert(state.hash_one(text(name))) && names.iter().any(same)
}

name_keys! {
    /// The type names of an attribute value.
    enum Type {
        N = b"N",
        S = b"S",
        Bool = b"BOOL",
        B = b"B",
        Null = b"NULL",
        M = b"M",
        L = b"L",
        Ss = b"SS",
        Ns = b"NS",
        Bs = b"BS",
    } else Unknown
}

/// One attribute value (`{"S": "x"}`), written as its plain JSON.
struct ValueWriter<'b>(&'b mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for ValueWriter<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ValueWriter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"an object with a single key "N", "S", "BOOL", "B", "NULL", "M", "L", "SS", "NS", or "BS""#)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.0;
        let Some(kind) = map.next_key::<Type>()? else {
            return Err(de::Error::custom(
                "Expected exactly one key in the object, found none",
            ));
        };
        match kind {
            Type::N => map.next_value_seed(Scalar(out, Kind::Number))?,
            Type::S => map.next_value_seed(Scalar(out, Kind::Text))?,
            Type::B => map.next_value_seed(Scalar(out, Kind::Binary))?,
            Type::Bool => {
                let value: bool = map.next_value()?;
                out.extend_from_slice(if value { b"true" } else { b"false" });
            }
            Type::Null => {
                map.next_value::<bool>()?;
                out.extend_from_slice(b"null");
            }
            Type::M => {
                map.next_value_seed(MapWriter(&mut *out))?;
            }
            Type::L => map.next_value_seed(ListWriter(out, None))?,
            Type::Ss => map.next_value_seed(ListWriter(out, Some(Kind::Text)))?,
            Type::Ns => map.next_value_seed(ListWriter(out, Some(Kind::Number)))?,
            Type::Bs => map.next_value_seed(ListWriter(out, Some(Kind::Binary)))?,
            Type::Unknown => {
                return Err(de::Error::custom(
                    "an attribute value's key is not a known DynamoDB type",
                ))
            }
        }
        if map.next_key::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(
                "Expected exactly one key in the object, found multiple keys",
            ));
        }
        Ok(())
    }
}

/// What a string value is: how it is written.
#[derive(Clone, Copy)]
enum Kind {
    /// `S`, `SS`: a string.
    Text,
    /// `N`, `NS`: see [`Number`].
    Number,
    /// `B`, `BS`: base64, checked and written padded.
    Binary,
}

impl Kind {
    fn write<E: de::Error>(self, out: &mut Vec<u8>, text: &str) -> Result<(), E> {
        match self {
            Kind::Text => write_str(out, text),
            Kind::Number => write_number(out, text),
            Kind::Binary => write_base64(out, text),
        }
    }
}

/// A string value, written as its kind is.
pub(super) struct Scalar<'b>(&'b mut Vec<u8>, Kind);

impl<'b> Scalar<'b> {
    /// A string written as a JSON string (an attribute's name, `S`, the record's event name).
    pub(super) fn text(out: &'b mut Vec<u8>) -> Self {
        Scalar(out, Kind::Text)
    }
}

impl<'de> DeserializeSeed<'de> for Scalar<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Scalar<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.1.write(self.0, v)
    }
}

/// `L` (attribute values, `None`) or a set (`SS`, `NS`, `BS`: strings of one kind), written as
/// a JSON array.
struct ListWriter<'b>(&'b mut Vec<u8>, Option<Kind>);

impl<'de> DeserializeSeed<'de> for ListWriter<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ListWriter<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.1 {
            None => "a list of attribute values",
            Some(_) => "a list of strings",
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (out, kind) = (self.0, self.1);
        out.push(b'[');
        let mut first = true;
        loop {
            let mark = out.len();
            if !first {
                out.push(b',');
            }
            let more = match kind {
                None => seq.next_element_seed(ValueWriter(&mut *out))?,
                Some(kind) => seq.next_element_seed(Scalar(&mut *out, kind))?,
            };
            if more.is_none() {
                out.truncate(mark);
                break;
            }
            first = false;
        }
        out.push(b']');
        Ok(())
    }
}
