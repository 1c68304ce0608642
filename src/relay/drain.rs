//! Delivery attempts, and the `relay` command's drain of the spool.

use std::io;
use std::path::Path;
use std::time::Duration;

use super::signal::{self, Signal, Verdict, backoff_secs, excerpt};
use super::spool::{Claim, Spool};
use super::transport::Transport;
use super::{journal, token};
use crate::cgi::Env;
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

/// POSTs `signal` with the token from `env`, and judges the answer.
pub fn attempt(signal: &Signal, transport: &dyn Transport, env: &Env) -> Attempt {
    let unanswered =
        |why: String| Attempt { verdict: Verdict::Retry(why), status: None, detail: String::new() };
    let Some(token) = token(env, &signal.token_env) else {
        return unanswered(format!("no bearer token in ${}", signal.token_env));
    };
    let body = signal::body(&signal.user_name, &signal.user_agent);
    let timeout = Duration::from_secs(signal.timeout_secs);
    match transport.post(&signal.endpoint, &token, &body, timeout) {
        Err(e) => unanswered(excerpt(e.as_bytes(), Some(&token))),
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

/// Everything a delivery needs besides the signal.
pub(super) struct Courier<'a> {
    pub transport: &'a dyn Transport,
    pub env: &'a Env,
    pub clock: &'a dyn Clock,
    pub log: &'a Path,
}

impl Courier<'_> {
    /// One attempt at `signal` (counted), logged; a retry past the signal's age is dead.
    pub fn attempt(&self, signal: &mut Signal, counts: &mut Counts) -> Attempt {
        signal.attempts += 1;
        let mut attempt = attempt(signal, self.transport, self.env);
        let now = unix_secs(self.clock.now());
        if let Verdict::Retry(why) = &attempt.verdict
            && signal.expired(now)
        {
            let why = format!("older than {} s; last: {why}", signal.max_age_secs);
            attempt.verdict = Verdict::Dead(why);
        }
        if let Verdict::Retry(_) = attempt.verdict {
            signal.next_attempt = now + backoff_secs(signal.attempts);
        }
        counts.count(&attempt.verdict);
        attempt
    }

    /// Attempts a claimed signal and settles the claim; logged once the spool says the same.
    pub fn settle(&self, spool: &Spool, claim: Claim, counts: &mut Counts) -> io::Result<()> {
        let mut signal = claim.signal.clone();
        let attempt = self.attempt(&mut signal, counts);
        let settled = match &attempt.verdict {
            Verdict::Delivered => spool.finish(claim),
            Verdict::Dead(why) => spool.bury(claim, why),
            Verdict::Retry(_) => spool.retry(claim, &signal),
        };
        self.record(&signal, &attempt);
        settled
    }

    pub fn record(&self, signal: &Signal, attempt: &Attempt) {
        journal::append(self.log, &journal::line(unix_secs(self.clock.now()), signal, attempt));
    }
}

/// `dacs_signout relay`: retries what is due (everything with `force`), dead-letters what is
/// too old, takes back claims older than `stale_after`. Safe to run many at once: each signal
/// is claimed by exactly one drainer.
pub fn drain(
    spool: &Spool,
    transport: &dyn Transport,
    env: &Env,
    clock: &dyn Clock,
    force: bool,
    stale_after: Duration,
    log: &Path,
) -> io::Result<Counts> {
    let courier = Courier { transport, env, clock, log };
    let mut counts =
        Counts { reclaimed: spool.reclaim_stale(stale_after, clock.now())?, ..Counts::default() };
    let now = unix_secs(clock.now());
    for id in spool.waiting()? {
        // A peek, to skip what is not due without claiming it; a stale read is harmless.
        if let Some(s) = spool.peek(&id)
            && !force
            && s.next_attempt > now
            && !s.expired(now)
        {
            counts.not_due += 1;
            continue;
        }
        match spool.claim(&id, clock.now())? {
            None => counts.busy += 1,
            Some(claim) if claim.signal.expired(now) && claim.signal.attempts > 0 => {
                let signal = &claim.signal;
                let why = format!(
                    "older than {} s after {} attempts",
                    signal.max_age_secs, signal.attempts
                );
                let dead = Attempt {
                    verdict: Verdict::Dead(why.clone()),
                    status: None,
                    detail: String::new(),
                };
                courier.record(signal, &dead);
                counts.dead += 1;
                spool.bury(claim, &why)?;
            }
            Some(claim) => courier.settle(spool, claim, &mut counts)?,
        }
    }
    Ok(counts)
}
