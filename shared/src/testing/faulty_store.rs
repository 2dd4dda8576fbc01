//! An object store wrapper that fails chosen puts.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::sink::{ObjectStore, PutObject, SinkError, SinkErrorKind, StoreReply, StoreRequest};

/// Decides whether a put fails: `Some(kind)` fails it with that kind, `None` lets it through.
pub type FaultFn = dyn Fn(&PutObject) -> Option<SinkErrorKind> + Send + Sync;

/// Wraps a store and fails the puts a [`FaultFn`] picks, so tests can drive throttling, outages
/// or refusals for chosen keys while every other put reaches the inner store.
#[derive(Clone)]
pub struct FaultyStore<S> {
    inner: S,
    fault: Arc<FaultFn>,
}

impl<S: ObjectStore> FaultyStore<S> {
    /// Wraps `inner`; `fault` picks the puts that fail, and how.
    pub fn new(
        inner: S,
        fault: impl Fn(&PutObject) -> Option<SinkErrorKind> + Send + Sync + 'static,
    ) -> Self {
        FaultyStore {
            inner,
            fault: Arc::new(fault),
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S: ObjectStore> ObjectStore for FaultyStore<S> {
    fn call<'a>(
        &'a self,
        request: StoreRequest<'a>,
    ) -> BoxFuture<'a, Result<StoreReply, SinkError>> {
        // Only whole puts are picked; every other call reaches the inner store unchanged.
        if let StoreRequest::Put(object) = &request {
            if let Some(kind) = (self.fault)(object) {
                let err =
                    SinkError::new("put", &object.bucket, &object.key, kind, "injected fault");
                return Box::pin(async move { Err(err) });
            }
        }
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::MemoryStore;

    #[tokio::test]
    async fn picked_puts_fail_and_the_rest_reach_the_inner_store() {
        let memory = MemoryStore::new();
        let store = FaultyStore::new(memory.clone(), |o| {
            o.key.contains("bad").then_some(SinkErrorKind::Throttled)
        });
        let put = |key: &str, body: &[u8]| PutObject {
            bucket: "b".into(),
            key: key.into(),
            body: body.to_vec(),
            content_type: "text/plain",
        };
        store.put(put("k", b"1")).await.unwrap();
        let err = store.put(put("bad", b"2")).await.unwrap_err();
        assert_eq!(err.kind, SinkErrorKind::Throttled);
        assert_eq!(err.key, "bad");
        assert_eq!(memory.put_count(), 1);
        assert_eq!(
            store.inner().objects()[&("b".to_string(), "k".to_string())],
            b"1"
        );
    }
}
