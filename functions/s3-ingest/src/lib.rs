//! The demo batch domain: card transactions in daily files.
//!
//! CSV header (NDJSON uses the same field names):
//! `transaction_id,account_id,amount,currency,timestamp,merchant,category,country`
//! - `amount`: a decimal string (`12.34`, `-5.00` for refunds) with no more decimals than the
//!   currency has; the output carries it exactly, and in minor units as an integer;
//! - `currency`: ISO 4217 code (three capital letters);
//! - `timestamp`: RFC 3339; its UTC day picks the output partition;
//! - `category`, `country` (ISO 3166 alpha-2) optional.

use chrono::{DateTime, Utc};
use runnel::records::{FieldError, Validate};
use runnel::source::S3Objects;
use runnel::timestamp::EventTime;
use runnel::transform::{Outputs, RecordContext, Transform, TransformError};
use serde::{Deserialize, Serialize};

/// A transaction row as it arrives.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct TransactionRow {
    pub transaction_id: String,
    pub account_id: String,
    pub amount: String,
    pub currency: String,
    /// Parsed once, while the row is read: validation reports it, the transform reuses it.
    /// Text only: a CSV field of digits is not epoch milliseconds.
    #[serde(deserialize_with = "runnel::timestamp::text_only")]
    pub timestamp: EventTime,
    pub merchant: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
}

/// Digits after the decimal point of a currency (ISO 4217 exceptions; 2 otherwise).
pub fn minor_digits(currency: &str) -> u32 {
    // Matched as a three-byte array, where a `&str` match calls `memcmp` for every code (once
    // or twice per row).
    let Ok(code): Result<&[u8; 3], _> = currency.as_bytes().try_into() else {
        return 2;
    };
    match code {
        b"JPY" | b"KRW" | b"CLP" | b"ISK" | b"VND" | b"XOF" | b"XAF" | b"UGX" | b"PYG" | b"RWF" => {
            0
        }
        b"BHD" | b"KWD" | b"OMR" | b"JOD" | b"TND" | b"LYD" | b"IQD" => 3,
        _ => 2,
    }
}

/// Parses a decimal amount into minor units exactly (no floating point).
pub fn to_minor_units(amount: &str, digits: u32) -> Result<i64, String> {
    let a = trim(amount);
    let (negative, digits_part) = match a.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, a.strip_prefix('+').unwrap_or(a)),
    };
    let (whole, frac) = digits_part.split_once('.').unwrap_or((digits_part, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(format!("{amount:?} is not a decimal number"));
    }
    if frac.len() as u32 > digits {
        return Err(format!(
            "{amount:?} has more than {digits} decimal place(s)"
        ));
    }
    let scale = 10i64.pow(digits);
    let whole: i64 = whole
        .parse()
        .map_err(|_| format!("{amount:?} is too large"))?;
    let frac_value: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse::<i64>().unwrap_or(0) * 10i64.pow(digits - frac.len() as u32)
    };
    let value = whole
        .checked_mul(scale)
        .and_then(|w| w.checked_add(frac_value))
        .ok_or_else(|| format!("{amount:?} is too large"))?;
    Ok(if negative { -value } else { value })
}

impl Validate for TransactionRow {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (field, value, max) in [
            ("transaction_id", &self.transaction_id, 64),
            ("account_id", &self.account_id, 64),
            ("merchant", &self.merchant, 200),
        ] {
            let v = trim(value);
            if v.is_empty() {
                errors.push(FieldError::new(field, "must not be empty"));
            // Counting characters is needed only when the bytes could be too many.
            } else if v.len() > max && v.chars().count() > max {
                errors.push(FieldError::new(
                    field,
                    format!("must be at most {max} characters"),
                ));
            }
        }
        let currency_ok =
            self.currency.len() == 3 && self.currency.bytes().all(|b| b.is_ascii_uppercase());
        if !currency_ok {
            errors.push(FieldError::new(
                "currency",
                format!("{:?} is not an ISO 4217 code", self.currency),
            ));
        }
        if let Err(e) = to_minor_units(
            &self.amount,
            if currency_ok {
                minor_digits(&self.currency)
            } else {
                2
            },
        ) {
            errors.push(FieldError::new("amount", e));
        }
        if let Err(why) = self.timestamp.get() {
            errors.push(FieldError::new("timestamp", why));
        }
        if let Some(c) = self.country.as_deref().filter(|c| !c.is_empty()) {
            if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                errors.push(FieldError::new(
                    "country",
                    format!("{c:?} is not an ISO 3166 alpha-2 code"),
                ));
            }
        }
        runnel::records::check(errors)
    }
}

/// A curated transaction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Transaction {
    pub transaction_id: String,
    pub account_id: String,
    pub amount: String,
    pub amount_minor: i64,
    pub currency: String,
    #[serde(serialize_with = "runnel::timestamp::rfc3339")]
    pub event_time: DateTime<Utc>,
    pub merchant: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// The demo ingest transform.
#[derive(Debug, Clone, Copy, Default)]
pub struct TransactionTransform;

impl TransactionTransform {
    /// The curated transaction of a valid row; `Err` says why the row is bad.
    pub fn curate(&self, row: TransactionRow) -> Result<Transaction, String> {
        let amount_minor = to_minor_units(&row.amount, minor_digits(&row.currency))?;
        let event_time = row.timestamp.get().map_err(str::to_string)?;
        Ok(Transaction {
            transaction_id: trimmed(row.transaction_id, ""),
            account_id: trimmed(row.account_id, ""),
            amount: trimmed(row.amount, "+"),
            amount_minor,
            currency: row.currency,
            event_time,
            merchant: trimmed(row.merchant, ""),
            category: row.category.filter(|c| !trim(c).is_empty()),
            country: row.country.filter(|c| !c.is_empty()),
        })
    }
}

/// `s` without surrounding Unicode whitespace, as `str::trim`, answered at once for the usual
/// field that starts and ends with a visible ASCII character (no whitespace can be cut), where
/// `str::trim` decodes a character from each end.
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// `s` without surrounding whitespace and a leading `sign`, reusing its allocation when there is
/// nothing to cut (the usual case: one allocation fewer per field and row).
fn trimmed(s: String, sign: &str) -> String {
    let cut = trim(&s);
    let cut = if sign.is_empty() {
        cut
    } else {
        cut.strip_prefix(sign).unwrap_or(cut)
    };
    if cut.len() == s.len() {
        s
    } else {
        cut.to_string()
    }
}

impl Transform for TransactionTransform {
    type Input = TransactionRow;
    type Output = Transaction;

    fn validate(&self, row: &TransactionRow) -> Result<(), Vec<FieldError>> {
        row.validate()
    }

    fn apply(
        &self,
        row: TransactionRow,
        _ctx: &RecordContext<'_>,
        out: &mut Outputs<Transaction>,
    ) -> Result<(), TransformError> {
        out.push(self.curate(row).map_err(TransformError::Reject)?);
        Ok(())
    }

    /// The transaction's UTC day picks its partition.
    fn event_time(&self, output: &Transaction) -> Option<DateTime<Utc>> {
        Some(output.event_time)
    }

    /// The transaction id, so downstream de-duplication works across files.
    fn document_id(&self, output: &Transaction) -> Option<String> {
        Some(output.transaction_id.clone())
    }
}

/// The function's pipeline: S3 object events in, [`TransactionTransform`] on each row, daily
/// gzip NDJSON out, and the Glue trigger when `GLUE_JOB_NAME` is set.
pub fn pipeline() -> runnel::ingest::IngestPipeline<TransactionTransform> {
    runnel::pipeline::Pipeline::new("s3-ingest")
        .source(S3Objects)
        .transform(TransactionTransform)
        .hook_from_env(runnel::apps::glue_trigger::GlueTriggerConfig::read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_convert_exactly() {
        assert_eq!(to_minor_units("12.34", 2), Ok(1234));
        assert_eq!(to_minor_units("-5", 2), Ok(-500));
        assert_eq!(to_minor_units("0.1", 2), Ok(10));
        assert_eq!(to_minor_units("1500", 0), Ok(1500));
        assert_eq!(to_minor_units("1.234", 3), Ok(1234));
        assert!(to_minor_units("1.234", 2)
            .unwrap_err()
            .contains("more than 2"));
        assert!(to_minor_units("12,50", 2).is_err());
        assert!(to_minor_units("", 2).is_err());
        assert!(to_minor_units("99999999999999999999", 2).is_err());
    }

    fn row() -> TransactionRow {
        TransactionRow {
            transaction_id: "tx-1".into(),
            account_id: "acc-9".into(),
            amount: "19.99".into(),
            currency: "EUR".into(),
            timestamp: EventTime::from_text("2026-11-22T10:15:00+01:00"),
            merchant: "Café Zürich".into(),
            category: Some("food".into()),
            country: Some("CH".into()),
        }
    }

    #[test]
    fn valid_row_becomes_a_transaction_in_utc() {
        let r = row();
        r.validate().unwrap();
        let t = TransactionTransform.curate(r).unwrap();
        assert_eq!(t.amount_minor, 1999);
        assert_eq!(t.event_time.to_rfc3339(), "2026-11-22T09:15:00+00:00");
    }

    #[test]
    fn every_problem_is_reported() {
        let r = TransactionRow {
            transaction_id: "".into(),
            currency: "eur".into(),
            amount: "1.2.3".into(),
            timestamp: EventTime::from_text("today"),
            country: Some("CHE".into()),
            ..row()
        };
        let fields: Vec<String> = r
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "transaction_id",
                "currency",
                "amount",
                "timestamp",
                "country"
            ]
        );
    }

    #[test]
    fn a_timestamp_is_rfc_3339_text_never_a_number() {
        let csv = "transaction_id,account_id,amount,currency,timestamp,merchant\n\
                   tx-1,acc-1,1.00,EUR,20261122,Shop\n\
                   tx-2,acc-1,1.00,EUR,2026-11-22T10:00:00Z,Shop\n";
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let rows: Vec<TransactionRow> = reader.deserialize().map(Result::unwrap).collect();
        assert_eq!(rows[0].validate().unwrap_err()[0].field, "timestamp");
        rows[1].validate().unwrap();
        // NDJSON: a number is not a timestamp either.
        let json = r#"{"transaction_id":"t","account_id":"a","amount":"1","currency":"EUR","timestamp":1763805600000,"merchant":"m"}"#;
        assert!(serde_json::from_str::<TransactionRow>(json).is_err());
    }

    #[test]
    fn trimming_cuts_what_str_trim_cuts() {
        for s in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\u{a0}a\u{a0}",
            "a\u{3000}",
            "\ta b\r",
            "é",
            "x é ",
            "+1",
        ] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn trimming_agrees_with_str_trim(s in "[a \t\u{a0}\u{3000}é+\r]{0,8}") {
            proptest::prop_assert_eq!(trim(&s), s.trim());
        }
    }

    #[test]
    fn minor_digits_follow_iso_4217() {
        for (code, digits) in [
            ("JPY", 0),
            ("RWF", 0),
            ("KWD", 3),
            ("IQD", 3),
            ("EUR", 2),
            ("JP", 2),
            ("JPYY", 2),
            ("", 2),
        ] {
            assert_eq!(minor_digits(code), digits, "{code}");
        }
    }

    #[test]
    fn yen_has_no_minor_digits() {
        let r = TransactionRow {
            currency: "JPY".into(),
            amount: "1500.5".into(),
            ..row()
        };
        assert_eq!(r.validate().unwrap_err()[0].field, "amount");
    }
}
