//! Fault episodes with "nothing lost" invariants.

mod proxy;
