//! Delivery attempts, and the `relay` command's drain of the spool.

use std::cell::RefCell;
use std::io;
use std::time::{Duration, SystemTime};

use super::journal::{self, Journal};
use super::signal::{self, Route, Signal, Verdict, backoff_secs, excerpt};
use super::token;
use super::transport::Transport;
use crate::cgi::Env;
use crate::registry::revocation::Revoke;
use crate::registry::{self, Revocation, Store, StoreError};
use crate::spool::{Claim, Record, Spool};
use crate::time::{Clock, unix_secs};

/// One delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub verdict: Verdict,
    /// The hub's HTTP status, when it answered.
    pub status: Option<u16>,
    /// At most 400 bytes of a refusal's body, token removed; empty on success.
    pub detail: String,
}

impl Attempt {
    fn unanswered(verdict: Verdict) -> Attempt {
        Attempt { verdict, status: None, detail: String::new() }
    }
}

/// POSTs `signal` along `route`, with the token from `env`, and judges the answer. `timeout`
/// bounds the whole call.
pub fn attempt(
    signal: &Signal,
    route: &Route,
    transport: &dyn Transport,
    env: &Env,
    timeout: Duration,
) -> Attempt {
    let Some(token) = token(env, &route.token_env) else {
        let why = format!("no bearer token in ${}", route.token_env);
        return Attempt::unanswered(Verdict::Retry(why));
    };
    let body = signal::body(signal, route);
    match transport.post(&route.endpoint, &token, &body, timeout) {
        Err(e) => Attempt::unanswered(Verdict::Retry(excerpt(e.as_bytes(), Some(&token)))),
        Ok(reply) => {
            let verdict = signal::judge(reply.status, &reply.body, &signal.user_name);
            let detail = match verdict {
                Verdict::Delivered => String::new(),
                _ => excerpt(&reply.body, Some(&token)),
            };
            Attempt { verdict, status: Some(reply.status), detail }
        }
    }
}

/// What a drain did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub delivered: usize,
    pub retried: usize,
    pub dead: usize,
    pub not_due: usize,
    pub busy: usize,
    pub reclaimed: usize,
    /// Revocations applied to the registry.
    pub revoked: usize,
}

impl Counts {
    fn count(&mut self, verdict: &Verdict) {
        match verdict {
            Verdict::Delivered => self.delivered += 1,
            Verdict::Dead(_) => self.dead += 1,
            Verdict::Retry(_) => self.retried += 1,
        }
    }
}

/// Everything a spool holds: a signal for the hub, or a revocation for the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Signal(Signal),
    Revocation(Revocation),
}

impl Record for Entry {
    fn id(&self) -> &str {
        match self {
            Entry::Signal(s) => s.id(),
            Entry::Revocation(r) => r.id(),
        }
    }

    fn to_json(&self) -> String {
        match self {
            Entry::Signal(s) => s.to_json(),
            Entry::Revocation(r) => r.to_json(),
        }
    }

    fn from_json(bytes: &[u8]) -> Option<Entry> {
        Revocation::from_json(bytes)
            .map(Entry::Revocation)
            .or_else(|| Signal::from_json(bytes).map(Entry::Signal))
    }
}

/// The registry revocations go to: opened on the first one, and again after a failure.
pub struct RegistryAccess<'a> {
    pub settings: &'a registry::Settings,
    pub federation: &'a str,
    pub store: RefCell<Option<Box<dyn Store>>>,
}

impl<'a> RegistryAccess<'a> {
    pub fn new(settings: &'a registry::Settings, federation: &'a str) -> RegistryAccess<'a> {
        RegistryAccess { settings, federation, store: RefCell::new(None) }
    }

    /// Applies a revocation with its own time (a late one revokes nothing newer).
    fn apply(&self, revoke: &Revoke, env: &Env) -> Result<(), StoreError> {
        let mut slot = self.store.borrow_mut();
        if slot.is_none() {
            *slot = Some(registry::open(self.settings, self.federation, env)?);
        }
        let store = slot.as_mut().expect("just opened");
        let result = match revoke {
            Revoke::Users { users, before_ms } => {
                users.iter().try_for_each(|user| store.revoke_user(user, *before_ms))
            }
            Revoke::Credentials { credentials, at_ms } => {
                store.revoke_fingerprints(credentials, *at_ms)
            }
        };
        if result.is_err() {
            *slot = None; // reconnect next time
        }
        result
    }
}

/// Everything a delivery needs besides the entry: the routes of the sender's own
/// configuration (and its registry), the token's environment, the clock, the log, a deadline.
pub struct Courier<'a> {
    pub routes: &'a [Route],
    pub registry: Option<&'a RegistryAccess<'a>>,
    pub transport: &'a dyn Transport,
    pub env: &'a Env,
    pub clock: &'a dyn Clock,
    pub journal: &'a Journal,
    /// No attempt starts after it, and none runs past it.
    pub deadline: Option<SystemTime>,
}
impl Courier<'_> {
    /// The route of the sender's configuration for this record's hub.
    fn route(&self, signal: &Signal) -> Option<&Route> {
        self.routes.iter().find(|r| r.endpoint == signal.endpoint)
    }

    /// How long the next attempt may take; `None` once the deadline has passed.
    fn time_left(&self, route: &Route) -> Option<Duration> {
        let timeout = Duration::from_secs(route.timeout_secs);
        match self.deadline {
            None => Some(timeout),
            Some(deadline) => deadline
                .duration_since(self.clock.now())
                .ok()
                .filter(|left| !left.is_zero())
                .map(|left| left.min(timeout)),
        }
    }

    /// One attempt at `signal` (counted); a retry past the route's age is dead. `None` when
    /// the deadline left no time to try.
    pub fn attempt(&self, signal: &mut Signal, counts: &mut Counts) -> Option<Attempt> {
        let Some(route) = self.route(signal) else {
            let why =
                format!("its hub ({}) is not one this configuration sends to", signal.endpoint);
            counts.dead += 1;
            return Some(Attempt::unanswered(Verdict::Dead(why)));
        };
        let timeout = self.time_left(route)?;
        signal.attempts += 1;
        let mut attempt = attempt(signal, route, self.transport, self.env, timeout);
        let now = unix_secs(self.clock.now());
        if let Verdict::Retry(why) = &attempt.verdict
            && signal.expired(now, route)
        {
            let why = format!("older than {} s; last: {why}", route.max_age_secs);
            attempt.verdict = Verdict::Dead(why);
        }
        if let Verdict::Retry(_) = attempt.verdict {
            signal.next_attempt = now + backoff_secs(signal.attempts);
        }
        counts.count(&attempt.verdict);
        Some(attempt)
    }

    /// Attempts a claimed entry and settles the claim; logged once the spool says the same.
    /// Past the deadline the claim goes back untouched.
    pub fn settle(
        &self,
        spool: &Spool,
        claim: Claim<Entry>,
        counts: &mut Counts,
    ) -> io::Result<()> {
        match claim.record.clone() {
            Entry::Signal(mut signal) => {
                let Some(attempt) = self.attempt(&mut signal, counts) else {
                    return spool.retry(claim, &Entry::Signal(signal));
                };
                let settled = match &attempt.verdict {
                    Verdict::Delivered => spool.finish(claim),
                    Verdict::Dead(why) => spool.bury(claim, why),
                    Verdict::Retry(_) => spool.retry(claim, &Entry::Signal(signal.clone())),
                };
                self.record(&signal, &attempt);
                settled
            }
            Entry::Revocation(mut revocation) => {
                revocation.attempts += 1;
                let now = unix_secs(self.clock.now());
                let outcome = self.revoke(&revocation);
                let settled = match &outcome {
                    Ok(()) => {
                        counts.revoked += 1;
                        spool.finish(claim)
                    }
                    Err(_) => {
                        counts.retried += 1;
                        revocation.next_attempt = now + backoff_secs(revocation.attempts);
                        spool.retry(claim, &Entry::Revocation(revocation.clone()))
                    }
                };
                self.journal.append(&journal::revocation_line(
                    now,
                    &revocation,
                    outcome.as_ref().err(),
                    true,
                ));
                settled
            }
        }
    }

    /// One attempt at an entry that is in no spool (best effort): a signal sent once, a
    /// revocation applied once, each logged. `false` once the deadline left no time.
    pub fn once(&self, entry: Entry, counts: &mut Counts) -> bool {
        match entry {
            Entry::Signal(mut signal) => match self.attempt(&mut signal, counts) {
                None => false,
                Some(attempt) => {
                    self.record(&signal, &attempt);
                    true
                }
            },
            Entry::Revocation(mut revocation) => {
                revocation.attempts += 1;
                let outcome = self.revoke(&revocation);
                match outcome {
                    Ok(()) => counts.revoked += 1,
                    Err(_) => counts.dead += 1,
                }
                let now = unix_secs(self.clock.now());
                self.journal.append(&journal::revocation_line(
                    now,
                    &revocation,
                    outcome.as_ref().err(),
                    false,
                ));
                true
            }
        }
    }

    fn revoke(&self, revocation: &Revocation) -> Result<(), String> {
        match self.registry {
            None => Err("no REGISTRY is configured here".to_owned()),
            Some(registry) => {
                registry.apply(&revocation.revoke, self.env).map_err(|e| e.to_string())
            }
        }
    }

    pub fn record(&self, signal: &Signal, attempt: &Attempt) {
        self.journal.append(&journal::line(unix_secs(self.clock.now()), signal, attempt));
    }
}

/// `dacs_signout relay`: retries what is due (everything with `force`), dead-letters what is
/// too old or bound for a hub the courier's routes do not name, applies revocations to the
/// registry, takes back claims older than `stale_after`. Safe to run many at once: each entry
/// is claimed by exactly one drainer.
pub fn drain(
    courier: &Courier,
    spool: &Spool,
    force: bool,
    stale_after: Duration,
) -> io::Result<Counts> {
    let clock = courier.clock;
    let mut counts =
        Counts { reclaimed: spool.reclaim_stale(stale_after, clock.now())?, ..Counts::default() };
    let now = unix_secs(clock.now());
    for id in spool.waiting()? {
        // A peek, to skip what is not due without claiming it; a stale read is harmless.
        let due = |entry: &Entry| match entry {
            Entry::Signal(s) => {
                courier.route(s).is_none_or(|r| s.next_attempt <= now || s.expired(now, r))
            }
            Entry::Revocation(r) => r.next_attempt <= now,
        };
        if !force && spool.peek::<Entry>(&id).is_some_and(|entry| !due(&entry)) {
            counts.not_due += 1;
            continue;
        }
        match spool.claim::<Entry>(&id, clock.now())? {
            None => counts.busy += 1,
            Some(claim) => {
                if let Entry::Signal(signal) = &claim.record
                    && let Some(route) = courier.route(signal)
                    && signal.expired(now, route)
                    && signal.attempts > 0
                {
                    let why = format!(
                        "older than {} s after {} attempts",
                        route.max_age_secs, signal.attempts
                    );
                    courier.record(signal, &Attempt::unanswered(Verdict::Dead(why.clone())));
                    counts.dead += 1;
                    spool.bury(claim, &why)?;
                } else {
                    courier.settle(spool, claim, &mut counts)?;
                }
            }
        }
    }
    Ok(counts)
}
