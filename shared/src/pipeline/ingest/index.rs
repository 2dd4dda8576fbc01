//! The ingested-object index: one empty-ish object per ingested version of a source object,
//! under `<state>/_days/dt=<day>/`. Hooks read it to know which of a day's inputs are in (the Glue
//! trigger's preconditions); ingest writes an entry after an object's manifest and deletes the
//! entry of a version it replaces.

use super::short_etag;
use crate::sink::Location;
use crate::util::hash::fnv1a;

/// The prefix under which the index entries of `day` live.
pub fn day_prefix(state: &Location, day: &str) -> String {
    state.key(&format!("_days/dt={day}/"))
}

/// The id of a source key within the index: its FNV-1a hash, 16 hex digits.
pub fn source_id(source_key: &str) -> String {
    format!("{:016x}", fnv1a(source_key.as_bytes()))
}

/// The index entry recording that `source_key` (with `etag`) of `day` was ingested:
/// `<day prefix><source id>-<short etag>`.
pub fn index_key(state: &Location, day: &str, source_key: &str, etag: &str) -> String {
    format!(
        "{}{}-{}",
        day_prefix(state, day),
        source_id(source_key),
        short_etag(etag)
    )
}

/// The source id an index entry's key names (the inverse of [`index_key`]'s naming).
#[cfg(any(test, feature = "glue"))]
pub fn entry_source_id(entry_key: &str) -> Option<&str> {
    entry_key.rsplit('/').next()?.split('-').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_keys_are_stable_per_source_and_version() {
        let state = Location::new("curated", "manifests");
        let a = index_key(
            &state,
            "2026-11-22",
            "raw/day/a.csv",
            "\"0123456789abcdef\"",
        );
        assert_eq!(
            a,
            index_key(&state, "2026-11-22", "raw/day/a.csv", "0123456789abcdef")
        );
        assert!(a.starts_with(&day_prefix(&state, "2026-11-22")));
        assert!(a.starts_with("manifests/_days/dt=2026-11-22/"));
        assert!(a.ends_with("-0123456789ab"));
        assert_ne!(a, index_key(&state, "2026-11-22", "raw/day/a.csv", "ffff"));
    }

    #[test]
    fn entries_name_their_source() {
        let state = Location::new("curated", "manifests");
        let entry = index_key(&state, "2026-11-22", "raw/day/a.csv", "etag");
        assert_eq!(
            entry_source_id(&entry),
            Some(source_id("raw/day/a.csv").as_str())
        );
    }
}
