//! SDK clients built on first use.
//!
//! Building an SDK client is a visible part of a cold start (its TLS configuration takes in every
//! CA root: about 0.3 ms a client with the Lambda CA bundle, BENCHMARKS.md). A client that only
//! some events need, such as Glue for the trigger that starts a day's job run or for the
//! enrichment of Glue alerts, is built when the first of them asks for it.

use std::fmt;
use std::sync::{Arc, OnceLock};

/// A client given ready-made, or built by a closure on first use and then kept. Clones share
/// the one client.
pub struct LazyClient<C>(State<C>);

type Build<C> = Arc<dyn Fn() -> C + Send + Sync>;

enum State<C> {
    Ready(C),
    Deferred {
        client: Arc<OnceLock<C>>,
        build: Build<C>,
    },
}

impl<C> LazyClient<C> {
    /// A client that `build` makes when [`LazyClient::get`] is first called.
    pub fn new(build: impl Fn() -> C + Send + Sync + 'static) -> Self {
        LazyClient(State::Deferred {
            client: Arc::new(OnceLock::new()),
            build: Arc::new(build),
        })
    }

    /// The client, built now if this is the first call.
    pub fn get(&self) -> &C {
        match &self.0 {
            State::Ready(client) => client,
            State::Deferred { client, build } => client.get_or_init(|| build()),
        }
    }

    /// Whether the client exists yet.
    pub fn is_built(&self) -> bool {
        match &self.0 {
            State::Ready(_) => true,
            State::Deferred { client, .. } => client.get().is_some(),
        }
    }
}

impl<C> From<C> for LazyClient<C> {
    fn from(client: C) -> Self {
        LazyClient(State::Ready(client))
    }
}

impl<C: Clone> Clone for LazyClient<C> {
    fn clone(&self) -> Self {
        LazyClient(match &self.0 {
            State::Ready(client) => State::Ready(client.clone()),
            State::Deferred { client, build } => State::Deferred {
                client: Arc::clone(client),
                build: Arc::clone(build),
            },
        })
    }
}

impl<C> fmt::Debug for LazyClient<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyClient")
            .field("built", &self.is_built())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_deferred_client_is_built_once_on_first_use_and_shared_by_clones() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&builds);
        let lazy = LazyClient::new(move || counter.fetch_add(1, Ordering::SeqCst) + 1);
        let clone = lazy.clone();
        assert!(!lazy.is_built());
        assert_eq!(builds.load(Ordering::SeqCst), 0);
        assert_eq!(*clone.get(), 1);
        assert_eq!(*lazy.get(), 1);
        assert!(lazy.is_built());
        assert_eq!(builds.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_given_client_is_used_as_it_is() {
        let lazy = LazyClient::from(7);
        assert!(lazy.is_built());
        assert_eq!(*lazy.clone().get(), 7);
        assert_eq!(format!("{lazy:?}"), "LazyClient { built: true }");
    }
}
