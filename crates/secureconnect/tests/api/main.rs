//! The black-box suite: real servers on random ports, spoken to over HTTP.

mod auth;
mod binary;
mod cluster;
mod common;
mod hostile;
mod logs;
mod mail;
mod ops;
mod totp;
mod users;
