//! Telemetry: JSON logs with invocation context, and EMF metrics.

mod logs;
mod metrics;

pub use logs::init_logging;
pub(crate) use logs::{set_invocation, InvocationContext};
pub use metrics::{Metrics, Unit};

use std::sync::atomic::{AtomicBool, Ordering};

static WARM: AtomicBool = AtomicBool::new(false);

/// Marks the start of an invocation: later log lines carry its request id, whether it is the
/// process's first (cold) invocation, and the correlation id (e.g. the batch's first sequence number
/// or the S3 object key) that ties its logs to the input.
pub fn begin_invocation(request_id: &str, correlation_id: Option<String>) -> bool {
    let cold_start = !WARM.swap(true, Ordering::Relaxed);
    set_invocation(InvocationContext {
        request_id: Some(request_id.to_string()),
        cold_start,
        correlation_id,
    });
    cold_start
}
