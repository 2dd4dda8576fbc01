//! [`MemoryStore`]: the object store in memory, for tests, benchmarks and local runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::future::BoxFuture;

use super::store::{
    ObjectInfo, ObjectStore, SinkError, SinkErrorKind, StoreReply, StoreRequest, UploadedPart,
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
}

impl State {
    fn insert(&mut self, bucket: String, key: String, body: Vec<u8>) {
        self.puts += 1;
        self.objects.insert((bucket, key), body);
    }
}

fn etag(body: &[u8]) -> String {
    // CRC-32 (the SIMD one gzip already uses) and length: a byte-at-a-time hash of every stored
    // body was 5 % of the ingest benchmark, which measures the pipeline, not this store.
    let mut crc = flate2::Crc::new();
    crc.update(body);
    format!("{:08x}{:08x}", crc.sum(), body.len() as u32)
}

impl ObjectStore for MemoryStore {
    fn call<'a>(
        &'a self,
        request: StoreRequest<'a>,
    ) -> BoxFuture<'a, Result<StoreReply, SinkError>> {
        // Everything happens now, under the lock; the future only hands the answer over.
        let reply = self.answer(request);
        Box::pin(async move { reply })
    }
}

impl MemoryStore {
    fn answer(&self, request: StoreRequest<'_>) -> Result<StoreReply, SinkError> {
        let key_of = |bucket: &str, key: &str| (bucket.to_string(), key.to_string());
        // Owned: the request is taken apart below.
        let (op, bucket, key) = request.target();
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        let missing = |what: &str| SinkError::new(op, &bucket, &key, SinkErrorKind::Rejected, what);
        let mut state = self.state();
        Ok(match request {
            StoreRequest::Put(object) => {
                state.insert(object.bucket, object.key, object.body);
                StoreReply::Done
            }
            StoreRequest::Head { bucket, key } => StoreReply::Info(
                state
                    .objects
                    .get(&key_of(bucket, key))
                    .map(|body| ObjectInfo {
                        etag: etag(body),
                        size: body.len() as u64,
                        last_modified: None,
                    }),
            ),
            StoreRequest::Get {
                bucket,
                key,
                if_match,
            } => match state.objects.get(&key_of(bucket, key)) {
                None => StoreReply::Body(None),
                Some(b) if if_match.is_some_and(|tag| tag != etag(b)) => {
                    return Err(changed("get", bucket, key))
                }
                Some(b) => StoreReply::Body(Some(Box::pin(std::io::Cursor::new(b.clone())))),
            },
            StoreRequest::Delete { bucket, key } => {
                state.objects.remove(&key_of(bucket, key));
                StoreReply::Done
            }
            StoreRequest::Copy { from, if_match, to } => {
                let body = match state.objects.get(&key_of(from.0, from.1)) {
                    None => return Err(missing("no such object")),
                    Some(b) if etag(b) != if_match => return Err(changed("copy", from.0, from.1)),
                    Some(b) => b.clone(),
                };
                state.insert(to.0.to_string(), to.1.to_string(), body);
                StoreReply::Done
            }
            StoreRequest::StartUpload { bucket, key, .. } => {
                state.next_upload += 1;
                let id = format!("upload-{}", state.next_upload);
                let upload = Upload {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                    parts: BTreeMap::new(),
                };
                state.uploads.insert(id.clone(), upload);
                StoreReply::UploadId(id)
            }
            StoreRequest::UploadPart {
                upload_id,
                number,
                data,
                ..
            } => {
                let Some(upload) = state.uploads.get_mut(upload_id) else {
                    return Err(missing("no such upload"));
                };
                let tag = etag(&data);
                upload.parts.insert(number, data);
                StoreReply::Part(UploadedPart { number, etag: tag })
            }
            StoreRequest::CompleteUpload {
                upload_id, parts, ..
            } => {
                let Some(mut upload) = state.uploads.remove(upload_id) else {
                    return Err(missing("no such upload"));
                };
                let mut body = Vec::new();
                for part in &parts {
                    match upload.parts.remove(&part.number) {
                        Some(data) if etag(&data) == part.etag => body.extend(data),
                        _ => return Err(missing("a listed part was not uploaded")),
                    }
                }
                state.insert(upload.bucket, upload.key, body);
                StoreReply::Done
            }
            StoreRequest::AbortUpload { upload_id, .. } => {
                state.uploads.remove(upload_id);
                StoreReply::Done
            }
        })
    }
}

fn changed(op: &str, bucket: &str, key: &str) -> SinkError {
    SinkError::new(
        op,
        bucket,
        key,
        SinkErrorKind::PreconditionFailed,
        "the object changed",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::PutObject;
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
