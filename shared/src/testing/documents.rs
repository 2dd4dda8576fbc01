//! Reading what a pipeline wrote: the JSON documents of NDJSON objects, gzip or not.

use std::io::Read;

use crate::records::GZIP_MAGIC;
use crate::sink::MemoryStore;

/// Why an object's documents could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocumentsError {
    /// The object starts like gzip but does not decompress to UTF-8 text.
    #[error("the object does not decompress to text")]
    Gzip(#[source] std::io::Error),
    /// The object is not UTF-8 text.
    #[error("the object is not UTF-8 text")]
    Text(#[source] std::string::FromUtf8Error),
    /// A line is not a JSON document.
    #[error("line {line} is not JSON: {text:?}")]
    Json {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
}

/// The documents of one NDJSON object (gzip-compressed or plain); every line must be one.
pub fn ndjson_documents(body: &[u8]) -> Result<Vec<serde_json::Value>, DocumentsError> {
    let text = if body.starts_with(&GZIP_MAGIC) {
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(body)
            .read_to_string(&mut text)
            .map_err(DocumentsError::Gzip)?;
        text
    } else {
        String::from_utf8(body.to_vec()).map_err(DocumentsError::Text)?
    };
    text.lines()
        .enumerate()
        .map(|(n, l)| {
            serde_json::from_str(l).map_err(|source| DocumentsError::Json {
                line: n + 1,
                text: l.to_string(),
                source,
            })
        })
        .collect()
}

/// Every document of every object of `bucket` whose key starts with `prefix`, in key order.
pub fn documents_under(
    store: &MemoryStore,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<serde_json::Value>, DocumentsError> {
    let mut out = Vec::new();
    for ((b, key), body) in store.objects() {
        if b == bucket && key.starts_with(prefix) {
            out.extend(ndjson_documents(&body)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{Encoder, NdjsonGzip, ObjectStore, PutObject};

    #[tokio::test]
    async fn documents_come_back_from_gzip_and_plain_objects_in_key_order() {
        let store = MemoryStore::new();
        let gz = NdjsonGzip::default()
            .encode(b"{\"n\":1}\n{\"n\":2}\n")
            .unwrap();
        for (key, body) in [("p/b.json.gz", gz), ("p/a.json", b"{\"n\":0}\n".to_vec())] {
            let put = PutObject {
                bucket: "b".into(),
                key: key.into(),
                body,
                content_type: "application/x-ndjson",
            };
            store.put(put).await.unwrap();
        }
        let docs = documents_under(&store, "b", "p/").unwrap();
        let ns: Vec<i64> = docs.iter().map(|d| d["n"].as_i64().unwrap()).collect();
        assert_eq!(ns, [0, 1, 2]);
        assert!(documents_under(&store, "other", "p/").unwrap().is_empty());
        let err = ndjson_documents(b"{\"n\":1}\nnot json\n").unwrap_err();
        assert!(err.to_string().starts_with("line 2 is not JSON"), "{err}");
        // A blank line is not a document: writers never emit one.
        assert!(ndjson_documents(b"{\"n\":1}\n\n{\"n\":2}\n").is_err());
    }
}
