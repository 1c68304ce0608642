//! Delivery attempts, and the `relay` command's drain of the spool.

use std::io;
use std::time::{Duration, SystemTime};

use super::journal::{self, Journal};
use super::signal::{self, Route, Signal, Verdict, backoff_secs, excerpt};
use super::token;
use super::transport::Transport;
use crate::cgi::Env;
use crate::spool::{Claim, Spool};
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

/// Everything a delivery needs besides the signal: the routes of the sender's own
/// configuration, the token's environment, the clock, the log, and a deadline.
pub(super) struct Courier<'a> {
    pub routes: &'a [Route],
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

    /// Attempts a claimed signal and settles the claim; logged once the spool says the same.
    /// Past the deadline the claim goes back untouched.
    pub fn settle(
        &self,
        spool: &Spool,
        claim: Claim<Signal>,
        counts: &mut Counts,
    ) -> io::Result<()> {
        let mut signal = claim.record.clone();
        let Some(attempt) = self.attempt(&mut signal, counts) else {
            return spool.retry(claim, &signal);
        };
        let settled = match &attempt.verdict {
            Verdict::Delivered => spool.finish(claim),
            Verdict::Dead(why) => spool.bury(claim, why),
            Verdict::Retry(_) => spool.retry(claim, &signal),
        };
        self.record(&signal, &attempt);
        settled
    }

    pub fn record(&self, signal: &Signal, attempt: &Attempt) {
        self.journal.append(&journal::line(unix_secs(self.clock.now()), signal, attempt));
    }
}

/// `dacs_signout relay`: retries what is due (everything with `force`), dead-letters what is
/// too old or bound for a hub `routes` does not name, takes back claims older than
/// `stale_after`. Safe to run many at once: each signal is claimed by exactly one drainer.
#[allow(clippy::too_many_arguments)] // each is a different input of the one drain
pub fn drain(
    spool: &Spool,
    routes: &[Route],
    transport: &dyn Transport,
    env: &Env,
    clock: &dyn Clock,
    force: bool,
    stale_after: Duration,
    journal: &Journal,
) -> io::Result<Counts> {
    let courier = Courier { routes, transport, env, clock, journal, deadline: None };
    let mut counts =
        Counts { reclaimed: spool.reclaim_stale(stale_after, clock.now())?, ..Counts::default() };
    let now = unix_secs(clock.now());
    for id in spool.waiting()? {
        // A peek, to skip what is not due without claiming it; a stale read is harmless.
        if let Some(s) = spool.peek(&id)
            && let Some(route) = courier.route(&s)
            && !force
            && s.next_attempt > now
            && !s.expired(now, route)
        {
            counts.not_due += 1;
            continue;
        }
        match spool.claim(&id, clock.now())? {
            None => counts.busy += 1,
            Some(claim) => {
                let expired =
                    courier.route(&claim.record).map(|r| (claim.record.expired(now, r), r));
                match expired {
                    Some((true, route)) if claim.record.attempts > 0 => {
                        let signal = &claim.record;
                        let why = format!(
                            "older than {} s after {} attempts",
                            route.max_age_secs, signal.attempts
                        );
                        courier.record(signal, &Attempt::unanswered(Verdict::Dead(why.clone())));
                        counts.dead += 1;
                        spool.bury(claim, &why)?;
                    }
                    _ => courier.settle(spool, claim, &mut counts)?,
                }
            }
        }
    }
    Ok(counts)
}
