pub mod auth;
pub mod blobs;
pub mod chat;
pub mod drive;
pub mod links;
pub mod ops;
pub mod realtime;
pub mod users;
