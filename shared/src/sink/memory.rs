//! [`MemoryStore`]: the object store in memory, for tests, benchmarks and local runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;

use super::store::{
    ObjectInfo, ObjectReader, ObjectStore, PutObject, SinkError, SinkErrorKind, UploadedPart,
};

/// Objects by (bucket, key).
pub type ObjectMap = BTreeMap<(String, String), Vec<u8>>;

#[derive(Default)]
struct State {
    objects: ObjectMap,
    puts: u64,
    next_upload: u64,
    /// Open uploads by id.
    uploads: BTreeMap<String, Upload>,
}

/// An upload in progress: its object and the parts received so far, by number.
struct Upload {
    bucket: String,
    key: String,
    parts: BTreeMap<i32, Vec<u8>>,
}

/// An in-memory object store: clones share their objects, so a test or benchmark keeps one
/// clone to read what the code under test put through another. Entity tags are the FNV-1a hash
/// of the body, so they change exactly when the content does.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of every object.
    pub fn objects(&self) -> ObjectMap {
        self.state().objects.clone()
    }

    /// Number of completed writes (puts and completed uploads, overwrites included).
    pub fn put_count(&self) -> u64 {
        self.state().puts
    }

    /// Multipart uploads started and neither completed nor aborted.
    pub fn open_uploads(&self) -> usize {
        self.state().uploads.len()
    }

    fn insert(&self, bucket: String, key: String, body: Vec<u8>) {
        let mut state = self.state();
        state.puts += 1;
        state.objects.insert((bucket, key), body);
    }
}

fn etag(body: &[u8]) -> String {
    format!("{:016x}", crate::util::hash::fnv1a(body))
}

fn missing(op: &str, bucket: &str, key: &str, what: &str) -> SinkError {
    SinkError::new(op, bucket, key, SinkErrorKind::Rejected, what)
}

impl ObjectStore for MemoryStore {
    fn put(&self, object: PutObject) -> BoxFuture<'_, Result<(), SinkError>> {
        self.insert(object.bucket, object.key, object.body);
        Box::pin(async { Ok(()) })
    }

    fn head<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<ObjectInfo>, SinkError>> {
        let info = self
            .state()
            .objects
            .get(&(bucket.to_string(), key.to_string()))
            .map(|body| ObjectInfo {
                etag: etag(body),
                size: body.len() as u64,
                last_modified: None,
            });
        Box::pin(async move { Ok(info) })
    }

    fn get<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Option<ObjectReader>, SinkError>> {
        let body = self
            .state()
            .objects
            .get(&(bucket.to_string(), key.to_string()))
            .cloned();
        Box::pin(async move {
            match body {
                None => Ok(None),
                Some(b) if if_match.is_some_and(|tag| tag != etag(&b)) => Err(SinkError::new(
                    "get",
                    bucket,
                    key,
                    SinkErrorKind::PreconditionFailed,
                    "the object changed",
                )),
                Some(b) => Ok(Some(Box::pin(std::io::Cursor::new(b)) as ObjectReader)),
            }
        })
    }

    fn delete<'a>(&'a self, bucket: &'a str, key: &'a str) -> BoxFuture<'a, Result<(), SinkError>> {
        self.state()
            .objects
            .remove(&(bucket.to_string(), key.to_string()));
        Box::pin(async { Ok(()) })
    }

    fn copy<'a>(
        &'a self,
        from: (&'a str, &'a str),
        if_match: &'a str,
        to: (&'a str, &'a str),
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        let body = self
            .state()
            .objects
            .get(&(from.0.to_string(), from.1.to_string()))
            .cloned();
        let result = match body {
            None => Err(missing("copy", from.0, from.1, "no such object")),
            Some(b) if etag(&b) != if_match => Err(SinkError::new(
                "copy",
                from.0,
                from.1,
                SinkErrorKind::PreconditionFailed,
                "the object changed",
            )),
            Some(b) => {
                self.insert(to.0.to_string(), to.1.to_string(), b);
                Ok(())
            }
        };
        Box::pin(async move { result })
    }

    fn start_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        _content_type: &'static str,
    ) -> BoxFuture<'a, Result<String, SinkError>> {
        let mut state = self.state();
        state.next_upload += 1;
        let id = format!("upload-{}", state.next_upload);
        state.uploads.insert(
            id.clone(),
            Upload {
                bucket: bucket.to_string(),
                key: key.to_string(),
                parts: BTreeMap::new(),
            },
        );
        Box::pin(async move { Ok(id) })
    }

    fn upload_part<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
        number: i32,
        data: Vec<u8>,
    ) -> BoxFuture<'a, Result<UploadedPart, SinkError>> {
        let tag = etag(&data);
        let result = match self.state().uploads.get_mut(upload_id) {
            Some(upload) => {
                upload.parts.insert(number, data);
                Ok(UploadedPart { number, etag: tag })
            }
            None => Err(missing("upload part", bucket, key, "no such upload")),
        };
        Box::pin(async move { result })
    }

    fn complete_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload_id: &'a str,
        parts: Vec<UploadedPart>,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        let open = self.state().uploads.remove(upload_id);
        let result = match open {
            None => Err(missing("complete upload", bucket, key, "no such upload")),
            Some(Upload {
                bucket: b,
                key: k,
                parts: mut stored,
            }) => {
                let mut body = Vec::new();
                let mut complete = true;
                for part in &parts {
                    match stored.remove(&part.number) {
                        Some(data) if etag(&data) == part.etag => body.extend(data),
                        _ => complete = false,
                    }
                }
                if complete {
                    self.insert(b, k, body);
                    Ok(())
                } else {
                    Err(missing(
                        "complete upload",
                        bucket,
                        key,
                        "a listed part was not uploaded",
                    ))
                }
            }
        };
        Box::pin(async move { result })
    }

    fn abort_upload<'a>(
        &'a self,
        _bucket: &'a str,
        _key: &'a str,
        upload_id: &'a str,
    ) -> BoxFuture<'a, Result<(), SinkError>> {
        self.state().uploads.remove(upload_id);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn put(key: &str, body: &[u8]) -> PutObject {
        PutObject {
            bucket: "b".into(),
            key: key.into(),
            body: body.to_vec(),
            content_type: "text/plain",
        }
    }

    async fn read(store: &MemoryStore, key: &str) -> Option<Vec<u8>> {
        let mut reader = store.get("b", key, None).await.unwrap()?;
        let mut out = Vec::new();
        reader.read_to_end(&mut out).await.unwrap();
        Some(out)
    }

    #[tokio::test]
    async fn puts_overwrite_and_reads_see_the_latest() {
        let store = MemoryStore::new();
        store.put(put("k", b"1")).await.unwrap();
        store.put(put("k", b"2")).await.unwrap();
        assert_eq!(read(&store, "k").await.unwrap(), b"2");
        assert_eq!(read(&store, "gone").await, None);
        assert_eq!(store.put_count(), 2);
        let info = store.head("b", "k").await.unwrap().unwrap();
        assert_eq!(info.size, 1);
        assert!(store.get("b", "k", Some("stale")).await.is_err());
        store.delete("b", "k").await.unwrap();
        assert_eq!(store.head("b", "k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn uploads_assemble_their_parts_in_order_and_aborts_leave_nothing() {
        let store = MemoryStore::new();
        let id = store.start_upload("b", "big", "text/plain").await.unwrap();
        let p2 = store
            .upload_part("b", "big", &id, 2, b"world".to_vec())
            .await
            .unwrap();
        let p1 = store
            .upload_part("b", "big", &id, 1, b"hello ".to_vec())
            .await
            .unwrap();
        assert_eq!(read(&store, "big").await, None, "invisible until complete");
        store
            .complete_upload("b", "big", &id, vec![p1, p2])
            .await
            .unwrap();
        assert_eq!(read(&store, "big").await.unwrap(), b"hello world");
        let id = store
            .start_upload("b", "other", "text/plain")
            .await
            .unwrap();
        store
            .upload_part("b", "other", &id, 1, b"x".to_vec())
            .await
            .unwrap();
        assert_eq!(store.open_uploads(), 1);
        store.abort_upload("b", "other", &id).await.unwrap();
        assert_eq!(store.open_uploads(), 0);
        assert_eq!(read(&store, "other").await, None);
    }

    #[tokio::test]
    async fn copies_check_the_source_version() {
        let store = MemoryStore::new();
        store.put(put("src", b"data")).await.unwrap();
        let tag = store.head("b", "src").await.unwrap().unwrap().etag;
        assert_eq!(
            store
                .copy(("b", "src"), "old", ("b", "dst"))
                .await
                .unwrap_err()
                .kind,
            SinkErrorKind::PreconditionFailed
        );
        store.copy(("b", "src"), &tag, ("b", "dst")).await.unwrap();
        assert_eq!(read(&store, "dst").await.unwrap(), b"data");
    }
}
