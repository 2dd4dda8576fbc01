//! One CSV line split into fields, by a parser built once per object.

use serde::de::DeserializeOwned;

use crate::records::{BadData, Check};

/// Splits one CSV line into fields with a parser built once per object: building a CSV reader
/// per line (its state machine and buffer) cost two thirds of the ingest path's time.
pub(super) struct CsvLines {
    core: csv_core::Reader,
    fields: Vec<u8>,
    ends: Vec<usize>,
    record: csv::ByteRecord,
}

impl CsvLines {
    pub(super) fn new() -> Self {
        CsvLines {
            // The same dialect as `csv::Reader`'s defaults: comma, double quote, quotes doubled.
            core: csv_core::ReaderBuilder::new().build(),
            fields: vec![0; 1024],
            ends: vec![0; 32],
            record: csv::ByteRecord::new(),
        }
    }

    /// The fields of `line` (one record, no terminator needed); `None` for an empty line.
    fn parse(&mut self, line: &[u8]) -> Option<&csv::ByteRecord> {
        use csv_core::ReadRecordResult;
        // Without quotes or line breaks a record is its bytes between commas: csv_core's state
        // machine, which takes every byte in turn, was the most costly step of reading a row.
        // The fields are the same (checked against `csv::Reader`).
        if !line.is_empty() && memchr::memchr3(b'"', b'\r', b'\n', line).is_none() {
            self.record.clear();
            let mut start = 0;
            for_each_comma(line, |comma| {
                self.record.push_field(&line[start..comma]);
                start = comma + 1;
            });
            self.record.push_field(&line[start..]);
            return Some(&self.record);
        }
        self.core.reset();
        let (mut input, mut written, mut ended, mut at_end) = (line, 0, 0, false);
        loop {
            let (result, read, out, ends) =
                self.core
                    .read_record(input, &mut self.fields[written..], &mut self.ends[ended..]);
            input = &input[read..];
            written += out;
            ended += ends;
            match result {
                ReadRecordResult::Record => break,
                ReadRecordResult::End => return None,
                // An empty input is the end of the data: the last record is completed.
                ReadRecordResult::InputEmpty if !at_end => at_end = true,
                ReadRecordResult::InputEmpty => return None,
                ReadRecordResult::OutputFull => self.fields.resize(self.fields.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
            }
        }
        self.record.clear();
        let mut start = 0;
        for &end in &self.ends[..ended] {
            self.record.push_field(&self.fields[start..end]);
            start = end;
        }
        Some(&self.record)
    }
}

/// Calls `each` with the position of every comma in `line`, in order, eight bytes at a time:
/// fields a few bytes apart make `memchr`'s setup per call cost more than the search, and a byte
/// loop costs more still.
#[inline]
fn for_each_comma(line: &[u8], mut each: impl FnMut(usize)) {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let mut scan = |word: u64, base: usize| {
        let x = word ^ (ONES * u64::from(b','));
        // The high bit of each lane that is zero (a comma in `word`), exactly: the addition
        // cannot carry out of a lane.
        let mut found = !(((x & LOW7) + LOW7) | x | LOW7);
        while found != 0 {
            each(base + found.trailing_zeros() as usize / 8);
            found &= found - 1;
        }
    };
    let mut words = line.chunks_exact(8);
    for (n, word) in words.by_ref().enumerate() {
        scan(
            u64::from_le_bytes(word.try_into().expect("eight bytes")),
            n * 8,
        );
    }
    let rest = words.remainder();
    let mut tail = [0u8; 8];
    tail[..rest.len()].copy_from_slice(rest);
    scan(u64::from_le_bytes(tail), line.len() - rest.len());
}

/// A CSV object's header, also as text when it is UTF-8 (rows are then read as text).
pub(super) struct Header {
    bytes: csv::ByteRecord,
    text: Option<csv::StringRecord>,
}

impl Header {
    pub(super) fn new(bytes: csv::ByteRecord) -> Self {
        let text = csv::StringRecord::from_byte_record(bytes.clone()).ok();
        Header { bytes, text }
    }
}

/// One row of a CSV object under `header`, deserialised and checked.
pub(super) fn parse_csv_line<T: DeserializeOwned>(
    parser: &mut CsvLines,
    header: &Header,
    line: &[u8],
    check: Check<'_, T>,
) -> Result<T, BadData> {
    let fields = parser.parse(line).ok_or(BadData::Empty)?.len();
    if fields != header.bytes.len() {
        return Err(BadData::Invalid(vec![crate::records::FieldError::new(
            "row",
            format!(
                "has {} fields, the header has {}",
                fields,
                header.bytes.len()
            ),
        )]));
    }
    // One UTF-8 check of the whole row, then text fields as they are: read from bytes, csv
    // checks each field and each header name again for every row. A row that is not UTF-8, or
    // any row under a header that is not, is read as bytes (csv's own error, with the field).
    let parsed = match &header.text {
        Some(names) => {
            let record = std::mem::take(&mut parser.record);
            match csv::StringRecord::from_byte_record(record) {
                Ok(text) => {
                    let parsed = text.deserialize(Some(names));
                    parser.record = text.into_byte_record();
                    parsed
                }
                Err(not_text) => {
                    parser.record = not_text.into_byte_record();
                    parser.record.deserialize(Some(&header.bytes))
                }
            }
        }
        None => parser.record.deserialize(Some(&header.bytes)),
    };
    let value: T = parsed.map_err(|e| BadData::Csv(format!("the row does not fit: {e}")))?;
    check(&value).map_err(BadData::Invalid)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fields a fresh `csv::Reader` reads from `line` as its first record.
    fn reader_fields(line: &str) -> Option<Vec<Vec<u8>>> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(line.as_bytes());
        let mut record = csv::ByteRecord::new();
        match reader.read_byte_record(&mut record) {
            Ok(true) => Some(record.iter().map(<[u8]>::to_vec).collect()),
            _ => None,
        }
    }

    /// Lines with quotes and line breaks (csv_core's path), and lines of plain fields (the split
    /// on commas), mixed.
    fn csv_line() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::prop_oneof!["[a,\"\\ é\t\r\n]{0,40}", "[a, é\t,]{0,40}"]
    }

    proptest::proptest! {
        /// The reused line parser splits every line exactly as a fresh `csv::Reader` does,
        /// whichever way each line is split and in whatever order they come.
        #[test]
        fn line_parser_agrees_with_the_csv_reader(lines in proptest::collection::vec(csv_line(), 1..6)) {
            let mut parser = CsvLines::new();
            // Twice: the parser's state must not leak from one line into the next.
            for line in lines.iter().chain(&lines) {
                let got = parser.parse(line.as_bytes()).map(|r| r.iter().map(<[u8]>::to_vec).collect::<Vec<_>>());
                proptest::prop_assert_eq!(got, reader_fields(line), "{:?}", line);
            }
        }
    }
}
