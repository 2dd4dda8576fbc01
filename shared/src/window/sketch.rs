//! The distinct-count sketch: HyperLogLog's 2^12 registers (`simple_hll`), kept sparse — the
//! registers in use, in index order — while few are in use. A pane of one key and window usually
//! sees a handful of values, and 4 KiB of registers per pane, allocated, zeroed and scanned, was
//! most of the aggregating path's cost.

use std::borrow::Cow;

/// Registers of the sketch: 2^12.
pub(crate) const SKETCH_PRECISION: usize = 12;
const REGISTERS: usize = 1 << SKETCH_PRECISION;
/// Registers in use past which the dense form is kept: the sparse one (4 bytes a register)
/// would be half the dense one's size.
const SPARSE_LIMIT: usize = REGISTERS / 8;

type Dense = simple_hll::HyperLogLog<SKETCH_PRECISION>;

/// The registers of one sketch.
#[derive(Debug, Clone)]
pub(crate) enum Sketch {
    /// (register, rank) of each register in use, by register; every rank above zero.
    Sparse(Vec<(u16, u8)>),
    Dense(Box<Dense>),
}

impl Default for Sketch {
    fn default() -> Self {
        Sketch::Sparse(Vec::new())
    }
}

/// Equal when the registers are, whichever form holds them.
impl PartialEq for Sketch {
    fn eq(&self, other: &Self) -> bool {
        self.registers() == other.registers()
    }
}

/// The register a hash falls in and its rank, as `simple_hll`'s `add_hash` computes them (a test
/// checks both forms agree).
fn register_rank(hash: u64) -> (u16, u8) {
    let index = (hash & (REGISTERS as u64 - 1)) as u16;
    let rest = (hash >> SKETCH_PRECISION) | (1u64 << (64 - SKETCH_PRECISION));
    (index, (rest.trailing_zeros() + 1) as u8)
}

/// The union of two sparse register lists, the higher rank where both use a register.
fn union(a: &[(u16, u8)], b: &[(u16, u8)]) -> Vec<(u16, u8)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => {
                out.push(a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, a[i].1.max(b[j].1)));
                i += 1;
                j += 1;
            }
        }
    }
    out.extend_from_slice(&a[i..]);
    out.extend_from_slice(&b[j..]);
    out
}

fn dense(used: &[(u16, u8)]) -> Dense {
    let mut registers = vec![0u8; REGISTERS];
    for &(i, r) in used {
        registers[usize::from(i)] = r;
    }
    Dense::with_registers(registers)
}

impl Sketch {
    /// The sketch of (register, rank) pairs in any order, as read from a pane; `None` when a
    /// register is out of range or a rank impossible. A register named twice keeps its higher
    /// rank.
    pub(crate) fn from_used(mut used: Vec<(u64, u64)>) -> Option<Sketch> {
        let limit = 64 - SKETCH_PRECISION as u64 + 1;
        if used
            .iter()
            .any(|&(i, r)| i >= REGISTERS as u64 || r > limit)
        {
            return None;
        }
        used.retain(|&(_, r)| r > 0);
        used.sort_unstable();
        let mut sparse: Vec<(u16, u8)> = Vec::with_capacity(used.len());
        for (i, r) in used {
            // Sorted by register then rank: the last of a register is its highest.
            match sparse.last_mut() {
                Some(last) if u64::from(last.0) == i => last.1 = r as u8,
                _ => sparse.push((i as u16, r as u8)),
            }
        }
        let mut sketch = Sketch::Sparse(sparse);
        sketch.densify_when_full();
        Some(sketch)
    }

    pub(crate) fn add_hash(&mut self, hash: u64) {
        match self {
            Sketch::Dense(d) => d.add_hash(hash),
            Sketch::Sparse(used) => {
                let (index, rank) = register_rank(hash);
                match used.binary_search_by_key(&index, |&(i, _)| i) {
                    Ok(at) => used[at].1 = used[at].1.max(rank),
                    Err(at) => {
                        used.insert(at, (index, rank));
                        self.densify_when_full();
                    }
                }
            }
        }
    }

    /// Raises every register to the other sketch's rank where that is higher.
    pub(crate) fn merge(&mut self, other: &Sketch) {
        match (&mut *self, other) {
            (Sketch::Dense(a), Sketch::Dense(b)) => a.merge(b),
            (Sketch::Dense(a), Sketch::Sparse(b)) => a.merge(&dense(b)),
            (Sketch::Sparse(a), Sketch::Dense(b)) => {
                let mut merged = dense(a);
                merged.merge(b);
                *self = Sketch::Dense(Box::new(merged));
            }
            (Sketch::Sparse(a), Sketch::Sparse(b)) => {
                *a = union(a, b);
                self.densify_when_full();
            }
        }
    }

    fn densify_when_full(&mut self) {
        if let Sketch::Sparse(used) = self {
            if used.len() > SPARSE_LIMIT {
                *self = Sketch::Dense(Box::new(dense(used)));
            }
        }
    }

    /// (register, rank) of each register in use, by register.
    pub(crate) fn used(&self) -> Cow<'_, [(u16, u8)]> {
        match self {
            Sketch::Sparse(used) => Cow::Borrowed(used),
            Sketch::Dense(d) => Cow::Owned(
                d.get_registers()
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| **r > 0)
                    .map(|(i, r)| (i as u16, *r))
                    .collect(),
            ),
        }
    }

    /// All 2^12 registers, in order.
    pub(crate) fn registers(&self) -> Cow<'_, [u8]> {
        match self {
            Sketch::Sparse(used) => {
                let mut registers = vec![0u8; REGISTERS];
                for &(i, r) in used {
                    registers[usize::from(i)] = r;
                }
                Cow::Owned(registers)
            }
            Sketch::Dense(d) => Cow::Borrowed(d.get_registers()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn dense_of(hashes: &[u64]) -> Dense {
        let mut d = Dense::default();
        for &h in hashes {
            d.add_hash(h);
        }
        d
    }

    fn sketch_of(hashes: &[u64]) -> Sketch {
        let mut s = Sketch::default();
        for &h in hashes {
            s.add_hash(h);
        }
        s
    }

    proptest! {
        /// Whatever form holds them, the registers are `simple_hll`'s for the same hashes, added
        /// or merged in any grouping; up to 1,200 hashes crosses the sparse limit.
        #[test]
        fn registers_are_the_dense_sketch_s(
            hashes in proptest::collection::vec(any::<u64>(), 0..1200),
            cut in any::<prop::sample::Index>(),
        ) {
            let expected = dense_of(&hashes);
            let added = sketch_of(&hashes);
            prop_assert_eq!(&*added.registers(), expected.get_registers());
            let at = cut.index(hashes.len() + 1);
            let mut merged = sketch_of(&hashes[..at]);
            merged.merge(&sketch_of(&hashes[at..]));
            prop_assert_eq!(&*merged.registers(), expected.get_registers());
            let read = Sketch::from_used(
                added.used().iter().map(|&(i, r)| (u64::from(i), u64::from(r))).collect(),
            ).unwrap();
            prop_assert_eq!(&read, &added);
        }
    }

    #[test]
    fn few_values_stay_sparse_and_many_go_dense() {
        let few = sketch_of(
            &(0..10u64)
                .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .collect::<Vec<_>>(),
        );
        assert!(matches!(few, Sketch::Sparse(ref u) if u.len() <= 10));
        let many = sketch_of(
            &(0..5000u64)
                .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .collect::<Vec<_>>(),
        );
        assert!(matches!(many, Sketch::Dense(_)));
    }

    #[test]
    fn impossible_registers_are_refused() {
        assert!(Sketch::from_used(vec![(4096, 1)]).is_none());
        assert!(Sketch::from_used(vec![(1, 54)]).is_none());
        assert_eq!(
            Sketch::from_used(vec![(3, 2), (3, 5), (1, 1)])
                .unwrap()
                .used()
                .into_owned(),
            vec![(1, 1), (3, 5)]
        );
    }
}
