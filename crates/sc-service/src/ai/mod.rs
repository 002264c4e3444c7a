//! AI helpers (API.md §9).

pub mod chunks;
pub mod offline;
