//! Telemetry: JSON logs with invocation context, and EMF metrics.

mod logs;
pub(crate) mod metric;
mod metrics;

pub use logs::init_logging;
pub(crate) use logs::{set_invocation, InvocationContext};
pub use metrics::{Metrics, Unit};

use std::cell::RefCell;
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

/// Ties the current invocation's later log lines to its input (the batch's first sequence
/// number, the object's key), once the function has read it.
pub fn correlate(correlation_id: Option<String>) {
    logs::update_invocation(|invocation| invocation.correlation_id = correlation_id);
}

tokio::task_local! {
    /// The current invocation's metrics document, set by the invocation layer.
    pub(crate) static INVOCATION_METRICS: RefCell<Metrics>;
}

/// Adds to the current invocation's metrics document, flushed as EMF when the invocation
/// answers (nothing outside an invocation): a transform or a user's layer can count its own
/// metric, `runnel::telemetry::record(|m| m.count("CacheHits", 1))`.
pub fn record(f: impl FnOnce(&mut Metrics)) {
    let _ = INVOCATION_METRICS.try_with(|m| f(&mut m.borrow_mut()));
}

/// Runs `f` with the current invocation's metrics document, for work that records while it
/// awaits (outside an invocation, with a document of its own that is dropped).
pub(crate) async fn recording<R>(f: impl AsyncFnOnce(&mut Metrics) -> R) -> R {
    let taken = INVOCATION_METRICS
        .try_with(|slot| std::mem::replace(&mut *slot.borrow_mut(), Metrics::new("")))
        .ok();
    let in_invocation = taken.is_some();
    let mut metrics = taken.unwrap_or_else(|| Metrics::new(""));
    let result = f(&mut metrics).await;
    if in_invocation {
        let _ = INVOCATION_METRICS.try_with(|slot| *slot.borrow_mut() = metrics);
    }
    result
}
