//! Error helpers shared by every module.

/// An error with all its sources, `outer: inner: innermost`. SDK errors say little at the top
/// ("service error", "dispatch failure"); the chain says which call failed and why.
pub fn chain<E: std::error::Error + ?Sized>(err: &E) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let next = s.to_string();
        // Some SDK layers repeat their source's message; keep the text readable.
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[derive(Debug, thiserror::Error)]
    #[error("put s3://b/k failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chain_joins_every_source() {
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        ));
        assert_eq!(super::chain(&e), "put s3://b/k failed: timed out");
    }
}
