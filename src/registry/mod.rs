//! The registry (§12): which credentials have been seen, when, and which are revoked. What the
//! receiver writes and the guard reads.
//!
//! A credential is known by its fingerprint, an HMAC of its cookie's name and value under a key
//! the operator keeps in a variable: cookie values are never stored, and a registry that leaks
//! neither reveals nor correlates them. A user's credentials are revoked as a group by a time
//! ("everything first seen before T"), so that a logout reaches credentials this host has seen
//! without anyone knowing their values.
//!
//! ```text
//! fingerprint  the HMAC key and a credential's fingerprint
//! verdict      the guard's decision over what the store says (pure)
//! revocation   a revocation waiting in the spool while the store is down
//! sqlite       the embedded store: one file, one host
//! redis        the shared store, for a federation of several web servers
//! ```

pub mod fingerprint;
pub mod redis;
pub mod revocation;
pub mod sqlite;
pub mod verdict;

use std::fmt;
use std::path::PathBuf;

use crate::credentials::NameCompare;

pub use fingerprint::{Fingerprint, Key};
pub use revocation::Revocation;

/// `FED::JUR:USER`: whose credentials a revocation ends.
pub type UserKey = String;

/// The registry's key for a user: `FED::JUR:USER`, lowercase when names compare without case.
pub fn user_key(federation: &str, jurisdiction: &str, user: &str, compare: NameCompare) -> UserKey {
    // Pushed, not `format!`: the guard makes one per credential on every request.
    let mut key = String::with_capacity(federation.len() + jurisdiction.len() + user.len() + 3);
    for part in [federation, "::", jurisdiction, ":", user] {
        key.push_str(part);
    }
    if compare == NameCompare::NoCase {
        key.make_ascii_lowercase();
    }
    key
}

/// What the store knows of one fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub first_ms: u64,
    pub last_ms: u64,
    /// This very credential was revoked (a signout removed it; an operator revoked it).
    pub revoked: bool,
}

/// One lookup's answer: per fingerprint asked, what is known; per user asked, the time before
/// which their credentials are revoked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookup {
    pub seen: Vec<Option<Seen>>,
    pub revoked_before: Vec<Option<u64>>,
}

/// A sighting to record: a credential the guard passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    pub fingerprint: Fingerprint,
    pub user: UserKey,
}

/// What an operator sees of a user (`registry show`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserReport {
    pub revoked_before: Option<u64>,
    /// (fingerprint, what is known), most recently seen first.
    pub sightings: Vec<(Fingerprint, Seen)>,
}

/// Why the store could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    pub fn new(what: impl fmt::Display) -> StoreError {
        StoreError(what.to_string())
    }
}

/// One registry, SQLite or Redis. Every time is milliseconds from the store's own clock
/// ([`Store::now_ms`]: Redis `TIME` when shared, so that every web server agrees).
pub trait Store {
    /// The store's clock.
    fn now_ms(&mut self) -> Result<u64, StoreError>;

    /// What is known of `fingerprints` and `users`, in one round trip.
    fn lookup(
        &mut self,
        fingerprints: &[Fingerprint],
        users: &[UserKey],
    ) -> Result<Lookup, StoreError>;

    /// Records sightings at `now_ms`: a new fingerprint's first and last sighting, a known
    /// one's last (only when it has aged past `refresh_ms`, so that a busy page is not a write
    /// per request). Every sighting's expiry slides to `now_ms` + the store's TTL.
    fn record(
        &mut self,
        sightings: &[Sighting],
        now_ms: u64,
        refresh_ms: u64,
    ) -> Result<(), StoreError>;

    /// Revokes every credential of `user` first seen at or before `before_ms`. Never lowers an
    /// earlier, later revocation (a late duplicate revokes nothing newer). Durable when it
    /// returns.
    fn revoke_user(&mut self, user: &str, before_ms: u64) -> Result<(), StoreError>;

    /// Revokes these credentials themselves (a signout removed them: their copies elsewhere
    /// must stop working too). Durable when it returns.
    fn revoke_fingerprints(
        &mut self,
        fingerprints: &[Sighting],
        at_ms: u64,
    ) -> Result<(), StoreError>;

    /// An operator's correction: the user's revocation time removed.
    fn unrevoke_user(&mut self, user: &str) -> Result<bool, StoreError>;

    /// An operator's correction: one credential no longer revoked.
    fn unrevoke_fingerprint(&mut self, fingerprint: &Fingerprint) -> Result<bool, StoreError>;

    /// What is known of a user.
    fn report(&mut self, user: &str) -> Result<UserReport, StoreError>;

    /// Removes what has expired (Redis expires on its own); returns how many entries went.
    fn purge(&mut self, now_ms: u64) -> Result<usize, StoreError>;
}

/// `REGISTRY`: where the store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `sqlite:/var/lib/dacs-signout/registry.db`: one file, for one host.
    Sqlite(PathBuf),
    /// `redis://host:6379/0` or `rediss://…`: shared by several web servers.
    Redis(String),
}

impl fmt::Display for Location {
    /// As `REGISTRY` writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Location::Redis(url) => f.write_str(url),
        }
    }
}

impl Location {
    pub fn parse(value: &str) -> Result<Location, String> {
        if let Some(path) = value.strip_prefix("sqlite:") {
            if !path.starts_with('/') {
                return Err(format!("{value:?}: sqlite: needs an absolute path"));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        let url = url::Url::parse(value).map_err(|e| format!("{value:?}: {e}"))?;
        match url.scheme() {
            "redis" | "rediss" if url.host().is_some() => {
                if url.password().is_some() {
                    return Err(format!(
                        "{}: the password goes in a variable (REGISTRY_PASSWORD_ENV), never in \
                         dacs.conf",
                        url.scheme()
                    ));
                }
                Ok(Location::Redis(value.to_owned()))
            }
            _ => Err(format!(
                "{value:?}: expected sqlite:/PATH, redis://HOST[:PORT][/DB] or rediss://…"
            )),
        }
    }
}

/// The registry directives of a section, interpreted by `config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub location: Location,
    /// `REGISTRY_KEY_ENV`: the variable holding the fingerprint key.
    pub key_env: String,
    /// `REGISTRY_PASSWORD_ENV`: the variable holding Redis's password (optional).
    pub password_env: Option<String>,
    /// `REGISTRY_TTL_SECS`: how long a sighting outlives its last use, and a revocation its time.
    pub ttl_secs: u64,
}

/// Opens the store `settings` name for `federation`; `env` holds the Redis password's
/// variable.
pub fn open(
    settings: &Settings,
    federation: &str,
    env: &crate::cgi::Env,
) -> Result<Box<dyn Store>, StoreError> {
    let ttl_ms = settings.ttl_secs.saturating_mul(1000);
    match &settings.location {
        Location::Sqlite(path) => Ok(Box::new(sqlite::Sqlite::open(path, ttl_ms)?)),
        Location::Redis(url) => {
            let password = settings.password_env.as_deref().and_then(|name| env.soft(name));
            Ok(Box::new(redis::Redis::open(url, password, federation, ttl_ms)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_follow_name_compare() {
        assert_eq!(user_key("EX", "J", "Bob", NameCompare::Case), "EX::J:Bob");
        assert_eq!(user_key("EX", "J", "Bob", NameCompare::NoCase), "ex::j:bob");
    }

    #[test]
    fn locations() {
        assert_eq!(
            Location::parse("sqlite:/var/lib/dacs-signout/registry.db"),
            Ok(Location::Sqlite("/var/lib/dacs-signout/registry.db".into()))
        );
        assert!(Location::parse("sqlite:relative.db").is_err());
        assert_eq!(
            Location::parse("redis://127.0.0.1:6379/0"),
            Ok(Location::Redis("redis://127.0.0.1:6379/0".into()))
        );
        assert!(Location::parse("rediss://cache.example.org/1").is_ok());
        let e = Location::parse("redis://:s3cret@127.0.0.1/0").unwrap_err();
        assert!(!e.contains("s3cret") && e.contains("REGISTRY_PASSWORD_ENV"), "{e}");
        assert!(Location::parse("postgres://h/db").is_err());
    }
}
