//! The CGI/1.1 boundary (RFC 3875): the environment snapshot, the arguments, the request body
//! and the response bytes. Everything past this module works on validated values.

pub mod args;
pub mod bearer;
pub mod body;
pub mod env;
pub mod format;
pub mod request;
pub mod response;

pub use env::Env;
pub use format::Format;
pub use request::{FetchMetadata, Method, Request, server};
pub use response::Response;
