//! The guard (§13): revocation enforced on every request. A long-running FastCGI process the
//! web server asks about each request to protected content: it refuses a credential the
//! registry says was revoked (or left idle too long), and expires the browser's copy on that
//! response; otherwise it records the sighting and lets the request through. Authentication
//! stays DACS's: a request without a credential passes.
//!
//! ```text
//! mod.rs     the decision for one request: the jar, the registry, the clock -> the answer
//! server.rs  the listener, the worker pool, the FastCGI connection loop, SIGTERM
//! ```
//!
//! Roles, as the servers use them (tested under each, `tests/it/guard.rs`):
//! * **authorizer** (Apache `mod_authnz_fcgi`, lighttpd `"mode" => "authorizer"`; nginx's
//!   `auth_request` as a responder with `DACS_GUARD_ROLE authorizer`): pass is `Status: 200`
//!   and nothing else (Apache copies an authorizer's other headers into the protected
//!   response); refusal is the refusal status with the expiring `Set-Cookie` lines.
//! * **responder** for the denial page (Apache's `ErrorDocument 401`, nginx's
//!   `error_page 401 @expired`): the same expiring lines again (nginx passes at most one from
//!   an `auth_request`), a page that explains, and the status the server asks for
//!   (`REDIRECT_STATUS`).
//! * **health**: a responder request with `DACS_GUARD_ROLE health`, or for `/dacs-guard/health`:
//!   the counters, in JSON.

pub mod server;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::cgi::{Env, Response};
use crate::config::{OnStoreError, Settings};
use crate::credentials::expiry::set_cookie;
use crate::credentials::{CookieName, header};
use crate::registry::verdict::{self, Presented, Timing, Verdict};
use crate::registry::{self, Fingerprint, Key, Store, UserKey, user_key};
use crate::render::html;

/// The most credentials of the federation one request may present: more is no browser's jar
/// (a 64 KiB header can name thousands), and each costs a registry lookup.
const MAX_CREDENTIALS: usize = 64;

/// How long a credential the registry had the guard refuse is remembered as refused, so that a
/// short outage does not reopen it.
const CACHE: Duration = Duration::from_secs(60);

/// Counters for monitoring (`/dacs-guard/health`).
#[derive(Debug, Default)]
pub struct Counters {
    pub passes: AtomicU64,
    pub refusals: AtomicU64,
    pub store_errors: AtomicU64,
    pub fail_open_passes: AtomicU64,
    pub pages: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn json(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        serde_json::json!({
            "status": "ok",
            "passes": get(&self.passes),
            "refusals": get(&self.refusals),
            "store_errors": get(&self.store_errors),
            "fail_open_passes": get(&self.fail_open_passes),
            "denial_pages": get(&self.pages),
        })
        .to_string()
    }
}

/// What a request is, to the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Pass or refuse.
    Authorizer,
    /// The denial page, with this status.
    Page(u16),
    /// The counters.
    Health,
}

impl Role {
    /// From the FastCGI role and the request's parameters.
    pub fn of(fastcgi_role: u16, env: &Env) -> Role {
        let marked = env.soft("DACS_GUARD_ROLE");
        if fastcgi_role == crate::fastcgi::AUTHORIZER || marked == Some("authorizer") {
            return Role::Authorizer;
        }
        let path = env.soft("REQUEST_URI").map(|u| u.split('?').next().unwrap_or(u));
        if marked == Some("health") || path == Some("/dacs-guard/health") {
            return Role::Health;
        }
        // Apache's ErrorDocument passes the denial's status; echo it, or a 401 turns into a 200.
        let status = match env.soft("REDIRECT_STATUS") {
            Some("403") => 403,
            _ => 401,
        };
        Role::Page(status)
    }
}

/// The guard's state: its section's settings, the fingerprint key, the counters, and the
/// revocations it has read recently.
pub struct Guard {
    pub settings: Settings,
    /// The guard's own environment: the registry's password variable is read from it, never
    /// from a request's parameters.
    env: Env,
    key: Key,
    pub counters: Counters,
    /// Fingerprints refused lately → when.
    cache: Mutex<HashMap<Fingerprint, Instant>>,
}

/// A worker's own connection to the registry (SQLite's connections are not shared between
/// threads; Redis's is reopened after a failure).
#[derive(Default)]
pub struct Worker {
    store: Option<Box<dyn Store>>,
}

/// The decision on one request's jar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judged {
    /// No credential of the federation: authentication is DACS's.
    NoCredential,
    Pass,
    /// These cookie names are refused, each with why.
    Refuse(Vec<(String, &'static str)>),
    /// The registry could not be read and the policy is to deny.
    StoreDenied,
}

impl Guard {
    pub fn new(settings: Settings, env: &Env) -> Result<Guard, String> {
        let registry = settings.registry.as_ref().ok_or("no REGISTRY is configured")?;
        let key = env.raw(&registry.key_env).and_then(Key::new).ok_or_else(|| {
            format!("${} must hold the fingerprint key (16 bytes or more)", registry.key_env)
        })?;
        Ok(Guard {
            settings,
            env: env.clone(),
            key,
            counters: Counters::default(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The credentials of this federation in a `Cookie` header, with their fingerprints.
    pub fn presented(&self, cookie_header: &[u8]) -> Vec<Presented> {
        let rules = &self.settings.rules;
        header::pairs(cookie_header)
            .filter(|(name, _)| name.starts_with(b"DACS:"))
            .filter_map(|(name, value)| {
                let text = std::str::from_utf8(name).ok()?;
                let CookieName::Credential(id) = CookieName::parse(text)? else { return None };
                rules.name_compare.eq(id.federation, &rules.federation_name).then(|| Presented {
                    name: text.to_owned(),
                    user: user_key(id.federation, id.jurisdiction, id.username, rules.name_compare),
                    fingerprint: Fingerprint::of(&self.key, name, value),
                })
            })
            .collect()
    }

    /// Judges a request's `Cookie` header.
    pub fn judge(&self, worker: &mut Worker, cookie_header: &[u8]) -> Judged {
        let presented = self.presented(cookie_header);
        if presented.is_empty() {
            return Judged::NoCredential;
        }
        if presented.len() > MAX_CREDENTIALS {
            return Judged::Refuse(Vec::new());
        }
        let fingerprints: Vec<Fingerprint> =
            presented.iter().map(|p| p.fingerprint.clone()).collect();
        let mut users: Vec<UserKey> = Vec::new();
        for p in &presented {
            if !users.contains(&p.user) {
                users.push(p.user.clone());
            }
        }
        let timing = Timing::new(self.settings.guard.idle_secs);
        let read = |worker: &mut Worker| {
            self.store(worker).and_then(|store| {
                let now = store.now_ms()?;
                Ok((store.lookup(&fingerprints, &users)?, now))
            })
        };
        // A failed read is tried once more on a new connection before the policy decides: with
        // many writers on one SQLite file a read can meet "database is locked" (measured: once
        // in minutes of eight receivers and four guards), which is no outage.
        let read = read(worker).or_else(|first| {
            worker.store = None;
            crate::log::to_stderr(format_args!(
                "dacs_guard: registry error, read again on a new connection: {first}"
            ));
            read(worker)
        });
        let (lookup, now_ms) = match read {
            Ok(found) => found,
            Err(e) => {
                worker.store = None; // reconnect next time
                Counters::add(&self.counters.store_errors);
                crate::log::to_stderr(format_args!("dacs_guard: registry error: {e}"));
                // What the registry had refused lately stays refused; beyond it, the policy.
                let refused: Vec<(String, verdict::Why)> = presented
                    .iter()
                    .filter(|p| self.recently_refused(&p.fingerprint))
                    .map(|p| (p.name.clone(), verdict::Why::Revoked))
                    .collect();
                if !refused.is_empty() {
                    return self.refused(refused);
                }
                return match self.settings.guard.on_store_error {
                    OnStoreError::Allow => {
                        Counters::add(&self.counters.fail_open_passes);
                        Judged::Pass
                    }
                    OnStoreError::Deny => Judged::StoreDenied,
                };
            }
        };
        match verdict::judge(&presented, &users, &lookup, now_ms, timing) {
            Verdict::Refuse(refused) => {
                self.remember(&presented, &refused);
                self.refused(refused)
            }
            Verdict::Pass(sightings) => {
                // A failed sighting write neither refuses nor passes on its own: the request
                // passes, as its revocation read said.
                if let Some(store) = worker.store.as_mut()
                    && let Err(e) = store.record(&sightings, now_ms, timing.refresh_ms)
                {
                    Counters::add(&self.counters.store_errors);
                    crate::log::to_stderr(format_args!(
                        "dacs_guard: registry error recording sightings: {e}"
                    ));
                    worker.store = None;
                }
                Judged::Pass
            }
        }
    }

    fn refused(&self, refused: Vec<(String, verdict::Why)>) -> Judged {
        Judged::Refuse(refused.into_iter().map(|(name, why)| (name, why.as_str())).collect())
    }

    fn store<'w>(
        &self,
        worker: &'w mut Worker,
    ) -> Result<&'w mut Box<dyn Store>, registry::StoreError> {
        if worker.store.is_none() {
            let settings = self.settings.registry.as_ref().expect("a guard has a registry");
            let federation = &self.settings.rules.federation_name;
            worker.store = Some(registry::open(settings, federation, &self.env)?);
        }
        Ok(worker.store.as_mut().expect("just opened"))
    }

    /// Keeps the refused credentials' fingerprints, for a registry outage.
    fn remember(&self, presented: &[Presented], refused: &[(String, verdict::Why)]) {
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, at| now.duration_since(*at) < CACHE);
        for p in presented.iter().filter(|p| refused.iter().any(|(name, _)| *name == p.name)) {
            cache.insert(p.fingerprint.clone(), now);
        }
    }

    fn recently_refused(&self, fingerprint: &Fingerprint) -> bool {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.get(fingerprint).is_some_and(|at| at.elapsed() < CACHE)
    }

    /// The answer to one request, as CGI-style bytes (`Status:` first).
    pub fn answer(&self, worker: &mut Worker, role: Role, env: &Env) -> Vec<u8> {
        let response = match role {
            Role::Health => {
                let mut r = Response::new(200, "OK");
                r.header("Content-Type", "application/json");
                r.body = self.counters.json().into_bytes();
                r
            }
            Role::Authorizer => {
                let cookie = env.raw("HTTP_COOKIE").unwrap_or_default();
                match self.judge(worker, cookie) {
                    Judged::NoCredential | Judged::Pass => {
                        Counters::add(&self.counters.passes);
                        // Nothing but the status: Apache copies an authorizer's other headers
                        // into the protected response.
                        return b"Status: 200 OK\r\n\r\n".to_vec();
                    }
                    judged => {
                        Counters::add(&self.counters.refusals);
                        self.refusal(self.settings.guard.refusal_status, &judged)
                    }
                }
            }
            Role::Page(status) => {
                Counters::add(&self.counters.pages);
                let cookie = env.raw("HTTP_COOKIE").unwrap_or_default();
                let judged = self.judge(worker, cookie);
                self.refusal(status, &judged)
            }
        };
        response
            .to_bytes(false)
            .unwrap_or_else(|_| b"Status: 500 Internal Server Error\r\n\r\n".to_vec())
    }

    /// A refusal (or a denial page): the expiring `Set-Cookie` line of each refused credential
    /// (valid ones in the same jar are left alone), and a page that says what happened.
    fn refusal(&self, status: u16, judged: &Judged) -> Response {
        let rules = &self.settings.rules;
        let refused: &[(String, &'static str)] = match judged {
            Judged::Refuse(refused) => refused,
            _ => &[],
        };
        let reason = if status == 403 { "Forbidden" } else { "Unauthorized" };
        let listed: Vec<(String, &str)> = refused.iter().map(|(n, w)| (n.clone(), *w)).collect();
        let mut response =
            html::page(status, reason, &html::guard_body(&rules.federation_name, &listed));
        let mut expired: Vec<&str> = Vec::new();
        for (name, _) in refused {
            if !expired.contains(&name.as_str()) {
                expired.push(name);
                response.header("Set-Cookie", set_cookie(name, &rules.cookie, rules.cookie_syntax));
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles() {
        let env = |pairs: &[(&'static str, &'static str)]| Env::from_pairs(pairs.iter().copied());
        assert_eq!(Role::of(crate::fastcgi::AUTHORIZER, &env(&[])), Role::Authorizer);
        assert_eq!(Role::of(1, &env(&[("DACS_GUARD_ROLE", "authorizer")])), Role::Authorizer);
        assert_eq!(Role::of(1, &env(&[("DACS_GUARD_ROLE", "health")])), Role::Health);
        assert_eq!(Role::of(1, &env(&[("REQUEST_URI", "/dacs-guard/health?x")])), Role::Health);
        assert_eq!(Role::of(1, &env(&[("REDIRECT_STATUS", "403")])), Role::Page(403));
        assert_eq!(Role::of(1, &env(&[("REDIRECT_STATUS", "200")])), Role::Page(401));
    }

    /// A guard on an SQLite registry of its own, in a fresh owner-only directory (removed on
    /// drop), policy `GUARD_ON_STORE_ERROR "allow"`.
    struct Fixture {
        guard: Guard,
        dir: std::path::PathBuf,
    }

    impl Fixture {
        fn new(label: &str) -> Fixture {
            use std::os::unix::fs::DirBuilderExt;
            let dir = std::env::temp_dir()
                .join(format!("dacs-guard-unit-{label}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
            let text = format!(
                "<Configuration><Default>FEDERATION_NAME \"EX\"\nFEDERATION_DOMAIN \
                 \"example.org\"\nJURISDICTION_NAME \"J\"\nREGISTRY \"sqlite:{}/r.db\"\n\
                 </Default></Configuration>",
                dir.display()
            );
            let config = crate::config::Config::parse(&text, crate::config::Source::BuiltIn);
            let settings = config.unwrap().settings("").unwrap();
            let env = Env::from_pairs([("DACS_REGISTRY_KEY", "0123456789abcdef")]);
            Fixture { guard: Guard::new(settings, &env).unwrap(), dir }
        }

        fn store(&self) -> Box<dyn Store> {
            let settings = self.guard.settings.registry.as_ref().unwrap();
            registry::open(settings, "EX", &self.guard.env).unwrap()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700));
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn the_federations_credentials_are_presented_with_their_fingerprints() {
        let fixture = Fixture::new("presented");
        let jar = b"DACS:EX::J:bob=v; DACS:OTHER::J:bob=w; theme=dark; DACS:EX::K:amy=x";
        let presented = fixture.guard.presented(jar);
        let names: Vec<&str> = presented.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["DACS:EX::J:bob", "DACS:EX::K:amy"]);
        assert_eq!(presented[0].user, "EX::J:bob");
        assert_eq!(
            presented[0].fingerprint,
            Fingerprint::of(&fixture.guard.key, b"DACS:EX::J:bob", b"v")
        );
    }

    /// A jar of more than 64 of the federation's credentials is no browser's: refused, nothing
    /// looked up or recorded; 64 is judged as usual.
    #[test]
    fn at_most_64_credentials_are_judged() {
        let fixture = Fixture::new("count");
        let jar =
            |n: usize| (0..n).map(|i| format!("DACS:EX::J:u{i}=v")).collect::<Vec<_>>().join("; ");
        let mut worker = Worker::default();
        assert_eq!(fixture.guard.judge(&mut worker, jar(64).as_bytes()), Judged::Pass);
        assert_eq!(fixture.guard.judge(&mut worker, jar(65).as_bytes()), Judged::Refuse(vec![]));
    }

    /// A user's signout refuses each of their credentials seen before it, however many of
    /// them one request presents.
    #[test]
    fn a_users_signout_refuses_every_credential_of_theirs() {
        let fixture = Fixture::new("users");
        let mut worker = Worker::default();
        let jar = b"DACS:EX::J:bob=1; DACS:EX::K:bob=2; DACS:EX::J:amy=3";
        assert_eq!(fixture.guard.judge(&mut worker, jar), Judged::Pass);
        let mut store = fixture.store();
        let now = store.now_ms().unwrap();
        store.revoke_user("EX::J:bob", now).unwrap();
        assert_eq!(
            fixture.guard.judge(&mut worker, jar),
            Judged::Refuse(vec![("DACS:EX::J:bob".into(), "signed-out")])
        );
    }

    /// The registry unreadable: what was refused lately stays refused, anything else follows
    /// the policy (here: allow).
    #[test]
    fn through_an_outage_recent_refusals_hold_and_the_rest_pass() {
        use std::os::unix::fs::PermissionsExt;
        let fixture = Fixture::new("outage");
        let mut worker = Worker::default();
        let jar = b"DACS:EX::J:bob=1";
        assert_eq!(fixture.guard.judge(&mut worker, jar), Judged::Pass);
        let mut store = fixture.store();
        let now = store.now_ms().unwrap();
        store.revoke_user("EX::J:bob", now).unwrap();
        assert!(matches!(fixture.guard.judge(&mut worker, jar), Judged::Refuse(_)));
        // A directory others may write: the store refuses to open for a new worker.
        std::fs::set_permissions(&fixture.dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let mut fresh = Worker::default();
        assert_eq!(
            fixture.guard.judge(&mut fresh, jar),
            Judged::Refuse(vec![("DACS:EX::J:bob".into(), "revoked")])
        );
        assert_eq!(fixture.guard.judge(&mut fresh, b"DACS:EX::J:amy=1"), Judged::Pass);
    }
}
