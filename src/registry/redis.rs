//! The shared registry: Redis, for a federation whose jurisdictions live on several web
//! servers. One clock for all (`TIME`), keys named after the federation (so federations can
//! share a database, each behind its own ACL), expiry by Redis itself. Every call is bounded
//! by short timeouts: a guard never hangs on a dead or stalled Redis, and reconnects by
//! opening a new store.

use std::time::Duration;

use redis::{Commands, Connection, IntoConnectionInfo, Script};

use super::{Fingerprint, Lookup, Seen, Sighting, Store, StoreError, UserKey, UserReport};

/// Connecting, and each command's reply.
const TIMEOUT: Duration = Duration::from_millis(500);

/// A sighting: the first one writes the hash; a later one only the last time, and only once it
/// has aged. The expiry slides with each write.
const RECORD: &str = r"
local last = redis.call('HGET', KEYS[1], 'last')
if not last then
  redis.call('HSET', KEYS[1], 'user', ARGV[1], 'first', ARGV[2], 'last', ARGV[2], 'revoked', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('SADD', KEYS[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
elseif tonumber(ARGV[2]) - tonumber(last) >= tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[1], 'last', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return 0
";

/// A user's revocation time: never lowered; its expiry never shortened.
const REVOKE_USER: &str = r"
local current = redis.call('GET', KEYS[1])
if not current or tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// A credential revoked itself.
const REVOKE_CREDENTIAL: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'user', ARGV[1], 'first', ARGV[2], 'last', ARGV[2])
end
redis.call('HSET', KEYS[1], 'revoked', 1)
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
redis.call('SADD', KEYS[2], ARGV[4])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return 0
";

pub struct Redis {
    db: Connection,
    prefix: String,
    ttl_ms: u64,
}

fn e(error: impl std::fmt::Display) -> StoreError {
    StoreError::new(format!("redis: {error}"))
}

impl Redis {
    /// Connects to `url` (`redis://` or `rediss://`), with `password` from its variable. Keys
    /// start with `dacs:FEDERATION:`.
    pub fn open(
        url: &str,
        password: Option<&str>,
        federation: &str,
        ttl_ms: u64,
    ) -> Result<Redis, StoreError> {
        // rustls needs a crypto provider for `rediss://`; ureq's `ring` is the one linked in.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut info = url.into_connection_info().map_err(e)?;
        let mut settings = info.redis_settings().clone().set_skip_set_lib_name();
        if let Some(password) = password.filter(|p| !p.is_empty()) {
            settings = settings.set_password(password);
        }
        info = info.set_redis_settings(settings);
        let client = redis::Client::open(info).map_err(e)?;
        let db = client.get_connection_with_timeout(TIMEOUT).map_err(e)?;
        // The connection's own timeouts are cleared once it is made: set them for every call.
        db.set_read_timeout(Some(TIMEOUT)).map_err(e)?;
        db.set_write_timeout(Some(TIMEOUT)).map_err(e)?;
        Ok(Redis { db, prefix: format!("dacs:{federation}:"), ttl_ms })
    }

    fn fp_key(&self, fingerprint: &Fingerprint) -> String {
        format!("{}fp:{fingerprint}", self.prefix)
    }

    fn user_key(&self, user: &str) -> String {
        format!("{}user:{user}", self.prefix)
    }

    fn index_key(&self, user: &str) -> String {
        format!("{}fps:{user}", self.prefix)
    }
}

fn seen(fields: (Option<u64>, Option<u64>, Option<u8>)) -> Option<Seen> {
    let (first, last, revoked) = fields;
    Some(Seen { first_ms: first?, last_ms: last?, revoked: revoked == Some(1) })
}

impl Store for Redis {
    fn now_ms(&mut self) -> Result<u64, StoreError> {
        let (secs, micros): (u64, u64) = redis::cmd("TIME").query(&mut self.db).map_err(e)?;
        Ok(secs * 1000 + micros / 1000)
    }

    fn lookup(
        &mut self,
        fingerprints: &[Fingerprint],
        users: &[UserKey],
    ) -> Result<Lookup, StoreError> {
        let mut pipe = redis::pipe();
        for fp in fingerprints {
            pipe.cmd("HMGET").arg(self.fp_key(fp)).arg("first").arg("last").arg("revoked");
        }
        for user in users {
            pipe.cmd("GET").arg(self.user_key(user));
        }
        if fingerprints.is_empty() && users.is_empty() {
            return Ok(Lookup::default());
        }
        let replies: Vec<redis::Value> = pipe.query(&mut self.db).map_err(e)?;
        let mut replies = replies.into_iter();
        let mut lookup = Lookup::default();
        for _ in fingerprints {
            let reply = replies.next().ok_or_else(|| e("a short pipeline reply"))?;
            let fields: (Option<u64>, Option<u64>, Option<u8>) =
                redis::from_redis_value(reply).map_err(e)?;
            lookup.seen.push(seen(fields));
        }
        for _ in users {
            let reply = replies.next().ok_or_else(|| e("a short pipeline reply"))?;
            lookup.revoked_before.push(redis::from_redis_value(reply).map_err(e)?);
        }
        Ok(lookup)
    }

    fn record(
        &mut self,
        sightings: &[Sighting],
        now_ms: u64,
        refresh_ms: u64,
    ) -> Result<(), StoreError> {
        let script = Script::new(RECORD);
        for s in sightings {
            let _: i64 = script
                .key(self.fp_key(&s.fingerprint))
                .key(self.index_key(&s.user))
                .arg(&s.user)
                .arg(now_ms)
                .arg(self.ttl_ms)
                .arg(s.fingerprint.as_str())
                .arg(refresh_ms)
                .invoke(&mut self.db)
                .map_err(e)?;
        }
        Ok(())
    }

    fn revoke_user(&mut self, user: &str, before_ms: u64) -> Result<(), StoreError> {
        let now = self.now_ms()?;
        let live_ms = before_ms.saturating_add(self.ttl_ms).saturating_sub(now).max(1);
        let _: i64 = Script::new(REVOKE_USER)
            .key(self.user_key(user))
            .arg(before_ms)
            .arg(live_ms)
            .invoke(&mut self.db)
            .map_err(e)?;
        Ok(())
    }

    fn revoke_fingerprints(
        &mut self,
        credentials: &[Sighting],
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let now = self.now_ms()?;
        let live_ms = at_ms.saturating_add(self.ttl_ms).saturating_sub(now).max(1);
        let script = Script::new(REVOKE_CREDENTIAL);
        for c in credentials {
            let _: i64 = script
                .key(self.fp_key(&c.fingerprint))
                .key(self.index_key(&c.user))
                .arg(&c.user)
                .arg(at_ms)
                .arg(live_ms)
                .arg(c.fingerprint.as_str())
                .invoke(&mut self.db)
                .map_err(e)?;
        }
        Ok(())
    }

    fn unrevoke_user(&mut self, user: &str) -> Result<bool, StoreError> {
        let removed: i64 = self.db.del(self.user_key(user)).map_err(e)?;
        Ok(removed > 0)
    }

    fn unrevoke_fingerprint(&mut self, fingerprint: &Fingerprint) -> Result<bool, StoreError> {
        let key = self.fp_key(fingerprint);
        let was: Option<u8> = self.db.hget(&key, "revoked").map_err(e)?;
        if was != Some(1) {
            return Ok(false);
        }
        let _: i64 = self.db.hset(&key, "revoked", 0).map_err(e)?;
        Ok(true)
    }

    fn report(&mut self, user: &str) -> Result<UserReport, StoreError> {
        let revoked_before: Option<u64> = self.db.get(self.user_key(user)).map_err(e)?;
        let members: Vec<String> = self.db.smembers(self.index_key(user)).map_err(e)?;
        let fingerprints: Vec<Fingerprint> =
            members.iter().filter_map(|m| Fingerprint::parse(m)).collect();
        let lookup = self.lookup(&fingerprints, &[])?;
        let mut sightings: Vec<(Fingerprint, Seen)> = fingerprints
            .into_iter()
            .zip(lookup.seen)
            .filter_map(|(fp, seen)| Some((fp, seen?)))
            .collect();
        sightings.sort_by_key(|(_, seen)| std::cmp::Reverse(seen.last_ms));
        Ok(UserReport { revoked_before, sightings })
    }

    /// Redis expires entries by itself; what a purge removes here are the index entries of a
    /// user's expired sightings.
    fn purge(&mut self, _now_ms: u64) -> Result<usize, StoreError> {
        let pattern = format!("{}fps:*", self.prefix);
        let indexes: Vec<String> = self
            .db
            .scan_match::<_, String>(&pattern)
            .map_err(e)?
            .collect::<Result<_, _>>()
            .map_err(e)?;
        let mut purged = 0;
        for index in indexes {
            let members: Vec<String> = self.db.smembers(&index).map_err(e)?;
            for member in members {
                let exists: bool =
                    self.db.exists(format!("{}fp:{member}", self.prefix)).map_err(e)?;
                if !exists {
                    let removed: i64 = self.db.srem(&index, &member).map_err(e)?;
                    purged += usize::try_from(removed).unwrap_or(0);
                }
            }
        }
        Ok(purged)
    }
}
