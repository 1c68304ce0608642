//! The expiring `Set-Cookie` value, in the four `COOKIE_SYNTAX` forms (§5).

use std::str::FromStr;

use crate::error::Error;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CookieSyntax {
    #[default]
    Rfc6265,
    Netscape,
    ExtNetscape,
    Rfc2109,
}

impl CookieSyntax {
    pub fn as_str(self) -> &'static str {
        match self {
            CookieSyntax::Rfc6265 => "COOKIE_RFC6265",
            CookieSyntax::Netscape => "COOKIE_NETSCAPE",
            CookieSyntax::ExtNetscape => "COOKIE_EXT_NETSCAPE",
            CookieSyntax::Rfc2109 => "COOKIE_RFC2109",
        }
    }
}

impl FromStr for CookieSyntax {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        [CookieSyntax::Rfc6265, CookieSyntax::Netscape, CookieSyntax::ExtNetscape, CookieSyntax::Rfc2109]
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                Error::bad_request(
                    "COOKIE_SYNTAX must be COOKIE_RFC6265, COOKIE_NETSCAPE, COOKIE_EXT_NETSCAPE or COOKIE_RFC2109",
                )
            })
    }
}

/// The attributes every expiring cookie carries, from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieAttributes {
    pub path: String,
    pub domain: Option<String>,
    pub secure: bool,
}

/// The value of a `Set-Cookie` header that expires `name`. The date is fixed in the past,
/// so the output is byte-stable; the name is written exactly as received.
///
/// ```
/// use dacs_signout::credentials::{expiry::set_cookie, CookieAttributes, CookieSyntax};
/// let attrs = CookieAttributes { path: "/".into(), domain: Some("ex.org".into()), secure: true };
/// assert_eq!(
///     set_cookie("DACS:EX::J:bob", &attrs, CookieSyntax::Rfc6265),
///     "DACS:EX::J:bob=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Path=/; Domain=ex.org; Secure; HttpOnly",
/// );
/// assert_eq!(
///     set_cookie("DACS:EX::J:bob", &attrs, CookieSyntax::Netscape),
///     "DACS:EX::J:bob=; expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/; domain=ex.org; secure",
/// );
/// assert_eq!(
///     set_cookie("DACS:EX::J:bob", &attrs, CookieSyntax::ExtNetscape),
///     "DACS:EX::J:bob=; expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/; domain=ex.org; secure; HttpOnly",
/// );
/// assert_eq!(
///     set_cookie("DACS:EX::J:bob", &attrs, CookieSyntax::Rfc2109),
///     "DACS:EX::J:bob=; Max-Age=0; Version=1; Path=/; Domain=ex.org; Secure",
/// );
/// ```
pub fn set_cookie(name: &str, attrs: &CookieAttributes, syntax: CookieSyntax) -> String {
    let (lead, [path, domain, secure]) = match syntax {
        CookieSyntax::Rfc6265 => {
            ("; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:01 GMT", ["Path", "Domain", "Secure"])
        }
        CookieSyntax::Netscape | CookieSyntax::ExtNetscape => {
            ("; expires=Thu, 01-Jan-1970 00:00:01 GMT", ["path", "domain", "secure"])
        }
        CookieSyntax::Rfc2109 => ("; Max-Age=0; Version=1", ["Path", "Domain", "Secure"]),
    };
    let mut out = String::with_capacity(name.len() + 112);
    for part in [name, "=", lead, "; ", path, "=", &attrs.path] {
        out.push_str(part);
    }
    if let Some(value) = &attrs.domain {
        for part in ["; ", domain, "=", value] {
            out.push_str(part);
        }
    }
    if attrs.secure {
        out.push_str("; ");
        out.push_str(secure);
    }
    if matches!(syntax, CookieSyntax::Rfc6265 | CookieSyntax::ExtNetscape) {
        out.push_str("; HttpOnly");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_names_are_case_insensitive() {
        assert_eq!("cookie_netscape".parse::<CookieSyntax>().unwrap(), CookieSyntax::Netscape);
        assert!("COOKIE_RFC2965".parse::<CookieSyntax>().is_err());
    }

    #[test]
    fn host_only_and_insecure() {
        let attrs = CookieAttributes { path: "/app".into(), domain: None, secure: false };
        assert_eq!(
            set_cookie("DACS:D::D:x", &attrs, CookieSyntax::Rfc6265),
            "DACS:D::D:x=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Path=/app; HttpOnly"
        );
    }
}
