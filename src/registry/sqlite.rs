//! The embedded registry: one SQLite file in WAL mode, for the guards and the receiver of one
//! host. Opened as the spool is (a trusted directory of this user's, the file this user's, no
//! link followed): whoever could swap the file could un-revoke everyone.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, params_from_iter};

use super::{Fingerprint, Lookup, Seen, Sighting, Store, StoreError, UserKey, UserReport};
use crate::safe_fs;

/// How long a writer waits for another's transaction (they are all short). Over it, the error
/// reaches the caller, who falls back (the receiver to the spool, the guard to its policy).
const BUSY: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS seen (
    fp TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_user ON seen (user);
CREATE TABLE IF NOT EXISTS revoked_user (
    user TEXT PRIMARY KEY,
    before_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
";

pub struct Sqlite {
    db: Connection,
    ttl_ms: u64,
    recent: Recent,
}

/// What this connection read lately, answered again without reading the file while the file
/// is unchanged: no other connection has committed since (`PRAGMA data_version`, which SQLite
/// keeps per connection for exactly this), and this one has written nothing (its own writes
/// empty it). A guard asked about the same jar on every request of a page then hashes the
/// jar and asks SQLite one question; any revocation, from any process, is a commit, and the
/// next lookup reads the file. Entries keep their expiry, checked at each answer.
#[derive(Default)]
struct Recent {
    /// The `data_version` the entries were read at.
    version: Option<i64>,
    /// Fingerprint → what the file held (with the row's expiry), or `None`: no such row.
    seen: HashMap<String, Option<(Seen, i64)>>,
    /// User → their revocation time (with its expiry), or `None`.
    users: HashMap<String, Option<(u64, i64)>>,
}

/// The most entries kept (a few hundred bytes each): beyond, the next read starts afresh.
const RECENT_MAX: usize = 4096;

impl Recent {
    fn answer(&self, fingerprints: &[Fingerprint], users: &[UserKey], now: i64) -> Option<Lookup> {
        let seen = fingerprints
            .iter()
            .map(|f| {
                self.seen.get(f.as_str()).map(|e| e.filter(|(_, exp)| *exp > now).map(|(s, _)| s))
            })
            .collect::<Option<Vec<_>>>()?;
        let revoked_before = users
            .iter()
            .map(|u| self.users.get(u).map(|e| e.filter(|(_, exp)| *exp > now).map(|(b, _)| b)))
            .collect::<Option<Vec<_>>>()?;
        Some(Lookup { seen, revoked_before })
    }
}

fn e(error: impl std::fmt::Display) -> StoreError {
    StoreError::new(format!("sqlite: {error}"))
}

/// Milliseconds as SQLite stores them (an i64; no time this program meets is beyond it).
fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Sqlite {
    /// Opens (creating when missing) the registry file at `path`, whose directory must exist,
    /// belong to this user, and be writable by nobody else (SQLite writes its `-wal` and `-shm`
    /// files beside it).
    pub fn open(path: &Path, ttl_ms: u64) -> Result<Sqlite, StoreError> {
        let (dir, name) = safe_fs::own_parent(path, false).map_err(e)?;
        safe_fs::check_own_file(&dir, name, path).map_err(e)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NOFOLLOW
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let db = Connection::open_with_flags(path, flags).map_err(e)?;
        db.busy_timeout(BUSY).map_err(e)?;
        // WAL: readers never wait for the writer; NORMAL: a sighting may be lost to a power
        // cut, a revocation is written FULL (below).
        db.pragma_update(None, "journal_mode", "WAL").map_err(e)?;
        db.pragma_update(None, "synchronous", "NORMAL").map_err(e)?;
        db.execute_batch(SCHEMA).map_err(e)?;
        Ok(Sqlite { db, ttl_ms, recent: Recent::default() })
    }

    /// Runs `write` as one transaction with `synchronous=FULL`: durable when it returns.
    fn durably(
        &mut self,
        write: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<()>,
    ) -> Result<(), StoreError> {
        self.recent = Recent::default();
        self.db.pragma_update(None, "synchronous", "FULL").map_err(e)?;
        let result = (|| {
            let tx = self.db.transaction()?;
            write(&tx)?;
            tx.commit()
        })();
        self.db.pragma_update(None, "synchronous", "NORMAL").map_err(e)?;
        result.map_err(e)
    }
}

impl Store for Sqlite {
    fn now_ms(&mut self) -> Result<u64, StoreError> {
        Ok(crate::time::unix_millis(SystemTime::now()))
    }

    fn lookup(
        &mut self,
        fingerprints: &[Fingerprint],
        users: &[UserKey],
    ) -> Result<Lookup, StoreError> {
        let now = ms(self.now_ms()?);
        // Read first: a commit between it and the reads below makes the next lookup read again.
        let version: i64 = self
            .db
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut q| q.query_row([], |row| row.get(0)))
            .map_err(e)?;
        if self.recent.version != Some(version)
            || self.recent.seen.len() + self.recent.users.len() > RECENT_MAX
        {
            self.recent = Recent { version: Some(version), ..Recent::default() };
        }
        if let Some(lookup) = self.recent.answer(fingerprints, users, now) {
            return Ok(lookup);
        }
        let mut lookup = Lookup {
            seen: vec![None; fingerprints.len()],
            revoked_before: vec![None; users.len()],
        };
        if !fingerprints.is_empty() {
            let marks = vec!["?"; fingerprints.len()].join(",");
            let sql = format!(
                "SELECT fp, first_ms, last_ms, revoked, expires_ms FROM seen WHERE expires_ms > ? AND fp IN ({marks})"
            );
            let mut query = self.db.prepare_cached(&sql).map_err(e)?;
            // The time as an integer: as text, SQLite would convert it for every row compared.
            let args = std::iter::once(ToSqlOutput::Borrowed(ValueRef::Integer(now))).chain(
                fingerprints
                    .iter()
                    .map(|f| ToSqlOutput::Borrowed(ValueRef::Text(f.as_str().as_bytes()))),
            );
            let mut rows = query.query(params_from_iter(args)).map_err(e)?;
            let mut found = HashMap::new();
            while let Some(row) = rows.next().map_err(e)? {
                let fp: String = row.get(0).map_err(e)?;
                let seen = Seen {
                    first_ms: row.get::<_, i64>(1).map_err(e)?.max(0) as u64,
                    last_ms: row.get::<_, i64>(2).map_err(e)?.max(0) as u64,
                    revoked: row.get::<_, i64>(3).map_err(e)? != 0,
                };
                found.insert(fp, (seen, row.get::<_, i64>(4).map_err(e)?));
            }
            for (i, asked) in fingerprints.iter().enumerate() {
                let entry = found.get(asked.as_str()).copied();
                lookup.seen[i] = entry.map(|(seen, _)| seen);
                self.recent.seen.insert(asked.as_str().to_owned(), entry);
            }
        }
        if !users.is_empty() {
            let marks = vec!["?"; users.len()].join(",");
            let sql = format!(
                "SELECT user, before_ms, expires_ms FROM revoked_user WHERE expires_ms > ? AND user IN ({marks})"
            );
            let mut query = self.db.prepare_cached(&sql).map_err(e)?;
            let args = std::iter::once(ToSqlOutput::Borrowed(ValueRef::Integer(now)))
                .chain(users.iter().map(|u| ToSqlOutput::Borrowed(ValueRef::Text(u.as_bytes()))));
            let mut rows = query.query(params_from_iter(args)).map_err(e)?;
            let mut found = HashMap::new();
            while let Some(row) = rows.next().map_err(e)? {
                let user: String = row.get(0).map_err(e)?;
                let before = row.get::<_, i64>(1).map_err(e)?.max(0) as u64;
                found.insert(user, (before, row.get::<_, i64>(2).map_err(e)?));
            }
            for (i, asked) in users.iter().enumerate() {
                let entry = found.get(asked).copied();
                lookup.revoked_before[i] = entry.map(|(before, _)| before);
                self.recent.users.insert(asked.clone(), entry);
            }
        }
        Ok(lookup)
    }

    fn record(
        &mut self,
        sightings: &[Sighting],
        now_ms: u64,
        refresh_ms: u64,
    ) -> Result<(), StoreError> {
        if sightings.is_empty() {
            return Ok(());
        }
        self.recent = Recent::default();
        let tx = self.db.transaction().map_err(e)?;
        {
            // A new credential gets its first sighting; a known one only its last, and only
            // when that has aged (two guards may both think it has).
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO seen (fp, user, first_ms, last_ms, revoked, expires_ms) VALUES (?1, ?2, ?3, ?3, 0, ?4)
                     ON CONFLICT (fp) DO UPDATE SET last_ms = excluded.last_ms, expires_ms = max(expires_ms, excluded.expires_ms)
                     WHERE excluded.last_ms - seen.last_ms >= ?5",
                )
                .map_err(e)?;
            for s in sightings {
                upsert
                    .execute(rusqlite::params![
                        s.fingerprint.as_str(),
                        s.user,
                        ms(now_ms),
                        ms(now_ms.saturating_add(self.ttl_ms)),
                        ms(refresh_ms)
                    ])
                    .map_err(e)?;
            }
        }
        tx.commit().map_err(e)
    }

    fn revoke_user(&mut self, user: &str, before_ms: u64) -> Result<(), StoreError> {
        let expires = ms(before_ms.saturating_add(self.ttl_ms));
        self.durably(|tx| {
            tx.execute(
                "INSERT INTO revoked_user (user, before_ms, expires_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user) DO UPDATE SET before_ms = max(before_ms, excluded.before_ms),
                                                  expires_ms = max(expires_ms, excluded.expires_ms)",
                rusqlite::params![user, ms(before_ms), expires],
            )
            .map(drop)
        })
    }

    fn revoke_fingerprints(
        &mut self,
        credentials: &[Sighting],
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let expires = ms(at_ms.saturating_add(self.ttl_ms));
        self.durably(|tx| {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO seen (fp, user, first_ms, last_ms, revoked, expires_ms) VALUES (?1, ?2, ?3, ?3, 1, ?4)
                 ON CONFLICT (fp) DO UPDATE SET revoked = 1, expires_ms = max(expires_ms, excluded.expires_ms)",
            )?;
            for c in credentials {
                upsert.execute(rusqlite::params![c.fingerprint.as_str(), c.user, ms(at_ms), expires])?;
            }
            Ok(())
        })
    }

    fn unrevoke_user(&mut self, user: &str) -> Result<bool, StoreError> {
        let mut removed = false;
        self.durably(|tx| {
            removed = tx.execute("DELETE FROM revoked_user WHERE user = ?1", [user])? > 0;
            Ok(())
        })?;
        Ok(removed)
    }

    fn unrevoke_fingerprint(&mut self, fingerprint: &Fingerprint) -> Result<bool, StoreError> {
        let mut changed = false;
        self.durably(|tx| {
            changed = tx.execute(
                "UPDATE seen SET revoked = 0 WHERE fp = ?1 AND revoked = 1",
                [fingerprint.as_str()],
            )? > 0;
            Ok(())
        })?;
        Ok(changed)
    }

    fn report(&mut self, user: &str) -> Result<UserReport, StoreError> {
        let now = ms(self.now_ms()?);
        let revoked_before = self
            .db
            .query_row(
                "SELECT before_ms FROM revoked_user WHERE user = ?1 AND expires_ms > ?2",
                rusqlite::params![user, now],
                |row| row.get::<_, i64>(0),
            )
            .map(|v| Some(v.max(0) as u64))
            .or_else(|err| match err {
                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                other => Err(e(other)),
            })?;
        let mut query = self
            .db
            .prepare_cached(
                "SELECT fp, first_ms, last_ms, revoked FROM seen WHERE user = ?1 AND expires_ms > ?2 ORDER BY last_ms DESC",
            )
            .map_err(e)?;
        let rows = query
            .query_map(rusqlite::params![user, now], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })
            .map_err(e)?;
        let mut sightings = Vec::new();
        for row in rows {
            let (fp, first, last, revoked) = row.map_err(e)?;
            if let Some(fp) = Fingerprint::parse(&fp) {
                let seen = Seen {
                    first_ms: first.max(0) as u64,
                    last_ms: last.max(0) as u64,
                    revoked: revoked != 0,
                };
                sightings.push((fp, seen));
            }
        }
        Ok(UserReport { revoked_before, sightings })
    }

    fn purge(&mut self, now_ms: u64) -> Result<usize, StoreError> {
        let mut purged = 0;
        self.durably(|tx| {
            purged = tx.execute("DELETE FROM seen WHERE expires_ms <= ?1", [ms(now_ms)])?
                + tx.execute("DELETE FROM revoked_user WHERE expires_ms <= ?1", [ms(now_ms)])?;
            Ok(())
        })?;
        Ok(purged)
    }
}
