//! `{{name}}`: order files landing in S3 (CSV with a header, or NDJSON), every row checked,
//! filtered and normalised, landed as gzip NDJSON partitioned by the day of the order.
//!
//! Replace [`OrderRow`], [`Order`] and [`Orders`] with your own rows and rules; streaming,
//! quarantine of bad rows and files, duplicate deliveries, manifests, logs and metrics come from
//! runnel.

use chrono::{DateTime, Utc};
use runnel::prelude::*;
use runnel::timestamp::rfc3339;
use serde::{Deserialize, Serialize};

/// The pipeline's name: the service in logs and metrics, and the default output prefix.
pub const NAME: &str = "{{name}}";

/// A row of an order file:
/// `order_id,customer_email,amount,currency,status,ordered_at`.
#[derive(Debug, Clone, Deserialize)]
pub struct OrderRow {
    pub order_id: String,
    pub customer_email: String,
    /// A decimal string (`19.99`), read exactly: never through floating point.
    pub amount: String,
    pub currency: String,
    pub status: String,
    /// RFC 3339, any offset.
    pub ordered_at: String,
}

/// An order as it lands in S3.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Order {
    pub order_id: String,
    pub customer_email: String,
    /// Minor units, so sums are exact.
    pub amount_cents: i64,
    pub currency: String,
    pub status: String,
    #[serde(serialize_with = "rfc3339")]
    pub ordered_at: DateTime<Utc>,
}

/// Statuses of real orders.
pub const STATUSES: [&str; 4] = ["placed", "paid", "shipped", "refunded"];

/// Orders the shop's own QA places: not business data, so dropped rather than quarantined.
pub const TEST_STATUS: &str = "test";

/// `19.99` → 1999. At most two decimals, no sign (refunds are a status, not a negative amount).
pub fn cents(amount: &str) -> Result<i64, String> {
    let amount = amount.trim();
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 2 {
        return Err(format!("{amount:?} is not an amount like 19.99"));
    }
    let whole: i64 = whole
        .parse()
        .map_err(|_| format!("{amount:?} is too large"))?;
    let fraction: i64 = format!("{fraction:0<2}").parse().unwrap_or(0);
    whole
        .checked_mul(100)
        .and_then(|c| c.checked_add(fraction))
        .ok_or_else(|| format!("{amount:?} is too large"))
}

fn ordered_at(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time: {e}"))
}

/// The transform: field rules, filtering and normalisation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Orders;

impl Transform for Orders {
    type Input = OrderRow;
    type Output = Order;

    /// Reports every broken rule at once; the row is quarantined with all of them.
    fn validate(&self, row: &OrderRow) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if row.order_id.trim().is_empty() {
            errors.push(FieldError::new("order_id", "must not be empty"));
        }
        let email = row.customer_email.trim();
        if !email.split_once('@').is_some_and(|(user, domain)| {
            !user.is_empty() && domain.contains('.') && !domain.ends_with('.')
        }) {
            errors.push(FieldError::new("customer_email", "is not an email address"));
        }
        if let Err(e) = cents(&row.amount) {
            errors.push(FieldError::new("amount", e));
        }
        let currency = row.currency.trim();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            errors.push(FieldError::new(
                "currency",
                "must be a 3-letter ISO 4217 code",
            ));
        }
        let status = row.status.trim().to_ascii_lowercase();
        if status != TEST_STATUS && !STATUSES.contains(&status.as_str()) {
            errors.push(FieldError::new(
                "status",
                format!("{status:?} is none of {STATUSES:?}"),
            ));
        }
        if let Err(e) = ordered_at(&row.ordered_at) {
            errors.push(FieldError::new("ordered_at", e));
        }
        check(errors)
    }

    fn apply(
        &self,
        row: OrderRow,
        _ctx: &RecordContext<'_>,
        out: &mut Outputs<Order>,
    ) -> Result<(), TransformError> {
        let status = row.status.trim().to_ascii_lowercase();
        if status == TEST_STATUS {
            // No output: filtered out, neither written nor quarantined.
            return Ok(());
        }
        // Validation has refused bad amounts and times already; this only names the reason.
        out.push(Order {
            order_id: row.order_id.trim().to_string(),
            customer_email: row.customer_email.trim().to_ascii_lowercase(),
            amount_cents: cents(&row.amount).map_err(TransformError::Reject)?,
            currency: row.currency.trim().to_ascii_uppercase(),
            status,
            ordered_at: ordered_at(&row.ordered_at).map_err(TransformError::Reject)?,
        });
        Ok(())
    }

    /// The order's UTC day picks its partition, whatever day the file arrived.
    fn event_time(&self, order: &Order) -> Option<DateTime<Utc>> {
        Some(order.ordered_at)
    }

    /// The order id as `_id`, so a corrected file's rows replace the old ones downstream.
    fn document_id(&self, order: &Order) -> Option<String> {
        Some(order.order_id.clone())
    }
}

/// The function's pipeline: S3 object events in, [`Orders`] on every row, gzip NDJSON by day
/// to S3. `main` runs it; the tests build the same pipeline with an in-memory store.
pub fn pipeline() -> IngestPipeline<Orders> {
    Pipeline::new(NAME).source(S3Objects).transform(Orders)
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel::records::{decompress, DecodeLimits};
    use runnel::sink::{ObjectStore, PutObject};
    use runnel::telemetry::Metrics;

    /// The sample file, and where the sample events say it landed (the key decoded).
    const CSV: &str = include_str!("../events/daily-orders.csv");
    const RAW_BUCKET: &str = "{{name}}-raw";
    const KEY: &str = "orders/dt=2026-11-22/daily orders.csv";

    /// A row from its fields, in the file's column order.
    fn row(fields: [&str; 6]) -> OrderRow {
        let [order_id, customer_email, amount, currency, status, ordered_at] =
            fields.map(String::from);
        OrderRow {
            order_id,
            customer_email,
            amount,
            currency,
            status,
            ordered_at,
        }
    }

    fn orders(row: OrderRow) -> Vec<Order> {
        Orders.validate(&row).unwrap();
        let ctx = RecordContext {
            stream: "s3://raw/orders.csv",
            position: "2",
            index: 0,
            partition_key: None,
            arrival: None,
        };
        let mut out = Outputs::default();
        Orders.apply(row, &ctx, &mut out).unwrap();
        out.drain().map(|(_, order)| order).collect()
    }

    #[test]
    fn amounts_are_exact_cents() {
        assert_eq!(cents("19.99"), Ok(1999));
        assert_eq!(cents("5"), Ok(500));
        assert_eq!(cents("0.5"), Ok(50));
        for bad in ["12.345", "-1", "1,50", "", ".5", "99999999999999999999"] {
            assert!(cents(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rows_are_normalised() {
        let orders = orders(row([
            "o-1",
            " Ada@Example.com ",
            "19.99",
            "eur",
            "Paid",
            "2026-11-22T08:15:00+01:00",
        ]));
        let expected = Order {
            order_id: "o-1".into(),
            customer_email: "ada@example.com".into(),
            amount_cents: 1999,
            currency: "EUR".into(),
            status: "paid".into(),
            ordered_at: "2026-11-22T07:15:00Z".parse().unwrap(),
        };
        assert_eq!(orders, [expected]);
    }

    #[test]
    fn test_orders_are_filtered_out() {
        let qa = [
            "o-2",
            "qa@example.com",
            "1.00",
            "EUR",
            "TEST",
            "2026-11-22T10:00:00Z",
        ];
        assert!(orders(row(qa)).is_empty());
    }

    #[test]
    fn every_broken_rule_is_reported() {
        let bad = row(["", "not-an-email", "12.345", "EURO", "lost", "yesterday"]);
        let fields: Vec<String> = Orders
            .validate(&bad)
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        let expected = [
            "order_id",
            "customer_email",
            "amount",
            "currency",
            "status",
            "ordered_at",
        ];
        assert_eq!(fields, expected);
    }

    /// Every document in the objects under `prefix`, in key order.
    fn documents(store: &MemoryStore, prefix: &str) -> Vec<serde_json::Value> {
        let mut docs = Vec::new();
        for ((_, key), body) in store.objects() {
            if key.starts_with(prefix) {
                let text = decompress(&body, DecodeLimits::default()).unwrap();
                for line in String::from_utf8_lossy(&text).lines() {
                    docs.push(serde_json::from_str(line).unwrap());
                }
            }
        }
        docs
    }

    /// The whole pipeline on the sample file and events, with objects kept in memory.
    #[tokio::test]
    async fn the_sample_file_lands_by_day_with_its_bad_row_quarantined() {
        let store = MemoryStore::new();
        let upload = PutObject {
            bucket: RAW_BUCKET.into(),
            key: KEY.into(),
            body: CSV.into(),
            content_type: "text/csv",
        };
        store.put(upload).await.unwrap();
        let runner = pipeline()
            .store(store.clone())
            .config(IngestConfig::new(NAME, "output"))
            .build()
            .unwrap();
        let mut metrics = Metrics::new("test");
        let event = serde_json::from_str(include_str!("../events/s3-notification.json")).unwrap();
        let summary = runner.handle(&mut metrics, &event).await.unwrap();
        let object = &summary["objects"][0];
        assert_eq!(object["status"], "complete", "{summary}");
        assert_eq!(object["rows_out"], 2, "{summary}");
        assert_eq!(object["rows_quarantined"], 1, "{summary}");

        let landed = documents(&store, &format!("{NAME}/dt=2026-11-22/"));
        let ids: Vec<&str> = landed.iter().filter_map(|o| o["_id"].as_str()).collect();
        assert_eq!(ids, ["o-1001", "o-1002"]);
        assert_eq!(landed[0]["customer_email"], "ada@example.com");
        let quarantined = documents(&store, &format!("quarantine/{NAME}/"));
        assert_eq!(quarantined.len(), 1);

        // The same object announced again, through EventBridge this time: nothing is redone.
        let again = serde_json::from_str(include_str!("../events/eventbridge-object-created.json"))
            .unwrap();
        let summary = runner.handle(&mut metrics, &again).await.unwrap();
        assert_eq!(summary["objects"][0]["status"], "duplicate", "{summary}");
    }
}
