//! Placeholder substitution for the files `runnel new` writes.
//!
//! A placeholder is `{{key}}` with a key of lowercase ASCII letters and `_`. The text is scanned
//! once, left to right, so a substituted value is never scanned again (a value may itself
//! contain `{{`). Every other brace, including Rust's `{{` escapes that are not followed by a key
//! and `}}`, is copied as is.

use std::fmt;

/// A placeholder in a template that no value was given for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownPlaceholder {
    /// The key between the braces.
    pub key: String,
    /// 1-based line of the placeholder.
    pub line: usize,
}

impl fmt::Display for UnknownPlaceholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}: no value for placeholder {{{{{}}}}}",
            self.line, self.key
        )
    }
}

impl std::error::Error for UnknownPlaceholder {}

/// The key of a placeholder starting at `text` (which begins with `{{`), and its length.
fn placeholder(text: &str) -> Option<(&str, usize)> {
    let rest = text.strip_prefix("{{")?;
    let len = rest
        .bytes()
        .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
        .count();
    if len == 0 || !rest[len..].starts_with("}}") {
        return None;
    }
    Some((&rest[..len], len + 4))
}

/// `template` with every placeholder replaced by its value from `values`.
pub fn render(template: &str, values: &[(&str, &str)]) -> Result<String, UnknownPlaceholder> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut rest = template;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let here = &rest[at..];
        match placeholder(here) {
            Some((key, len)) => {
                let value = values
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| {
                        let offset = template.len() - here.len();
                        UnknownPlaceholder {
                            key: key.to_string(),
                            line: template[..offset].matches('\n').count() + 1,
                        }
                    })?;
                out.push_str(value);
                rest = &here[len..];
            }
            None => {
                out.push_str("{{");
                rest = &here[2..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_everywhere() {
        let out = render(
            "name = \"{{name}}\"\n{{crate}}::pipeline() // {{name}}",
            &[("name", "clicks-v2"), ("crate", "clicks_v2")],
        )
        .unwrap();
        assert_eq!(
            out,
            "name = \"clicks-v2\"\nclicks_v2::pipeline() // clicks-v2"
        );
    }

    #[test]
    fn values_are_not_scanned_again() {
        let out = render("a {{x}} b", &[("x", "{{y}}")]).unwrap();
        assert_eq!(out, "a {{y}} b");
    }

    #[test]
    fn other_braces_are_kept() {
        let text = "format!(\"{{{}}}\", x); {{ not a key }} {{Upper}} {{}} {{a-b}} {{ {{open";
        assert_eq!(render(text, &[]).unwrap(), text);
    }

    #[test]
    fn an_unknown_placeholder_is_an_error_with_its_line() {
        let err = render("one\ntwo {{nmae}}\n", &[("name", "x")]).unwrap_err();
        assert_eq!(
            err,
            UnknownPlaceholder {
                key: "nmae".into(),
                line: 2
            }
        );
        assert_eq!(err.to_string(), "line 2: no value for placeholder {{nmae}}");
        let first = render("{{a}}", &[]).unwrap_err();
        assert_eq!(first.line, 1);
        let after_newline = render("x\n{{a}}", &[]).unwrap_err();
        assert_eq!(after_newline.line, 2);
    }
}
