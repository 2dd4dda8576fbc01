//! Test support for users of the framework and for its own tests (feature `testing`): a model of
//! the Kinesis event source mapping's re-delivery ([`esm`]), and a store that fails on demand
//! ([`FaultyStore`]) to reach the failure paths no emulator produces at will.

pub mod esm;
mod faulty_store;

pub use faulty_store::{FaultFn, FaultyStore};
