//! `Authorization: Bearer T`, checked against the tokens a role accepts, in constant time.
//! Shared by the receiver (§11: the tokens a hub may present, several during a rotation) and
//! the hub (§14: one token per sender, so the match also says who is calling).

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::env::Env;

/// The token of an `Authorization: Bearer T` header (the scheme case-insensitive, white space
/// around the token ignored); `None` when there is none, another scheme, or an empty token.
pub fn presented(env: &Env) -> Option<&str> {
    let header = env.soft("HTTP_AUTHORIZATION")?;
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Which of `accepted` equals `presented`, if any. Digests of equal length are compared in
/// constant time and every token is compared: neither the tokens' contents, nor their
/// lengths, nor which one matched shows in the timing. Empty accepted tokens never match.
pub fn matching(presented: &str, accepted: &[&str]) -> Option<usize> {
    let digest = Sha256::digest(presented.as_bytes());
    let hits: Vec<Choice> = accepted
        .iter()
        .map(|t| {
            Sha256::digest(t.as_bytes()).ct_eq(&digest) & Choice::from(u8::from(!t.is_empty()))
        })
        .collect();
    // Every comparison is made before any result is looked at.
    hits.iter().position(|hit| bool::from(*hit))
}

/// A short, stable fingerprint of a token for logs: the first 8 hex digits of its SHA-256.
/// Tokens themselves never reach a log line.
pub fn fingerprint(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_case_insensitive_and_the_token_trimmed() {
        let env = |v: &str| Env::from_pairs([("HTTP_AUTHORIZATION", v)]);
        assert_eq!(presented(&env("Bearer abc")), Some("abc"));
        assert_eq!(presented(&env("  bearer    abc  ")), Some("abc"));
        assert_eq!(presented(&env("BEARER abc")), Some("abc"));
        assert_eq!(presented(&env("Basic abc")), None);
        assert_eq!(presented(&env("Bearer ")), None);
        assert_eq!(presented(&env("Bearer")), None);
        assert_eq!(presented(&Env::default()), None);
    }

    #[test]
    fn matching_names_the_token() {
        assert_eq!(matching("b", &["a", "b", "c"]), Some(1));
        assert_eq!(matching("d", &["a", "b"]), None);
        assert_eq!(matching("", &["", "a"]), None, "an empty token never matches");
        assert_eq!(matching("ab", &["a"]), None);
    }

    #[test]
    fn fingerprints_are_short_and_stable() {
        assert_eq!(fingerprint("secret"), "2bb80d53");
        assert_eq!(fingerprint("secret").len(), 8);
    }
}
