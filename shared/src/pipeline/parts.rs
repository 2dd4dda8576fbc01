//! The sink parts a pipeline builder was given; the rest take defaults when it is built.

use std::sync::Arc;

use crate::sink::{Encoder, NdjsonGzip, ObjectStore, Partitioner, Sink};

/// Store, encoder and partitioner, each optional until the pipeline is built.
pub(crate) struct SinkSettings<O> {
    pub(crate) store: Option<Arc<dyn ObjectStore>>,
    pub(crate) encoder: Option<Arc<dyn Encoder>>,
    pub(crate) partitioner: Option<Arc<dyn Partitioner<O>>>,
}

impl<O: 'static> SinkSettings<O> {
    pub(crate) fn new() -> Self {
        SinkSettings {
            store: None,
            encoder: None,
            partitioner: None,
        }
    }

    pub(crate) fn set(&mut self, sink: Sink<O>) {
        self.store = Some(sink.store);
        self.encoder = Some(sink.encoder);
        self.partitioner = Some(sink.partitioner);
    }

    /// The sink over `store`, with gzip NDJSON and `partitioner` where none was given.
    pub(crate) fn into_sink(
        self,
        store: Arc<dyn ObjectStore>,
        partitioner: impl Partitioner<O> + 'static,
    ) -> Sink<O> {
        Sink {
            store,
            encoder: self
                .encoder
                .unwrap_or_else(|| Arc::new(NdjsonGzip::default())),
            partitioner: self.partitioner.unwrap_or_else(|| Arc::new(partitioner)),
        }
    }
}

/// The builder methods that set sink parts, for a builder with a `parts: SinkSettings<T::Output>`
/// field; `$default` names its default partitioner in the docs.
macro_rules! sink_setters {
    ($default:literal) => {
        /// The object store (S3 through the shared client by default).
        pub fn store(mut self, store: impl $crate::sink::ObjectStore + 'static) -> Self {
            self.parts.store = Some(std::sync::Arc::new(store));
            self
        }

        /// The encoder of curated objects (gzip NDJSON by default).
        pub fn encoder(mut self, encoder: impl $crate::sink::Encoder + 'static) -> Self {
            self.parts.encoder = Some(std::sync::Arc::new(encoder));
            self
        }

        #[doc = concat!("How outputs are partitioned ([`", $default, "`](crate::sink::", $default, ") by event time by default).")]
        pub fn partitioner(
            mut self,
            partitioner: impl $crate::sink::Partitioner<T::Output> + 'static,
        ) -> Self {
            self.parts.partitioner = Some(std::sync::Arc::new(partitioner));
            self
        }

        /// A whole sink at once: store, encoder and partitioner.
        pub fn sink(mut self, sink: $crate::sink::Sink<T::Output>) -> Self {
            self.parts.set(sink);
            self
        }
    };
}

pub(crate) use sink_setters;
