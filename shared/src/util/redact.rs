//! Keeping secrets out of alerts and logs: values of secret-looking names are never shown.

use std::collections::BTreeMap;

/// Whether an argument or field name suggests a secret; such values are never shown.
pub fn looks_secret(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "secret",
        "password",
        "passwd",
        "token",
        "credential",
        "apikey",
        "api_key",
        "private",
    ]
    .iter()
    .any(|s| n.contains(s))
}

/// Replaces the values of secret-looking arguments with `[redacted]`.
pub fn redact_arguments(
    args: impl IntoIterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    args.into_iter()
        .map(|(k, v)| {
            let shown = if looks_secret(&k) {
                "[redacted]".to_string()
            } else {
                v
            };
            (k, shown)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised() {
        assert!(looks_secret("--db_password"));
        assert!(looks_secret("--API_TOKEN"));
        assert!(!looks_secret("--input_path"));
    }

    #[test]
    fn only_secret_values_are_replaced() {
        let args = redact_arguments([
            ("--input".to_string(), "s3://b/x".to_string()),
            ("--db_password".to_string(), "hunter2".to_string()),
        ]);
        assert_eq!(args["--input"], "s3://b/x");
        assert_eq!(args["--db_password"], "[redacted]");
    }
}
