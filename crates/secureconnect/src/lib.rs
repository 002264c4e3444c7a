//! The SecureConnect server as a library: the binary's `main` only parses the command line.

pub mod app;
pub mod backup;
pub mod bench;
mod bench_ai;
mod bench_calls;
mod bench_chat;
mod bench_drive;
mod bench_fanout;
#[cfg(feature = "client")]
mod bench_mls;
mod bench_push;
mod bench_strict;
pub mod cli;
#[cfg(feature = "client")]
pub mod client_cli;
mod push;
pub mod secrets;
pub mod telemetry;

pub use app::App;
