//! A revocation waiting in the spool: the receiver's when the store is down, the signout's
//! always (the request never talks to the store). `dacs_signout relay` applies it with its
//! original time, so a late application revokes nothing newer.

use serde_json::{Value, json};

use super::{Fingerprint, Sighting, UserKey};
use crate::spool::Record;

/// What to revoke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoke {
    /// Every credential of these users first seen at or before `before_ms`.
    Users { users: Vec<UserKey>, before_ms: u64 },
    /// These credentials themselves (a signout removed them), at `at_ms`.
    Credentials { credentials: Vec<Sighting>, at_ms: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    pub id: String,
    pub revoke: Revoke,
    /// Unix seconds (for the spool's schedule, as a signal's).
    pub created: u64,
    pub attempts: u32,
    pub next_attempt: u64,
}

impl Record for Revocation {
    fn id(&self) -> &str {
        &self.id
    }

    fn to_json(&self) -> String {
        let revoke = match &self.revoke {
            Revoke::Users { users, before_ms } => json!({"users": users, "before_ms": before_ms}),
            Revoke::Credentials { credentials, at_ms } => json!({
                "credentials": credentials
                    .iter()
                    .map(|c| json!({"fingerprint": c.fingerprint.as_str(), "user": c.user}))
                    .collect::<Vec<_>>(),
                "at_ms": at_ms,
            }),
        };
        json!({
            "kind": "revocation",
            "id": self.id,
            "revoke": revoke,
            "created": self.created,
            "attempts": self.attempts,
            "next_attempt": self.next_attempt,
        })
        .to_string()
    }

    fn from_json(bytes: &[u8]) -> Option<Revocation> {
        let v: Value = serde_json::from_slice(bytes).ok()?;
        if v["kind"] != "revocation" {
            return None;
        }
        let r = &v["revoke"];
        let revoke = if let Some(users) = r.get("users") {
            let users = users
                .as_array()?
                .iter()
                .map(|u| Some(u.as_str()?.to_owned()))
                .collect::<Option<_>>()?;
            Revoke::Users { users, before_ms: r["before_ms"].as_u64()? }
        } else {
            let credentials = r["credentials"]
                .as_array()?
                .iter()
                .map(|c| {
                    Some(Sighting {
                        fingerprint: Fingerprint::parse(c["fingerprint"].as_str()?)?,
                        user: c["user"].as_str()?.to_owned(),
                    })
                })
                .collect::<Option<_>>()?;
            Revoke::Credentials { credentials, at_ms: r["at_ms"].as_u64()? }
        };
        Some(Revocation {
            id: v["id"].as_str()?.to_owned(),
            revoke,
            created: v["created"].as_u64()?,
            attempts: u32::try_from(v["attempts"].as_u64()?).ok()?,
            next_attempt: v["next_attempt"].as_u64()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Key;

    #[test]
    fn records_round_trip() {
        let fp = Fingerprint::of(&Key::new(b"0123456789abcdef").unwrap(), b"n", b"v");
        for revoke in [
            Revoke::Users {
                users: vec!["EX::J:bob".into(), "EX::K:bob".into()],
                before_ms: 1_700_000_000_123,
            },
            Revoke::Credentials {
                credentials: vec![Sighting { fingerprint: fp, user: "EX::J:bob".into() }],
                at_ms: 5,
            },
        ] {
            let r =
                Revocation { id: "1-2".into(), revoke, created: 1, attempts: 2, next_attempt: 3 };
            assert_eq!(Revocation::from_json(r.to_json().as_bytes()), Some(r));
        }
        assert_eq!(
            Revocation::from_json(br#"{"id":"x","user_name":"u"}"#),
            None,
            "a signal is not one"
        );
    }
}
