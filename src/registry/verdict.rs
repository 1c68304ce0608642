//! The guard's decision (§13), pure: the credentials a request presents, what the store knows
//! of them, and the clock → pass (recording sightings) or refuse (expiring what is refused).

use super::{Fingerprint, Lookup, Sighting, UserKey};

/// A credential a request presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presented {
    /// The cookie's name, as received (written back byte for byte when expired).
    pub name: String,
    pub user: UserKey,
    pub fingerprint: Fingerprint,
}

/// Why a credential is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// This very credential was revoked (a signout removed it).
    Revoked,
    /// Its user signed out (here or elsewhere) after it was first seen.
    SignedOut,
    /// Unused for longer than `IDLE_TIMEOUT_SECS`.
    Idle,
}

impl Why {
    pub fn as_str(self) -> &'static str {
        match self {
            Why::Revoked => "revoked",
            Why::SignedOut => "signed-out",
            Why::Idle => "idle",
        }
    }
}

/// The guard's rules of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `IDLE_TIMEOUT_SECS`, in milliseconds.
    pub idle_ms: Option<u64>,
    /// How old a last sighting must be before it is rewritten.
    pub refresh_ms: u64,
}

impl Timing {
    /// Last-seen is rewritten when it has aged a quarter of the idle timeout, or a minute
    /// without one (§12: never on every request).
    pub fn new(idle_secs: Option<u64>) -> Timing {
        let idle_ms = idle_secs.map(|s| s.saturating_mul(1000));
        Timing { idle_ms, refresh_ms: idle_ms.map_or(60_000, |i| (i / 4).clamp(1_000, 60_000)) }
    }
}

/// What the guard does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Pass, recording these sightings.
    Pass(Vec<Sighting>),
    /// Refuse; the browser's copies of these credentials are expired (valid ones are left).
    Refuse(Vec<(String, Why)>),
}

/// Judges `presented` against the store's `lookup` (one answer per credential, and one per
/// user in `users`, which names each presented credential's user once), at `now_ms`.
pub fn judge(
    presented: &[Presented],
    users: &[UserKey],
    lookup: &Lookup,
    now_ms: u64,
    timing: Timing,
) -> Verdict {
    let mut refused = Vec::new();
    for (i, credential) in presented.iter().enumerate() {
        let seen = lookup.seen.get(i).copied().flatten();
        let user = users.iter().position(|u| *u == credential.user);
        let before = user.and_then(|u| lookup.revoked_before.get(u).copied().flatten());
        // Never seen: its first sighting is now, after any revocation there is.
        let first = seen.map_or(now_ms, |s| s.first_ms);
        let why = if seen.is_some_and(|s| s.revoked) {
            Some(Why::Revoked)
        } else if before.is_some_and(|before| before >= first) {
            Some(Why::SignedOut)
        } else if let (Some(idle), Some(seen)) = (timing.idle_ms, seen)
            && now_ms.saturating_sub(seen.last_ms) > idle
        {
            Some(Why::Idle)
        } else {
            None
        };
        if let Some(why) = why {
            refused.push((credential.name.clone(), why));
        }
    }
    if !refused.is_empty() {
        return Verdict::Refuse(refused);
    }
    let sightings = presented
        .iter()
        .zip(&lookup.seen)
        .filter(|(_, seen)| {
            seen.is_none_or(|s| now_ms.saturating_sub(s.last_ms) >= timing.refresh_ms)
        })
        .map(|(c, _)| Sighting { fingerprint: c.fingerprint.clone(), user: c.user.clone() })
        .collect();
    Verdict::Pass(sightings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Key, Seen};

    fn credential(name: &str, user: &str) -> Presented {
        let key = Key::new(b"0123456789abcdef").unwrap();
        Presented {
            name: name.into(),
            user: user.into(),
            fingerprint: Fingerprint::of(&key, name.as_bytes(), b"v"),
        }
    }

    fn seen(first_ms: u64, last_ms: u64, revoked: bool) -> Option<Seen> {
        Some(Seen { first_ms, last_ms, revoked })
    }

    const T: Timing = Timing { idle_ms: None, refresh_ms: 60_000 };

    #[test]
    fn a_credential_seen_before_its_users_signout_is_refused() {
        let jar = [credential("DACS:EX::J:bob", "EX::J:bob")];
        let users = ["EX::J:bob".to_owned()];
        let lookup = |seen, before| Lookup { seen: vec![seen], revoked_before: vec![before] };
        // Seen at 1000, signed out at 2000: refused. At exactly 1000: refused too.
        for before in [2_000, 1_000] {
            let v = judge(&jar, &users, &lookup(seen(1_000, 1_500, false), Some(before)), 3_000, T);
            assert_eq!(v, Verdict::Refuse(vec![("DACS:EX::J:bob".into(), Why::SignedOut)]));
        }
        // A new sign-in after the signout (first seen later): passes.
        let v = judge(&jar, &users, &lookup(seen(2_500, 2_500, false), Some(2_000)), 3_000, T);
        assert!(matches!(v, Verdict::Pass(_)));
        // Never seen before (the admitted gap): passes, and is recorded.
        let v = judge(&jar, &users, &lookup(None, Some(2_000)), 3_000, T);
        assert_eq!(
            v,
            Verdict::Pass(vec![Sighting {
                fingerprint: jar[0].fingerprint.clone(),
                user: "EX::J:bob".into()
            }])
        );
        // Revoked itself: refused whatever the times.
        let v = judge(&jar, &users, &lookup(seen(2_500, 2_500, true), None), 3_000, T);
        assert_eq!(v, Verdict::Refuse(vec![("DACS:EX::J:bob".into(), Why::Revoked)]));
    }

    #[test]
    fn only_the_refused_credentials_are_expired() {
        let jar =
            [credential("DACS:EX::J:bob", "EX::J:bob"), credential("DACS:EX::K:amy", "EX::K:amy")];
        let users = ["EX::J:bob".to_owned(), "EX::K:amy".to_owned()];
        let lookup = Lookup {
            seen: vec![seen(1, 1, false), seen(1, 1, false)],
            revoked_before: vec![Some(5), None],
        };
        let v = judge(&jar, &users, &lookup, 10, T);
        assert_eq!(v, Verdict::Refuse(vec![("DACS:EX::J:bob".into(), Why::SignedOut)]));
    }

    #[test]
    fn idle_credentials_and_the_refresh_of_last_seen() {
        let timing = Timing::new(Some(600));
        assert_eq!(timing.refresh_ms, 60_000);
        assert_eq!(Timing::new(Some(8)).refresh_ms, 2_000);
        assert_eq!(Timing::new(None), T);
        let jar = [credential("DACS:EX::J:bob", "EX::J:bob")];
        let users = ["EX::J:bob".to_owned()];
        let at = |last| Lookup { seen: vec![seen(0, last, false)], revoked_before: vec![None] };
        let now = 1_000_000;
        assert_eq!(
            judge(&jar, &users, &at(now - 600_001), now, timing),
            Verdict::Refuse(vec![("DACS:EX::J:bob".into(), Why::Idle)])
        );
        // In use: passes; its last sighting is rewritten only once it has aged.
        assert_eq!(judge(&jar, &users, &at(now - 30_000), now, timing), Verdict::Pass(vec![]));
        assert!(
            matches!(judge(&jar, &users, &at(now - 61_000), now, timing), Verdict::Pass(s) if s.len() == 1)
        );
        // Without an idle timeout nothing is idle.
        assert!(matches!(judge(&jar, &users, &at(0), now, T), Verdict::Pass(_)));
        // Idle is *longer* than the timeout: exactly as long still passes.
        assert!(matches!(judge(&jar, &users, &at(now - 600_000), now, timing), Verdict::Pass(_)));
    }

    /// The reasons' names are what the guard's page and log say.
    #[test]
    fn reasons_have_stable_names() {
        let names = [Why::Revoked, Why::SignedOut, Why::Idle].map(Why::as_str);
        assert_eq!(names, ["revoked", "signed-out", "idle"]);
    }
}
