//! serde_json's compact output, written faster where output lines and the DynamoDB reader's
//! documents spend their time: struct keys and strings that need no escaping are copied as they
//! are, found with a word-at-a-time scan instead of serde_json's byte-by-byte table lookup.
//! Everything else (numbers, sequences, maps, enums, strings that do need escapes) is serde_json's
//! own code, so the bytes are the same.

use std::cell::RefCell;
use std::io;

use serde::ser::{self, Serialize, Serializer};
use serde_json::ser::{CompactFormatter, Compound};

/// Appends `value` as compact JSON to `out`, byte for byte what `serde_json::to_writer` writes.
/// On error `out` may hold part of the value.
pub(crate) fn write_value<V: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &V,
) -> serde_json::Result<()> {
    // serde_json's serializer cannot lend its writer back: both write through one cell.
    let cell = RefCell::new(std::mem::take(out));
    let result = value.serialize(&mut Writer {
        json: serde_json::Serializer::new(Shared(&cell)),
        out: &cell,
    });
    *out = cell.into_inner();
    result
}

/// Appends `text` as a JSON string to `out`: copied as it is when nothing in it needs an escape,
/// serde_json's bytes otherwise.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    write_framed(out, None, text, None);
}

/// [`write_str`] with the bytes `before` and `after` around the string (a key's comma and colon),
/// room for all of it reserved once.
#[inline]
pub(crate) fn write_framed(out: &mut Vec<u8>, before: Option<u8>, text: &str, after: Option<u8>) {
    if needs_escape(text.as_bytes()) {
        out.extend(before);
        serde_json::to_writer(&mut *out, text).expect("a string serialises into a Vec");
        out.extend(after);
        return;
    }
    out.reserve(text.len() + 4);
    if let Some(b) = before {
        out.push(b);
    }
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
    if let Some(b) = after {
        out.push(b);
    }
}

/// Whether JSON needs an escape anywhere in `s`: a quote, a backslash or a control character
/// (serde_json's escape set). Eight bytes at a time: a byte below `n` or equal to `c` is found
/// with the carry tricks of "Bit Twiddling Hacks" (exact for any `n` ≤ 128, in any byte lane).
/// The tail is one more word overlapping the last full one, and a string of 4 to 7 bytes its
/// first and last four bytes as one word: keys and short values take no byte-by-byte loop.
#[inline]
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A high bit set where a lane is below `n` (or zero): exact for whether any lane is, though
    // a borrow can also mark lanes above the first.
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w;
    let zero = |w: u64| w.wrapping_sub(ONES) & !w;
    let escape_in = |w: u64| {
        (below(w, 0x20) | zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\'))))
            & HIGH
            != 0
    };
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("eight bytes"));
    let half = |b: &[u8]| u64::from(u32::from_le_bytes(b.try_into().expect("four bytes")));
    match s.len() {
        0..=3 => s.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\'),
        4..=7 => escape_in(half(&s[..4]) | (half(&s[s.len() - 4..]) << 32)),
        n => {
            let mut words = s.chunks_exact(8);
            words.any(|w| escape_in(word(w)))
                || (!words.remainder().is_empty() && escape_in(word(&s[n - 8..])))
        }
    }
}

/// The output buffer as serde_json's writer.
struct Shared<'c>(&'c RefCell<Vec<u8>>);

impl io::Write for Shared<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Writer<'c> {
    json: serde_json::Serializer<Shared<'c>>,
    out: &'c RefCell<Vec<u8>>,
}

impl Writer<'_> {
    #[inline]
    fn raw(&self, bytes: &[u8]) {
        self.out.borrow_mut().extend_from_slice(bytes);
    }

    /// `text` as a JSON string, with the bytes `before` and `after` around it (a key's comma and
    /// colon).
    #[inline]
    fn string(&self, before: Option<u8>, text: &str, after: Option<u8>) {
        write_framed(&mut self.out.borrow_mut(), before, text, after);
    }
}

type Delegated<'s, 'c> = Compound<'s, Shared<'c>, CompactFormatter>;

/// Methods handed to serde_json's serializer as they are.
macro_rules! delegate {
    ($($method:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        $(fn $method(self, $($arg: $ty),*) -> serde_json::Result<$out> {
            (&mut self.json).$method($($arg),*)
        })*
    };
}

impl<'s, 'c> Serializer for &'s mut Writer<'c> {
    type Ok = ();
    type Error = serde_json::Error;
    type SerializeSeq = Delegated<'s, 'c>;
    type SerializeTuple = Delegated<'s, 'c>;
    type SerializeTupleStruct = Delegated<'s, 'c>;
    type SerializeTupleVariant = Delegated<'s, 'c>;
    type SerializeMap = Delegated<'s, 'c>;
    type SerializeStruct = Struct<'s, 'c>;
    type SerializeStructVariant = Delegated<'s, 'c>;

    delegate! {
        serialize_bool(v: bool) -> ();
        serialize_i8(v: i8) -> ();
        serialize_i16(v: i16) -> ();
        serialize_i32(v: i32) -> ();
        serialize_i64(v: i64) -> ();
        serialize_i128(v: i128) -> ();
        serialize_u8(v: u8) -> ();
        serialize_u16(v: u16) -> ();
        serialize_u32(v: u32) -> ();
        serialize_u64(v: u64) -> ();
        serialize_u128(v: u128) -> ();
        serialize_f32(v: f32) -> ();
        serialize_f64(v: f64) -> ();
        serialize_char(v: char) -> ();
        serialize_bytes(v: &[u8]) -> ();
        serialize_none() -> ();
        serialize_unit() -> ();
        serialize_unit_struct(name: &'static str) -> ();
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str) -> ();
        serialize_seq(len: Option<usize>) -> Delegated<'s, 'c>;
        serialize_tuple(len: usize) -> Delegated<'s, 'c>;
        serialize_tuple_struct(name: &'static str, len: usize) -> Delegated<'s, 'c>;
        serialize_tuple_variant(name: &'static str, index: u32, variant: &'static str, len: usize)
            -> Delegated<'s, 'c>;
        serialize_map(len: Option<usize>) -> Delegated<'s, 'c>;
        serialize_struct_variant(name: &'static str, index: u32, variant: &'static str, len: usize)
            -> Delegated<'s, 'c>;
    }

    fn serialize_str(self, v: &str) -> serde_json::Result<()> {
        self.string(None, v, None);
        Ok(())
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> serde_json::Result<()> {
        value.serialize(self)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> serde_json::Result<()> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> serde_json::Result<()> {
        (&mut self.json).serialize_newtype_variant(name, index, variant, value)
    }

    fn serialize_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> serde_json::Result<Struct<'s, 'c>> {
        if len == 0 {
            self.raw(b"{}");
            return Ok(Struct {
                writer: self,
                state: State::Closed,
            });
        }
        self.raw(b"{");
        Ok(Struct {
            writer: self,
            state: State::First,
        })
    }
}

/// Where a struct's output is: as serde_json tracks it, so an empty struct is `{}`.
#[derive(PartialEq, Eq)]
enum State {
    First,
    Rest,
    Closed,
}

struct Struct<'s, 'c> {
    writer: &'s mut Writer<'c>,
    state: State,
}

impl ser::SerializeStruct for Struct<'_, '_> {
    type Ok = ();
    type Error = serde_json::Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> serde_json::Result<()> {
        let comma = (self.state != State::First).then_some(b',');
        self.state = State::Rest;
        self.writer.string(comma, key, Some(b':'));
        value.serialize(&mut *self.writer)
    }

    fn end(self) -> serde_json::Result<()> {
        if self.state != State::Closed {
            self.writer.raw(b"}");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone, Serialize)]
    enum Kind {
        Unit,
        Newtype(String),
        Tuple(u8, String),
        Struct { a: String, b: Option<f64> },
    }

    #[derive(Debug, Clone, Serialize)]
    struct Inner {
        text: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        maybe: Option<i64>,
    }

    #[derive(Debug, Clone, Serialize)]
    struct Empty {}

    #[derive(Debug, Clone, Serialize)]
    struct Newtype(String);

    /// Flattened: serialised as a map.
    #[derive(Debug, Clone, Serialize)]
    struct Flat {
        a: String,
        #[serde(flatten)]
        rest: BTreeMap<String, String>,
    }

    #[derive(Debug, Clone, Serialize)]
    struct Output {
        #[serde(rename = "key \"quoted\"\n")]
        odd_key: u32,
        text: String,
        number: f64,
        inner: Inner,
        list: Vec<String>,
        map: BTreeMap<String, Inner>,
        kind: Kind,
        empty: Empty,
        newtype: Newtype,
        flat: Flat,
        bytes: Vec<u8>,
        unit: (),
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9 _:./-]{0,40}",
            any::<String>(),
            "[\\x00-\\x20\"\\\\a\u{e9}\u{1F600}]{0,20}",
        ]
    }

    prop_compose! {
        fn inner()(text in text(), maybe in any::<Option<i64>>()) -> Inner {
            Inner { text, maybe }
        }
    }

    prop_compose! {
        fn output()(
            odd_key in any::<u32>(), text in text(), number in any::<f64>(), inner in inner(),
            list in prop::collection::vec(text(), 0..4),
            map in prop::collection::btree_map(text(), inner(), 0..3),
            kind in prop_oneof![
                Just(Kind::Unit),
                text().prop_map(Kind::Newtype),
                (any::<u8>(), text()).prop_map(|(n, s)| Kind::Tuple(n, s)),
                (text(), any::<Option<f64>>()).prop_map(|(a, b)| Kind::Struct { a, b }),
            ],
            newtype in text(),
            flat in prop::collection::btree_map("[a-z]{1,5}", text(), 0..3),
            bytes in prop::collection::vec(any::<u8>(), 0..5),
        ) -> Output {
            Output { odd_key, text, number, inner, list, map, kind, empty: Empty {},
                     newtype: Newtype(newtype), flat: Flat { a: odd_key.to_string(), rest: flat }, bytes,
                     unit: () }
        }
    }

    proptest! {
        #[test]
        fn writes_what_serde_json_writes(value in output(), prefix in "[a-z]{0,3}") {
            let mut ours = prefix.clone().into_bytes();
            write_value(&mut ours, &value).unwrap();
            let mut theirs = prefix.into_bytes();
            serde_json::to_writer(&mut theirs, &value).unwrap();
            prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
        }

        #[test]
        fn strings_are_written_as_serde_json_writes_them(s in text()) {
            let mut ours = Vec::new();
            write_str(&mut ours, &s);
            prop_assert_eq!(ours, serde_json::to_vec(&s).unwrap());
            let table = s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\');
            prop_assert_eq!(needs_escape(s.as_bytes()), table);
        }
    }

    #[test]
    fn every_byte_that_needs_an_escape_is_found_in_every_lane_of_every_length() {
        // Lengths through every branch: bytes alone, two half words, words with and without an
        // overlapping tail.
        for len in 0..=25 {
            for bad in (0u8..0x20).chain([b'"', b'\\']) {
                for at in 0..len {
                    let mut s = vec![b'a'; len];
                    s[at] = bad;
                    assert!(needs_escape(&s), "{bad:#x} at {at} of {len}");
                }
            }
            for fine in (0x20u8..=0xff).filter(|b| *b != b'"' && *b != b'\\') {
                assert!(!needs_escape(&vec![fine; len]), "{fine:#x} x {len}");
            }
        }
    }

    #[test]
    fn errors_are_serde_jsons() {
        let mut bad = std::collections::HashMap::new();
        bad.insert(vec![1], 2); // a map with a list as key is not JSON
        let ours = write_value(&mut Vec::new(), &bad).unwrap_err();
        assert_eq!(
            ours.to_string(),
            serde_json::to_vec(&bad).unwrap_err().to_string()
        );
    }
}
