//! JSON lines with framework fields (`_id`, `_source`, `_line`) in front of the user's output.

/// A field put in front of a serialised value by [`write_json_line`].
#[derive(Debug, Clone, Copy)]
pub enum LeadField<'a> {
    /// A JSON string.
    Str(&'a str),
    /// A JSON number.
    Int(u64),
    /// A value already encoded as JSON (e.g. a string escaped once for every line of an
    /// object), written as it is.
    Json(&'a str),
}

/// The line [`write_json_line`] appends, on its own.
#[cfg(test)]
fn json_line<V: serde::Serialize>(
    lead: &[(&str, LeadField<'_>)],
    value: &V,
) -> serde_json::Result<Vec<u8>> {
    let mut line = Vec::with_capacity(256);
    write_json_line(&mut line, lead, value)?;
    Ok(line)
}

/// Appends `value` to `out` as one JSON object line (no newline) with `lead` fields first (e.g.
/// `_id`); a value that is not an object is kept under `value`. Splices bytes instead of building a
/// `Value`: this runs once per output record. On error `out` is left as it was.
pub fn write_json_line<V: serde::Serialize>(
    out: &mut Vec<u8>,
    lead: &[(&str, LeadField<'_>)],
    value: &V,
) -> serde_json::Result<()> {
    let start = out.len();
    let result = splice_line(out, start, lead, value);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn splice_line<V: serde::Serialize>(
    line: &mut Vec<u8>,
    start: usize,
    lead: &[(&str, LeadField<'_>)],
    value: &V,
) -> serde_json::Result<()> {
    line.push(b'{');
    for (n, (name, field)) in lead.iter().enumerate() {
        let comma = (n > 0).then_some(b',');
        crate::util::json::write_framed(line, comma, name, Some(b':'));
        match field {
            LeadField::Str(s) => crate::util::json::write_str(line, s),
            LeadField::Int(i) => line.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
            LeadField::Json(json) => line.extend_from_slice(json.as_bytes()),
        }
    }
    // Serialise in place; the value's own `{` becomes the separator after the lead fields.
    let at = line.len();
    crate::util::json::write_value(line, value)?;
    match &line[at..] {
        b"{}" => {
            line.truncate(at);
            line.push(b'}');
        }
        [b'{', ..] if lead.is_empty() => {
            line.remove(start);
        }
        [b'{', ..] => line[at] = b',',
        _ => {
            let body = line.split_off(at);
            if !lead.is_empty() {
                line.push(b',');
            }
            line.extend_from_slice(b"\"value\":");
            line.extend_from_slice(&body);
            line.push(b'}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_lead_with_their_fields() {
        let v = serde_json::json!({"a": 1});
        assert_eq!(
            json_line(
                &[
                    ("_id", LeadField::Str("x\"y")),
                    ("_line", LeadField::Int(7))
                ],
                &v
            )
            .unwrap(),
            br#"{"_id":"x\"y","_line":7,"a":1}"#
        );
        assert_eq!(
            json_line(&[("_id", LeadField::Str("x"))], &serde_json::json!({})).unwrap(),
            br#"{"_id":"x"}"#
        );
        assert_eq!(
            json_line(&[("_id", LeadField::Str("x"))], &5).unwrap(),
            br#"{"_id":"x","value":5}"#
        );
        assert_eq!(json_line(&[], &v).unwrap(), br#"{"a":1}"#);
        // Pre-encoded values as they are; names that need escaping escaped.
        assert_eq!(
            json_line(
                &[
                    ("_source", LeadField::Json(r#""s3://b/k \"q\"""#)),
                    ("a\"b", LeadField::Int(0))
                ],
                &v
            )
            .unwrap(),
            br#"{"_source":"s3://b/k \"q\"","a\"b":0,"a":1}"#
        );
        // Appending keeps what is already in the buffer, in every shape.
        let mut out = b"prev\n".to_vec();
        write_json_line(&mut out, &[], &v).unwrap();
        write_json_line(&mut out, &[("_id", LeadField::Str("y"))], &3).unwrap();
        assert_eq!(out, b"prev\n{\"a\":1}{\"_id\":\"y\",\"value\":3}");
    }

    #[test]
    fn a_value_that_fails_to_serialise_leaves_the_buffer_as_it_was() {
        let mut bad = std::collections::HashMap::new();
        bad.insert((1, 2), 3); // a map with non-string keys is not JSON
        let mut out = b"kept".to_vec();
        assert!(write_json_line(&mut out, &[("_id", LeadField::Str("x"))], &bad).is_err());
        assert_eq!(out, b"kept");
    }
}
