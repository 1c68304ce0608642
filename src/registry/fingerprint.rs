//! A credential's fingerprint: HMAC-SHA-256 of its cookie's name and value, under the
//! operator's key. What the registry stores instead of the cookie.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The fingerprint key, from the variable `REGISTRY_KEY_ENV` names. Never logged. Held as the
/// HMAC's keyed state (the key's inner and outer pads already hashed), so that each
/// fingerprint hashes only its own bytes: the guard takes one per credential per request.
#[derive(Clone)]
pub struct Key(Hmac<Sha256>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key([redacted])")
    }
}

/// The shortest key accepted (bytes): a guessable key would let anyone holding a registry
/// test candidate cookies against it.
pub const MIN_KEY: usize = 16;

impl Key {
    pub fn new(bytes: &[u8]) -> Option<Key> {
        (bytes.len() >= MIN_KEY).then(|| {
            Key(<Hmac<Sha256> as KeyInit>::new_from_slice(bytes)
                .expect("HMAC takes a key of any length"))
        })
    }
}

/// 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The fingerprint of the cookie `name=value`. The name is part of it: the same value
    /// under two names (two jurisdictions) is two credentials.
    ///
    /// ```
    /// use dacs_signout::registry::{Fingerprint, Key};
    /// let key = Key::new(b"0123456789abcdef0123456789abcdef").unwrap();
    /// let a = Fingerprint::of(&key, b"DACS:EX::J:bob", b"secret");
    /// assert_eq!(a.as_str().len(), 64);
    /// assert_ne!(a, Fingerprint::of(&key, b"DACS:EX::K:bob", b"secret"));
    /// assert_eq!(a, Fingerprint::of(&key, b"DACS:EX::J:bob", b"secret"));
    /// ```
    pub fn of(key: &Key, name: &[u8], value: &[u8]) -> Fingerprint {
        let mut mac = key.0.clone();
        mac.update(&(name.len() as u64).to_be_bytes());
        mac.update(name);
        mac.update(value);
        let digest = mac.finalize().into_bytes();
        let mut hex = String::with_capacity(64);
        for byte in digest {
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
        }
        Fingerprint(hex)
    }

    /// A fingerprint as an operator or a record writes it: 64 hex digits.
    pub fn parse(text: &str) -> Option<Fingerprint> {
        (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Fingerprint(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_enough_and_never_printed() {
        assert!(Key::new(b"short").is_none());
        let key = Key::new(b"0123456789abcdef").unwrap();
        assert_eq!(format!("{key:?}"), "Key([redacted])");
    }

    /// The registry's contents depend on these bytes: HMAC-SHA-256 under the key of the
    /// name's length (8 bytes, big-endian), the name and the value (Python's `hmac` agrees).
    #[test]
    fn a_fingerprint_is_the_hmac_of_the_length_the_name_and_the_value() {
        let key = Key::new(b"0123456789abcdef").unwrap();
        assert_eq!(
            Fingerprint::of(&key, b"DACS:EX::J:bob", b"secret").as_str(),
            "4fea2b75fa90b7044cee3469271bbe125ce334cf380b34d0e9f1a77a5cb45a71"
        );
    }

    #[test]
    fn name_and_value_cannot_be_shifted_into_each_other() {
        let key = Key::new(b"0123456789abcdef").unwrap();
        assert_ne!(Fingerprint::of(&key, b"ab", b"c"), Fingerprint::of(&key, b"a", b"bc"));
        let other = Key::new(b"fedcba9876543210").unwrap();
        assert_ne!(Fingerprint::of(&key, b"a", b"b"), Fingerprint::of(&other, b"a", b"b"));
    }

    #[test]
    fn parse() {
        let fp = Fingerprint::of(&Key::new(b"0123456789abcdef").unwrap(), b"n", b"v");
        assert_eq!(Fingerprint::parse(&fp.as_str().to_ascii_uppercase()), Some(fp));
        assert_eq!(Fingerprint::parse("abc"), None);
        assert_eq!(Fingerprint::parse(&"g".repeat(64)), None);
    }
}
