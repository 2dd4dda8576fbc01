//! Streaming rows out of an object: gzip or not, CSV with a header or NDJSON, one bounded line
//! at a time, so memory does not grow with the object.

use std::io::{self, BufRead, BufReader, Read};

use serde::de::DeserializeOwned;

use super::csv_line::{parse_csv_line, CsvLines, Header};
use crate::records::{BadData, Check, GZIP_MAGIC};

/// Row encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowFormat {
    /// Comma-separated with a header line. A record must not span lines.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

/// What an object's name says it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectFormat {
    /// How rows are encoded.
    pub rows: RowFormat,
    /// Whether the object is gzip-compressed (`.gz` or `.gzip`).
    pub gzip: bool,
}

/// Reads the format from the key's extension: `.csv`, `.ndjson`, `.jsonl`, `.json`, each
/// optionally followed by `.gz`.
pub fn format_from_key(key: &str) -> Option<ObjectFormat> {
    let lower = key.to_ascii_lowercase();
    let (stem, gzip) = match lower
        .strip_suffix(".gz")
        .or_else(|| lower.strip_suffix(".gzip"))
    {
        Some(s) => (s, true),
        None => (lower.as_str(), false),
    };
    let rows = if stem.ends_with(".csv") {
        RowFormat::Csv
    } else if stem.ends_with(".ndjson") || stem.ends_with(".jsonl") || stem.ends_with(".json") {
        RowFormat::Ndjson
    } else {
        return None;
    };
    Some(ObjectFormat { rows, gzip })
}

/// Why a whole object is rejected (it is quarantined as a whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectProblem {
    /// The key says gzip (`.gz`, `.gzip`) but the content lacks the gzip magic bytes.
    #[error("the name says gzip but the content is not gzip")]
    NotGzip,
    /// The content starts with the gzip magic bytes but the key does not say gzip.
    #[error("the content is gzip but the name does not say so")]
    UnexpectedGzip,
    /// Decompression failed part-way; rows before it were already read.
    #[error("the compressed stream is corrupt after line {line}: {reason}")]
    Corrupt {
        /// The last line read before the failure (0: none).
        line: u64,
        /// The decoder's message.
        reason: String,
    },
    /// A CSV object whose first non-blank line is not a usable header.
    #[error("the CSV header is missing or unreadable: {0}")]
    BadHeader(String),
    /// The object is over the ingest's size limit; nothing of it is read.
    #[error("object is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The object's size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The key's extension names no supported format.
    #[error("unsupported file type (expected .csv, .ndjson, .jsonl or .json, optionally .gz)")]
    UnsupportedType,
}

/// An I/O error of the source itself (the network read), as opposed to bad content.
#[derive(Debug)]
pub struct SourceReadFailed(pub String);

impl std::fmt::Display for SourceReadFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reading the object failed: {}", self.0)
    }
}

impl std::error::Error for SourceReadFailed {}

/// Marks every error of the wrapped reader as a source failure.
pub struct SourceReader<R>(pub R);

impl<R: Read> Read for SourceReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), SourceReadFailed(e.to_string())))
    }
}

/// Whether an error came from the source (transient) rather than from its content.
pub fn is_source_failure(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<SourceReadFailed>())
}

/// One row: its line number (1-based, counting the header), raw bytes, and parse result.
pub struct Row<'a, T> {
    /// 1-based line number in the decompressed object, the header and blank lines counted.
    pub line: u64,
    /// The line's bytes without its line break; cut to the row limit when too long.
    pub raw: &'a [u8],
    /// The checked value, or why the row is bad data.
    pub parsed: Result<T, BadData>,
    /// The CSV header line the row was read under (empty for NDJSON).
    pub header: &'a [u8],
}

/// What reading an object came to.
#[derive(Debug)]
pub enum ReadError {
    /// The object is bad as a whole.
    Object(ObjectProblem),
    /// Reading the source failed; try again later.
    Source(io::Error),
    /// The row callback stopped the read (e.g. its uploads failed).
    Stopped(String),
}

enum Line {
    Complete,
    TooLong(usize),
    Eof,
}

/// Reads one line into `buf` (without the newline), keeping at most `max` bytes; a longer line is
/// consumed to its end and reported with its length.
fn read_line_limited<R: BufRead>(r: &mut R, buf: &mut Vec<u8>, max: usize) -> io::Result<Line> {
    buf.clear();
    let mut total = 0usize;
    let mut seen_any = false;
    loop {
        let available = r.fill_buf()?;
        if available.is_empty() {
            return Ok(if !seen_any {
                Line::Eof
            } else if total > max {
                Line::TooLong(total)
            } else {
                Line::Complete
            });
        }
        seen_any = true;
        let (chunk, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (&available[..i], Some(i + 1)),
            None => (available, None),
        };
        total += chunk.len();
        if buf.len() < max + 1 {
            let room = max + 1 - buf.len();
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
        let consumed = done.unwrap_or(available.len());
        r.consume(consumed);
        if done.is_some() {
            if buf.last() == Some(&b'\r') {
                buf.pop();
                total -= 1;
            }
            return Ok(if total > max {
                Line::TooLong(total)
            } else {
                Line::Complete
            });
        }
    }
}

/// Streams the rows of `input`, each checked by `check`, to `on_row`. Blank lines are skipped.
/// Returns the number of lines.
pub fn read_rows<T, R, F>(
    input: R,
    format: ObjectFormat,
    max_row_bytes: usize,
    check: Check<'_, T>,
    mut on_row: F,
) -> Result<u64, ReadError>
where
    T: DeserializeOwned,
    R: Read,
    F: FnMut(Row<'_, T>) -> Result<(), String>,
{
    let mut raw = BufReader::with_capacity(256 * 1024, input);
    let head = raw.fill_buf().map_err(ReadError::Source)?;
    let is_gzip = head.starts_with(&GZIP_MAGIC);
    if head.is_empty() {
        return Ok(0);
    }
    match (format.gzip, is_gzip) {
        (true, false) => return Err(ReadError::Object(ObjectProblem::NotGzip)),
        (false, true) => return Err(ReadError::Object(ObjectProblem::UnexpectedGzip)),
        _ => {}
    }
    let decoded: Box<dyn Read> = if is_gzip {
        Box::new(flate2::read::MultiGzDecoder::new(raw))
    } else {
        Box::new(raw)
    };
    let mut lines = BufReader::with_capacity(256 * 1024, decoded);
    let mut buf = Vec::with_capacity(4096);
    let mut line_no = 0u64;
    let mut headers: Option<Header> = None;
    let mut header_line = Vec::new();
    let mut csv_lines = CsvLines::new();
    let content_error = |e: io::Error, line: u64| {
        if is_source_failure(&e) {
            ReadError::Source(e)
        } else {
            ReadError::Object(ObjectProblem::Corrupt {
                line,
                reason: e.to_string(),
            })
        }
    };
    loop {
        let read = read_line_limited(&mut lines, &mut buf, max_row_bytes)
            .map_err(|e| content_error(e, line_no))?;
        let (line_ref, parsed_override) = match read {
            Line::Eof => break,
            Line::Complete => (&buf[..], None),
            Line::TooLong(size) => {
                buf.truncate(max_row_bytes.min(buf.len()));
                (
                    &buf[..],
                    Some(BadData::TooLarge {
                        size,
                        limit: max_row_bytes,
                    }),
                )
            }
        };
        line_no += 1;
        if line_ref.iter().all(u8::is_ascii_whitespace) && parsed_override.is_none() {
            continue;
        }
        if format.rows == RowFormat::Csv && headers.is_none() {
            if let Some(bad) = parsed_override {
                return Err(ReadError::Object(ObjectProblem::BadHeader(bad.to_string())));
            }
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line_ref);
            let mut record = csv::ByteRecord::new();
            match reader.read_byte_record(&mut record) {
                Ok(true) if record.iter().all(|f| !f.is_empty()) => {
                    let mut trimmed = csv::ByteRecord::new();
                    for f in record.iter() {
                        trimmed.push_field(f.trim_ascii());
                    }
                    headers = Some(Header::new(trimmed));
                    header_line.extend_from_slice(line_ref);
                    continue;
                }
                Ok(_) => {
                    return Err(ReadError::Object(ObjectProblem::BadHeader(
                        "empty header field".into(),
                    )))
                }
                Err(e) => return Err(ReadError::Object(ObjectProblem::BadHeader(e.to_string()))),
            }
        }
        let parsed = match parsed_override {
            Some(bad) => Err(bad),
            None => match format.rows {
                RowFormat::Csv => parse_csv_line(
                    &mut csv_lines,
                    headers.as_ref().expect("set above"),
                    line_ref,
                    check,
                ),
                RowFormat::Ndjson => crate::records::parse_document(line_ref, check),
            },
        };
        on_row(Row {
            line: line_no,
            raw: line_ref,
            parsed,
            header: &header_line,
        })
        .map_err(ReadError::Stopped)?;
    }
    Ok(line_no)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{FieldError, Validate};
    use std::io::Write;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Tx {
        id: String,
        amount: f64,
    }
    impl Validate for Tx {
        fn validate(&self) -> Result<(), Vec<FieldError>> {
            if self.amount < 0.0 {
                Err(vec![FieldError::new("amount", "negative")])
            } else {
                Ok(())
            }
        }
    }

    type Collected = Vec<(u64, Result<Tx, String>, String)>;

    fn collect(data: &[u8], key: &str, max: usize) -> Result<Collected, ReadError> {
        let mut out = Vec::new();
        read_rows::<Tx, _, _>(
            data,
            format_from_key(key).unwrap(),
            max,
            &Tx::validate,
            |row| {
                out.push((
                    row.line,
                    row.parsed.map_err(|e| e.to_string()),
                    String::from_utf8_lossy(row.raw).to_string(),
                ));
                Ok(())
            },
        )?;
        Ok(out)
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn formats_come_from_the_name() {
        assert_eq!(
            format_from_key("a/b.CSV.gz"),
            Some(ObjectFormat {
                rows: RowFormat::Csv,
                gzip: true
            })
        );
        assert_eq!(
            format_from_key("a/b.jsonl"),
            Some(ObjectFormat {
                rows: RowFormat::Ndjson,
                gzip: false
            })
        );
        assert_eq!(format_from_key("a/_SUCCESS"), None);
    }

    #[test]
    fn csv_rows_with_line_numbers_and_row_errors() {
        let data = b"id, amount\r\nt1,1.5\n\nt2,-3\nt3\nt4,abc\n";
        let rows = collect(data, "x.csv", 1000).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows[0],
            (
                2,
                Ok(Tx {
                    id: "t1".into(),
                    amount: 1.5
                }),
                "t1,1.5".into()
            )
        );
        assert_eq!(rows[1].0, 4);
        assert_eq!(
            rows[1].1.as_ref().unwrap_err(),
            "failed validation: amount: negative"
        );
        assert_eq!(
            rows[2].1.as_ref().unwrap_err(),
            "failed validation: row: has 1 fields, the header has 2"
        );
        assert!(
            rows[3]
                .1
                .as_ref()
                .unwrap_err()
                .starts_with("not valid CSV: the row does not fit"),
            "{:?}",
            rows[3]
        );
    }

    #[test]
    fn rows_that_are_not_utf8_are_bad_rows_with_csvs_reason() {
        let rows = collect(b"id,amount\nt1,1.5\nt\xff,2\nt3,x\n", "x.csv", 1000).unwrap();
        assert_eq!(rows[0].1.as_ref().unwrap().id, "t1");
        let bad = rows[1].1.as_ref().unwrap_err();
        assert!(bad.contains("field 0: invalid utf-8"), "{bad}");
        let bad = rows[2].1.as_ref().unwrap_err();
        assert!(bad.contains("field 1") && bad.contains("float"), "{bad}");
        // A header that is not UTF-8 (a column no field reads): rows are read as bytes.
        let rows = collect(b"id,amount,n\xffte\nt1,1.5,x\n", "x.csv", 1000).unwrap();
        assert_eq!(rows[0].1.as_ref().unwrap().amount, 1.5);
    }

    #[test]
    fn gzip_ndjson_rows() {
        let data = gz(b"{\"id\":\"a\",\"amount\":1}\n{\"id\":\"b\",\"amount\":2}\n");
        let rows = collect(&data, "x.ndjson.gz", 1000).unwrap();
        assert_eq!(
            rows.iter()
                .map(|r| r.1.as_ref().unwrap().id.clone())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn long_rows_are_bad_rows_and_reading_goes_on() {
        let data = format!(
            "{{\"id\":\"{}\",\"amount\":1}}\n{{\"id\":\"b\",\"amount\":2}}\n",
            "x".repeat(5000)
        );
        let rows = collect(data.as_bytes(), "x.ndjson", 100).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].1.as_ref().unwrap_err(),
            "too large: 5020 bytes, over the limit of 100"
        );
        assert_eq!(rows[0].2.len(), 100);
        assert!(rows[1].1.is_ok());
    }

    #[test]
    fn names_that_lie_reject_the_object() {
        assert!(matches!(
            collect(b"id,amount\n", "x.csv.gz", 100),
            Err(ReadError::Object(ObjectProblem::NotGzip))
        ));
        assert!(matches!(
            collect(&gz(b"id,amount\n"), "x.csv", 100),
            Err(ReadError::Object(ObjectProblem::UnexpectedGzip))
        ));
    }

    #[test]
    fn corrupt_gzip_rejects_the_object() {
        let mut data = gz(&b"id,amount\nt1,1\n".repeat(1000));
        let n = data.len();
        data.truncate(n / 2);
        assert!(matches!(
            collect(&data, "x.csv.gz", 100),
            Err(ReadError::Object(ObjectProblem::Corrupt { .. }))
        ));
    }

    #[test]
    fn source_failures_are_transient() {
        struct Failing;
        impl Read for Failing {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"))
            }
        }
        let r = read_rows::<Tx, _, _>(
            SourceReader(Failing),
            format_from_key("x.csv").unwrap(),
            100,
            &Tx::validate,
            |_| Ok(()),
        );
        match r {
            Err(ReadError::Source(e)) => assert!(is_source_failure(&e)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_object_has_no_rows() {
        assert_eq!(collect(b"", "x.csv", 100).unwrap().len(), 0);
    }
}
