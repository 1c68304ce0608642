//! One error type for a request; its HTTP status and exit code are decided here and nowhere else.

use std::fmt;

/// Why a request could not be served. The message is safe to show to the browser: it never
/// holds a path, a parse position, a cookie value or a token (those go to the log via `detail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: Kind,
    /// Shown to the client.
    pub message: String,
    /// Log-only detail (file names, line numbers). Never rendered.
    pub detail: Option<String>,
    /// The request field at fault, when one is (the hub's 400s name it).
    pub field: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Malformed request: bad argument, bad encoding, short body.
    BadRequest,
    /// Not known to the program (Keyrock's unknown `client_id`); a receiver's missing or wrong
    /// token.
    Unauthorized,
    /// Refused by the drive-by protection (§8).
    Forbidden,
    /// Nothing here answers to that (the hub: an event id unknown to this sender).
    NotFound,
    /// A method other than GET, HEAD or POST.
    MethodNotAllowed,
    /// A request body larger than the cap.
    PayloadTooLarge,
    /// A request body of a type the program does not read.
    UnsupportedMediaType,
    /// A sender over its rate (the hub), told when to come back.
    TooManyRequests,
    /// The configuration cannot be used, or an internal invariant failed.
    Internal,
    /// Nothing could keep what the request asked (the receiver: neither the registry nor the
    /// spool).
    Unavailable,
}

impl Error {
    fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into(), detail: None, field: None }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Error::new(Kind::BadRequest, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Error::new(Kind::Unauthorized, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Error::new(Kind::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(Kind::NotFound, message)
    }

    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Error::new(Kind::TooManyRequests, message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Error::new(Kind::MethodNotAllowed, message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Error::new(Kind::PayloadTooLarge, message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Error::new(Kind::UnsupportedMediaType, message)
    }

    /// The configuration cannot be used. The browser is told only that; `detail` (the file,
    /// the line, the problem) goes to the log.
    pub fn misconfigured(detail: impl Into<String>) -> Self {
        Error::internal("the signout service is misconfigured", detail)
    }

    pub fn unavailable(message: impl Into<String>, detail: impl Into<String>) -> Self {
        Error {
            kind: Kind::Unavailable,
            message: message.into(),
            detail: Some(detail.into()),
            field: None,
        }
    }

    /// Something that should not happen did; `detail` goes to the log only.
    pub fn internal(message: impl Into<String>, detail: impl Into<String>) -> Self {
        Error {
            kind: Kind::Internal,
            message: message.into(),
            detail: Some(detail.into()),
            field: None,
        }
    }

    /// Names the request field at fault.
    pub fn in_field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The HTTP status code and reason phrase.
    pub fn status(&self) -> (u16, &'static str) {
        match self.kind {
            Kind::BadRequest => (400, "Bad Request"),
            Kind::Unauthorized => (401, "Unauthorized"),
            Kind::Forbidden => (403, "Forbidden"),
            Kind::NotFound => (404, "Not Found"),
            Kind::MethodNotAllowed => (405, "Method Not Allowed"),
            Kind::PayloadTooLarge => (413, "Content Too Large"),
            Kind::UnsupportedMediaType => (415, "Unsupported Media Type"),
            Kind::TooManyRequests => (429, "Too Many Requests"),
            Kind::Internal => (500, "Internal Server Error"),
            Kind::Unavailable => (503, "Service Unavailable"),
        }
    }

    /// Every error exits 1, as DACS does.
    pub fn exit_code(&self) -> i32 {
        1
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
