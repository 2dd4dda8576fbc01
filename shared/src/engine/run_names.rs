//! The names of a run's objects: made from the position of the run's first document, so the
//! same run has the same name in every delivery (data, quarantine and panes alike).

use std::sync::Arc;

/// `{partition}/{stream}-{position}-{index:05}[-{output}].{extension}`, without `format!`: its
/// machinery cost more than the rest of an object's put when each SQS message is an object.
pub(super) fn object_name(
    partition: &str,
    stream: &str,
    position: &str,
    index: u32,
    output: u32,
    extension: &str,
) -> String {
    let mut digits = itoa::Buffer::new();
    let mut name = String::with_capacity(
        partition.len() + stream.len() + position.len() + extension.len() + 26,
    );
    for part in [partition, "/", stream, "-", position, "-"] {
        name.push_str(part);
    }
    let index = digits.format(index);
    name.extend(std::iter::repeat_n('0', 5usize.saturating_sub(index.len())));
    name.push_str(index);
    if output > 0 {
        name.push('-');
        name.push_str(digits.format(output));
    }
    name.push('.');
    name.push_str(extension);
    name
}

/// The partition path as a shared string, reusing the previous document's while it repeats.
pub(super) fn shared_partition(path: &str, last: &mut Option<Arc<str>>) -> Arc<str> {
    match last {
        Some(p) if p.as_ref() == path => p.clone(),
        _ => {
            let p: Arc<str> = Arc::from(path);
            *last = Some(p.clone());
            p
        }
    }
}

#[cfg(test)]
mod tests {
    use super::object_name;

    #[test]
    fn object_names_pad_the_index_and_mark_fan_out() {
        for (index, output) in [
            (0, 0),
            (7, 0),
            (12_345, 0),
            (123_456, 0),
            (3, 1),
            (u32::MAX, 42),
        ] {
            let output_part = match output {
                0 => String::new(),
                n => format!("-{n}"),
            };
            assert_eq!(
                object_name(
                    "dt=2026-12-02/hour=08",
                    "shardId-1",
                    "4961",
                    index,
                    output,
                    "json.gz"
                ),
                format!("dt=2026-12-02/hour=08/shardId-1-4961-{index:05}{output_part}.json.gz")
            );
        }
    }
}
