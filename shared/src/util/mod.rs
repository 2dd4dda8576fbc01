//! Small helpers with no AWS or pipeline knowledge, shared by every layer above them.

pub mod backoff;
pub mod hash;
pub(crate) mod json;
pub mod redact;
