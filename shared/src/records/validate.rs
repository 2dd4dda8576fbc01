//! A record type's validation rules and the broken rules they report.

use std::fmt;

/// One rule a value broke, with the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field the rule concerns (`user_id`).
    pub field: String,
    /// What is wrong with it, for people (`must not be empty`).
    pub message: String,
}

impl FieldError {
    /// A broken rule: `message` about `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// `Ok(())` when no rule was broken, else every broken rule.
pub fn check(errors: Vec<FieldError>) -> Result<(), Vec<FieldError>> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Validation rules of a record type. Report every broken rule, not only the first.
pub trait Validate {
    /// Every rule the value breaks; `Ok(())` when none.
    fn validate(&self) -> Result<(), Vec<FieldError>>;
}
