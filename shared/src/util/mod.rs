//! Small helpers with no AWS or pipeline knowledge, shared by every layer above them.

pub mod backoff;
pub(crate) mod hash;
pub(crate) mod json;
#[cfg(any(feature = "alert", feature = "glue"))]
pub(crate) mod redact;
