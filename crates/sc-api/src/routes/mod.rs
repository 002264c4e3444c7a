pub mod auth;
pub mod chat;
pub mod ops;
pub mod realtime;
pub mod users;
