//! An object store wrapper that fails chosen puts.

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::sink::{
    ObjectInfo, ObjectReader, ObjectStore, PutObject, SinkError, SinkErrorKind, UploadedPart,
};

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
    fn put(&self, object: PutObject) -> BoxFuture<'_, Result<(), SinkError>> {
        match (self.fault)(&object) {
            Some(kind) => Box::pin(async move {
                Err(SinkError::new(
                    "put",
                    object.bucket,
                    object.key,
                    kind,
                    "injected fault",
                ))
            }),
            None => self.inner.put(object),
        }
    }

    // Everything but whole puts reaches the inner store unchanged.
    fn head<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObjectInfo>, SinkError>> {
        self.inner.head(bucket, key)
    }

    fn get<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Option<ObjectReader>, SinkError>> {
        self.inner.get(bucket, key, if_match)
    }

    fn delete<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), SinkError>> {
        self.inner.delete(bucket, key)
    }

    fn copy<'a>(
        &'a self,
        from: (&'a str, &'a str),
        if_match: &'a str,
        to: (&'a str, &'a str),
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        self.inner.copy(from, if_match, to)
    }

    fn start_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        content_type: &'static str,
    ) -> BoxFuture<'a, Result<String, SinkError>> {
        self.inner.start_upload(bucket, key, content_type)
    }

    fn upload_part<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
        number: i32,
        data: Vec<u8>,
    ) -> BoxFuture<'a, Result<UploadedPart, SinkError>> {
        self.inner.upload_part(bucket, key, upload_id, number, data)
    }

    fn complete_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
        parts: Vec<UploadedPart>,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        self.inner.complete_upload(bucket, key, upload_id, parts)
    }

    fn abort_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        self.inner.abort_upload(bucket, key, upload_id)
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
