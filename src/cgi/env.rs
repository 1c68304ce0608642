//! A snapshot of the process environment, taken once at the edge.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::error::Error;

/// The environment as raw bytes, keyed by variable name. Names that are not UTF-8 cannot be
/// CGI meta-variables and are dropped; values are kept as bytes so that each consumer decides
/// how strict to be.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, Vec<u8>>,
}

impl Env {
    pub fn from_os(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Env {
        let vars = vars
            .into_iter()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_vec())))
            .collect();
        Env { vars }
    }

    /// Builds an environment from name-value byte pairs (a FastCGI request's `PARAMS`); names
    /// that are not UTF-8 are dropped, as in [`Env::from_os`].
    pub fn from_byte_pairs(pairs: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>) -> Env {
        let vars =
            pairs.into_iter().filter_map(|(k, v)| Some((String::from_utf8(k).ok()?, v))).collect();
        Env { vars }
    }

    /// Builds an environment from literal pairs (tests, the demo server).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        let vars = pairs.into_iter().map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec())).collect();
        Env { vars }
    }

    pub fn raw(&self, name: &str) -> Option<&[u8]> {
        self.vars.get(name).map(Vec::as_slice)
    }

    /// A value as the operating system holds it, to hand on to a child process.
    pub fn os(&self, name: &str) -> Option<&OsStr> {
        self.raw(name).map(OsStr::from_bytes)
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// A value that must be clean text: not UTF-8 or holding a control character is a 400.
    pub fn text(&self, name: &str) -> Result<Option<&str>, Error> {
        let Some(raw) = self.raw(name) else { return Ok(None) };
        clean_text(raw).map(Some).ok_or_else(|| {
            Error::bad_request(format!("the {name} variable is not clean UTF-8 text"))
        })
    }

    /// A value that only feeds logging or an optional feature: anything unclean is ignored.
    pub fn soft(&self, name: &str) -> Option<&str> {
        self.raw(name).and_then(clean_text)
    }
}

/// UTF-8 without control characters (C0, DEL, C1).
pub fn clean_text(raw: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(raw).ok()?;
    (!text.chars().any(char::is_control)).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_refuses_controls_and_bad_utf8() {
        let env = Env::from_os([
            (OsString::from("A"), OsString::from("fine")),
            (OsString::from("B"), OsString::from("bad\r\nline")),
            (OsString::from("C"), OsString::from_vec(vec![0xff, 0xfe])),
        ]);
        assert_eq!(env.text("A").unwrap(), Some("fine"));
        assert!(env.text("B").is_err());
        assert!(env.text("C").is_err());
        assert_eq!(env.text("D").unwrap(), None);
        assert_eq!(env.soft("B"), None);
    }
}
