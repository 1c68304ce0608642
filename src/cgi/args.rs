//! `application/x-www-form-urlencoded` arguments, as DACS reads them: duplicates refused,
//! values decoded strictly (UTF-8), unknown names ignored by the caller.

use std::borrow::Cow;

use percent_encoding::percent_decode;

use crate::error::Error;

/// Decoded `name=value` pairs in the order received.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Arguments {
    pairs: Vec<(String, String)>,
}

impl Arguments {
    /// Adds every pair of `input` (a query string or a form body). A name seen before, here
    /// or in an earlier input, is a 400: DACS does not allow duplicate CGI arguments.
    pub fn parse_into(&mut self, input: &[u8]) -> Result<(), Error> {
        for (name, value) in pairs(input)? {
            if self.get(&name).is_some() {
                return Err(Error::bad_request(duplicate(&name)));
            }
            self.pairs.push((name, value));
        }
        Ok(())
    }

    pub fn parse(input: &[u8]) -> Result<Arguments, Error> {
        let mut args = Arguments::default();
        args.parse_into(input)?;
        Ok(args)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Every `name=value` pair of `input`, decoded, in order, repeats included.
pub fn pairs(input: &[u8]) -> Result<Vec<(String, String)>, Error> {
    let mut out = Vec::new();
    for segment in input.split(|&b| b == b'&') {
        if segment.is_empty() {
            continue;
        }
        let (name, value) = match segment.iter().position(|&b| b == b'=') {
            Some(eq) => (&segment[..eq], &segment[eq + 1..]),
            None => (segment, &b""[..]),
        };
        out.push((decode(name)?, decode(value)?));
    }
    Ok(out)
}

/// `+` is a space, then percent-decoding; the result must be UTF-8.
fn decode(raw: &[u8]) -> Result<String, Error> {
    let plus_free: Cow<[u8]> = if raw.contains(&b'+') {
        Cow::Owned(raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect())
    } else {
        Cow::Borrowed(raw)
    };
    let bytes: Vec<u8> = percent_decode(&plus_free).collect();
    String::from_utf8(bytes)
        .map_err(|_| Error::bad_request("an argument is not valid UTF-8 after decoding"))
}

/// The arguments a signout reads: the only names an error message repeats. Any other name is
/// the sender's text, and an answer must not reflect it.
const KNOWN: &[&str] = &[
    "DACS_USERNAME",
    "DACS_JURISDICTION",
    "DACS_SIGNOUT_HANDLER",
    "COOKIE_SYNTAX",
    "FORMAT",
    "DACS_VERSION",
    "client_id",
    "_method",
];

fn duplicate(name: &str) -> String {
    match KNOWN.iter().find(|k| **k == name) {
        Some(known) => format!("duplicate argument {known}: each argument may be given once"),
        None => "a duplicate argument: each argument may be given once".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent() {
        let args = Arguments::parse(b"DACS_USERNAME=bob+smith%40ex.org&FORMAT=json&flag").unwrap();
        assert_eq!(args.get("DACS_USERNAME"), Some("bob smith@ex.org"));
        assert_eq!(args.get("FORMAT"), Some("json"));
        assert_eq!(args.get("flag"), Some(""));
        assert_eq!(args.get("missing"), None);
    }

    #[test]
    fn refuses_duplicates_across_inputs() {
        let mut args = Arguments::parse(b"FORMAT=XML").unwrap();
        assert!(args.parse_into(b"FORMAT=JSON").is_err());
        assert!(Arguments::parse(b"a=1&a=1").is_err());
        // An encoded name is the same name.
        assert!(Arguments::parse(b"FORMAT=1&FORM%41T=2").is_err());
        // Only a known name is repeated back.
        let e = Arguments::parse(b"FORMAT=1&FORMAT=2").unwrap_err();
        assert_eq!(e.message, "duplicate argument FORMAT: each argument may be given once");
        let e = Arguments::parse(b"%3Cscript%3E=1&%3Cscript%3E=2").unwrap_err();
        assert!(!e.message.contains("script"), "{}", e.message);
    }

    #[test]
    fn refuses_invalid_utf8() {
        assert!(Arguments::parse(b"DACS_USERNAME=%ff").is_err());
        assert!(Arguments::parse(b"%c3=1").is_err());
    }

    #[test]
    fn skips_empty_segments() {
        let args = Arguments::parse(b"&&FORMAT=XML&").unwrap();
        assert_eq!(args.get("FORMAT"), Some("XML"));
    }
}
