//! DACS credential cookies: their names, the `Cookie` header, selection and expiry.

pub mod expiry;
pub mod header;
pub mod identity;
pub mod selection;

pub use expiry::{CookieAttributes, CookieSyntax};
pub use identity::{CookieName, Identity};
pub use selection::{Credential, Filter, Selection};

/// How names are compared (`NAME_COMPARE`): federation, jurisdiction and username alike.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum NameCompare {
    /// Byte-for-byte (`case`, and DACS's `default`).
    #[default]
    Case,
    /// ASCII case-insensitive (`nocase`).
    NoCase,
}

impl NameCompare {
    pub fn eq(self, a: &str, b: &str) -> bool {
        match self {
            NameCompare::Case => a == b,
            NameCompare::NoCase => a.eq_ignore_ascii_case(b),
        }
    }
}
