//! DACS identities (`FEDERATION::JURISDICTION:USERNAME`) and the cookie names built on them.

use std::fmt;

use super::NameCompare;

/// A DACS identity, borrowed from the text it was parsed from.
///
/// ```
/// use dacs_signout::credentials::Identity;
/// let id = Identity::parse("DEBIANORG::DEBIAN:enrico").unwrap();
/// assert_eq!((id.federation, id.jurisdiction, id.username), ("DEBIANORG", "DEBIAN", "enrico"));
/// assert_eq!(id.to_string(), "DEBIANORG::DEBIAN:enrico");
/// assert!(Identity::parse("DEBIANORG:DEBIAN:enrico").is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Identity<'a> {
    pub federation: &'a str,
    pub jurisdiction: &'a str,
    pub username: &'a str,
}

impl<'a> Identity<'a> {
    pub fn parse(text: &'a str) -> Option<Identity<'a>> {
        // `split_once("::")`, without setting up a substring searcher for each cookie name.
        let sep = text.as_bytes().windows(2).position(|w| w == b"::")?;
        let (federation, rest) = (&text[..sep], &text[sep + 2..]);
        let (jurisdiction, username) = rest.split_once(':')?;
        let id = Identity { federation, jurisdiction, username };
        (is_name(federation) && is_name(jurisdiction) && is_username(username)).then_some(id)
    }
}

impl Identity<'_> {
    /// Whether `remote_user`, the identity the web server authenticated (`REMOTE_USER`), names
    /// this credential: as `FED::JUR:USER` (what mod_auth_dacs sets), `JUR:USER`, or a bare
    /// `USER` for a credential of `own_jurisdiction` only (two jurisdictions' `bobo` are two
    /// people), each part under `compare`.
    ///
    /// ```
    /// use dacs_signout::credentials::{Identity, NameCompare::{Case, NoCase}};
    /// let id = Identity::parse("EX::J1:bob").unwrap();
    /// assert!(id.is_named_by("EX::J1:bob", "J1", Case));
    /// assert!(id.is_named_by("J1:bob", "J2", Case));
    /// assert!(id.is_named_by("bob", "J1", Case));
    /// assert!(!id.is_named_by("bob", "J2", Case), "another jurisdiction's bob");
    /// assert!(!id.is_named_by("EX::J1:bo", "J1", Case));
    /// assert!(id.is_named_by("ex::j1:BOB", "J1", NoCase) && !id.is_named_by("ex::j1:BOB", "J1", Case));
    /// ```
    pub fn is_named_by(
        &self,
        remote_user: &str,
        own_jurisdiction: &str,
        compare: NameCompare,
    ) -> bool {
        let full = Identity::parse(remote_user).is_some_and(|named| {
            compare.eq(named.federation, self.federation)
                && compare.eq(named.jurisdiction, self.jurisdiction)
                && compare.eq(named.username, self.username)
        });
        // `JUR:USER`: a jurisdiction name holds no `:`, so the first `:` ends it.
        let qualified = remote_user.split_once(':').is_some_and(|(jurisdiction, username)| {
            compare.eq(jurisdiction, self.jurisdiction) && compare.eq(username, self.username)
        });
        let bare = compare.eq(own_jurisdiction, self.jurisdiction)
            && compare.eq(remote_user, self.username);
        full || qualified || bare
    }
}

impl fmt::Display for Identity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{}:{}", self.federation, self.jurisdiction, self.username)
    }
}

/// What a cookie name means to DACS.
///
/// ```
/// use dacs_signout::credentials::{CookieName, Identity};
/// assert_eq!(
///     CookieName::parse("DACS:EX::FEDROOT:bob@ex.org"),
///     Some(CookieName::Credential(Identity::parse("EX::FEDROOT:bob@ex.org").unwrap())),
/// );
/// assert_eq!(CookieName::parse("DACS:EX:::SELECTED"), Some(CookieName::Selection { federation: "EX" }));
/// assert_eq!(CookieName::parse("sessionid"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieName<'a> {
    Credential(Identity<'a>),
    /// `DACS:<FED>:::SELECTED`: which credentials the user picked; not a credential.
    Selection {
        federation: &'a str,
    },
}

impl<'a> CookieName<'a> {
    pub fn parse(name: &'a str) -> Option<CookieName<'a>> {
        let rest = name.strip_prefix("DACS:")?;
        // `FED:::SELECTED` with a plain federation name; `EX::J:bob:::SELECTED` is bob's
        // credential whose username ends that way.
        match rest.strip_suffix(":::SELECTED") {
            Some(federation) if is_name(federation) => Some(CookieName::Selection { federation }),
            _ => Identity::parse(rest).map(CookieName::Credential),
        }
    }

    pub fn federation(&self) -> &'a str {
        match self {
            CookieName::Credential(id) => id.federation,
            CookieName::Selection { federation } => federation,
        }
    }
}

/// A federation or jurisdiction name: `[A-Za-z0-9][A-Za-z0-9_-]*`.
pub fn is_name(text: &str) -> bool {
    let mut bytes = text.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A username: a non-empty run of anything but `=`, `;`, `,`, white space and controls (and
/// U+FFFE/U+FFFF, which no XML document can carry).
pub fn is_username(text: &str) -> bool {
    if text.is_ascii() {
        // The same test on bytes: ASCII white space and controls are all <= 0x20, and DEL.
        return !text.is_empty()
            && !text
                .bytes()
                .any(|b| b <= b' ' || b == 0x7f || b == b'=' || b == b';' || b == b',');
    }
    !text.chars().any(|c| {
        matches!(c, '=' | ';' | ',' | '\u{fffe}' | '\u{ffff}')
            || c.is_whitespace()
            || c.is_control()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_keep_their_punctuation() {
        for name in ["enrico", "bob@ex.org", "a.b-c+d", "x:y", "ünï"] {
            let text = format!("F::J:{name}");
            assert_eq!(Identity::parse(&text).unwrap().username, name);
            assert_eq!(Identity::parse(&text).unwrap().to_string(), text);
        }
    }

    #[test]
    fn ascii_usernames_are_judged_as_chars_are() {
        for b in 0..=0x7fu8 {
            let c = char::from(b);
            let by_chars =
                !(c == '=' || c == ';' || c == ',' || c.is_whitespace() || c.is_control());
            assert_eq!(is_username(&format!("a{c}b")), by_chars, "{b:#04x}");
        }
        assert!(
            !is_username("")
                && is_username("ünï")
                && !is_username("a\u{85}b")
                && !is_username("a\u{3000}b")
        );
    }

    #[test]
    fn refuses_malformed_identities() {
        for text in [
            "F::J:",
            "F::J",
            "::J:u",
            "F:::u",
            "-F::J:u",
            "F::J_:u b",
            "F::J:u=v",
            "F.x::J:u",
            "F::J:a;b",
            "F::J:\u{fffe}",
        ] {
            assert_eq!(Identity::parse(text), None, "{text}");
        }
    }

    #[test]
    fn selection_cookie_is_not_a_credential() {
        assert_eq!(
            CookieName::parse("DACS:F:::SELECTED"),
            Some(CookieName::Selection { federation: "F" })
        );
        assert_eq!(CookieName::parse("DACS:F:::OTHER"), None);
        assert_eq!(CookieName::parse("DACS::::SELECTED"), None);
        // A username may end in `:::SELECTED`: still a credential.
        let odd = CookieName::parse("DACS:F::J:bob:::SELECTED");
        assert_eq!(
            odd,
            Some(CookieName::Credential(Identity::parse("F::J:bob:::SELECTED").unwrap()))
        );
    }
}
