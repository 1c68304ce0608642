//! A CGI response and the only code that turns one into bytes.

use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: &'static str,
    /// In output order. Repeats are normal (`Set-Cookie`), and every one is written.
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A response with the headers every answer carries (§7).
    pub fn new(status: u16, reason: &'static str) -> Response {
        Response {
            status,
            reason,
            headers: vec![
                ("Cache-Control", "no-store".to_owned()),
                ("X-Content-Type-Options", "nosniff".to_owned()),
            ],
            body: Vec::new(),
        }
    }

    pub fn header(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The CGI header block and, unless `head_only`, the body. A header value holding a control
    /// character (CR and LF above all) is refused here, whatever put it there: this is the last
    /// line of defence against header injection.
    pub fn to_bytes(&self, head_only: bool) -> Result<Vec<u8>, Error> {
        // One allocation of the exact size: a signout's header block is mostly Set-Cookie lines.
        let head: usize =
            self.headers.iter().map(|(name, value)| name.len() + value.len() + 4).sum();
        let mut out = Vec::with_capacity(32 + self.reason.len() + head + 2 + self.body.len());
        out.extend_from_slice(format!("Status: {} {}\r\n", self.status, self.reason).as_bytes());
        for (name, value) in &self.headers {
            if has_control(value) {
                return Err(Error::internal(
                    "the response could not be written",
                    format!("control character in the {name} header"),
                ));
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if !head_only {
            out.extend_from_slice(&self.body);
        }
        Ok(out)
    }
}

/// The same test as `value.chars().any(char::is_control)` (C0, DEL and C1), on bytes: C1
/// controls are U+0080..=U+009F, encoded in UTF-8 as `C2 80` to `C2 9F`.
/// The first pass has no early exit, so it is vectorised; the exact test runs only on a value
/// that holds a C0 byte, DEL or a `C2` lead byte.
fn has_control(value: &str) -> bool {
    let bytes = value.as_bytes();
    let suspect =
        bytes.iter().fold(false, |seen, &b| seen | (b < 0x20) | (b == 0x7f) | (b == 0xc2));
    suspect
        && (bytes.iter().any(|&b| b < 0x20 || b == 0x7f)
            || bytes.windows(2).any(|w| w[0] == 0xc2 && (0x80..=0x9f).contains(&w[1])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_every_header_in_order() {
        let mut r = Response::new(200, "OK");
        r.header("Set-Cookie", "a=").header("Set-Cookie", "b=");
        r.body = b"hi".to_vec();
        let text = String::from_utf8(r.to_bytes(false).unwrap()).unwrap();
        assert_eq!(
            text,
            "Status: 200 OK\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
             Set-Cookie: a=\r\nSet-Cookie: b=\r\n\r\nhi"
        );
        assert!(!String::from_utf8(r.to_bytes(true).unwrap()).unwrap().ends_with("hi"));
    }

    #[test]
    fn control_test_matches_char_is_control() {
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let text = format!("a{c}b");
            assert_eq!(has_control(&text), c.is_control(), "U+{:04X}", c as u32);
        }
    }

    #[test]
    fn refuses_crlf_in_a_header() {
        let mut r = Response::new(302, "Found");
        r.header("Location", "https://a.example/\r\nSet-Cookie: x=y");
        assert_eq!(r.to_bytes(false).unwrap_err().status().0, 500);
    }
}
