//! The alert model and its SNS rendering.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

/// How urgent an alert is. Subscription filters match on its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    /// Informational: a success or a state not counted as a failure.
    Info,
    /// Needs a look, not urgent: a run stopped, aborted or stuck; a report not recognised.
    Warning,
    /// A failure: a run failed or timed out, a function gave up.
    Error,
    /// Data was lost or skipped: a stream batch a mapping gave up on.
    Critical,
}

impl Severity {
    /// The upper-case name alerts and attributes carry (`ERROR`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Error => "ERROR",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A link for the person on call: a console page or a log view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    /// What the link opens (`Job run`, `Error logs`).
    pub label: String,
    /// The page's URL.
    pub url: String,
}

/// One failure, in a shape every source maps to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    /// How urgent; subscription filters match on it.
    pub severity: Severity,
    /// The pipeline the failure belongs to.
    pub pipeline: String,
    /// What kind of thing failed: `glue`, `lambda`, `kinesis`, `dynamodb`, `stepfunctions`, `unknown`.
    pub source: String,
    /// The failed resource: job name, function ARN, state machine ARN.
    pub resource: String,
    /// One line a person reads first.
    pub summary: String,
    /// Facts by name (ids, states, sizes, times). Never record payloads or secrets.
    pub details: BTreeMap<String, Value>,
    /// Console and log links for the person on call.
    pub links: Vec<Link>,
    /// Identifies the failure for duplicate suppression (e.g. the job run id, the batch range).
    pub fingerprint: String,
    /// When the failure happened, when the event says.
    pub occurred_at: Option<DateTime<Utc>>,
}

/// SNS's limit on subjects.
pub const MAX_SUBJECT_CHARS: usize = 100;
/// SNS's limit on a message body (256 KB), with room kept for attributes.
pub const MAX_MESSAGE_BYTES: usize = 250 * 1024;

/// An SNS message ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsMessage {
    /// The subject (at most 100 characters).
    pub subject: String,
    /// The body: readable text, then the alert as JSON.
    pub body: String,
    /// String attributes for subscription filter policies.
    pub attributes: BTreeMap<String, String>,
}

/// Makes a subject SNS accepts: printable ASCII, no line breaks, at most 100 characters.
pub fn sns_subject(text: &str) -> String {
    let mut out: String = text
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            c if c.is_ascii_graphic() || c == ' ' => c,
            _ => '?',
        })
        .collect();
    if out.len() > MAX_SUBJECT_CHARS {
        out.truncate(MAX_SUBJECT_CHARS - 3);
        out.push_str("...");
    }
    let trimmed = out.trim();
    if trimmed.is_empty() {
        "Pipeline alert".to_string()
    } else {
        trimmed.to_string()
    }
}

impl Alert {
    /// The SNS subject: `[SEVERITY] pipeline: summary`, made safe for SNS.
    pub fn subject(&self) -> String {
        sns_subject(&format!(
            "[{}] {}: {}",
            self.severity, self.pipeline, self.summary
        ))
    }

    /// A readable body followed by the alert as JSON, for both people and programs.
    pub fn body(&self) -> String {
        let mut text = String::new();
        text.push_str(&format!("{}\n\n", self.summary));
        text.push_str(&format!("Severity:  {}\n", self.severity));
        text.push_str(&format!("Pipeline:  {}\n", self.pipeline));
        text.push_str(&format!("Source:    {}\n", self.source));
        text.push_str(&format!("Resource:  {}\n", self.resource));
        if let Some(t) = self.occurred_at {
            text.push_str(&format!("When:      {}\n", t.to_rfc3339()));
        }
        if !self.details.is_empty() {
            text.push_str("\nDetails:\n");
            for (k, v) in &self.details {
                let shown = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                text.push_str(&format!("  {k}: {shown}\n"));
            }
        }
        if !self.links.is_empty() {
            text.push_str("\nLinks:\n");
            for l in &self.links {
                text.push_str(&format!("  {}: {}\n", l.label, l.url));
            }
        }
        text.push_str("\n--- alert (JSON) ---\n");
        text.push_str(&serde_json::to_string_pretty(self).unwrap_or_default());
        text.push('\n');
        if text.len() > MAX_MESSAGE_BYTES {
            let mut cut = MAX_MESSAGE_BYTES - 40;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
            text.push_str("\n[truncated to fit SNS limits]\n");
        }
        text
    }

    /// The message to publish: subject, body and the `severity`, `source`, `pipeline` attributes.
    pub fn sns_message(&self) -> SnsMessage {
        let mut attributes = BTreeMap::new();
        attributes.insert("severity".to_string(), self.severity.as_str().to_string());
        attributes.insert("source".to_string(), self.source.clone());
        attributes.insert("pipeline".to_string(), self.pipeline.clone());
        SnsMessage {
            subject: self.subject(),
            body: self.body(),
            attributes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        let mut details = BTreeMap::new();
        details.insert("job_run_id".to_string(), Value::String("jr_1".into()));
        details.insert("attempt".to_string(), Value::from(2));
        Alert {
            severity: Severity::Error,
            pipeline: "runnel-dev".into(),
            source: "glue".into(),
            resource: "daily-etl".into(),
            summary: "Glue job daily-etl FAILED".into(),
            details,
            links: vec![Link {
                label: "Job run".into(),
                url: "https://console/x".into(),
            }],
            fingerprint: "glue:daily-etl:jr_1:FAILED".into(),
            occurred_at: None,
        }
    }

    #[test]
    fn subject_is_ascii_single_line_and_short() {
        let s = sns_subject(&format!("Température\nfailed {}", "x".repeat(200)));
        assert!(s.len() <= 100);
        assert!(s.chars().all(|c| c.is_ascii_graphic() || c == ' '));
        assert!(s.starts_with("Temp?rature failed"));
        assert!(s.ends_with("..."));
        assert_eq!(sns_subject(" \n "), "Pipeline alert");
    }

    #[test]
    fn message_has_text_then_json_and_attributes() {
        let m = alert().sns_message();
        assert_eq!(m.subject, "[ERROR] runnel-dev: Glue job daily-etl FAILED");
        assert!(m
            .body
            .starts_with("Glue job daily-etl FAILED\n\nSeverity:  ERROR\n"));
        assert!(m.body.contains("  job_run_id: jr_1\n"));
        let json_part = m.body.split("--- alert (JSON) ---\n").nth(1).unwrap();
        let doc: Value = serde_json::from_str(json_part).unwrap();
        assert_eq!(doc["severity"], "ERROR");
        assert_eq!(doc["fingerprint"], "glue:daily-etl:jr_1:FAILED");
        assert_eq!(m.attributes["severity"], "ERROR");
        assert_eq!(m.attributes["source"], "glue");
        assert_eq!(m.attributes["pipeline"], "runnel-dev");
    }

    #[test]
    fn huge_details_are_truncated_to_fit_sns() {
        let mut a = alert();
        a.details
            .insert("message".into(), Value::String("é".repeat(200_000)));
        assert!(a.body().len() <= MAX_MESSAGE_BYTES);
    }
}
