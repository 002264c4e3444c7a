//! The black-box suite: real servers on random ports, spoken to over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

mod admin;
mod ai;
mod ai_stub;
mod auth;
mod backup;
mod binary;
mod calls;
mod chat;
mod cluster;
mod common;
mod drive;
mod drive_access;
mod e2ee;
mod faults;
mod hostile;
mod lists;
mod logs;
mod mail;
mod mls;
mod notifications;
mod ops;
mod ops_files;
mod polls;
mod push;
mod push_servers;
mod realtime;
mod retention;
mod totp;
mod users;
mod web;
mod webrtc;
