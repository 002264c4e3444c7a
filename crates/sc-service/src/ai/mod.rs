//! AI helpers (API.md §9).
