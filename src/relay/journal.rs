//! The delivery log: one line per attempt (time, network username, outcome, HTTP status,
//! attempt number), appended where the request's own stderr can no longer reach.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use super::drain::Attempt;
use super::signal::Signal;
use crate::log::LogLine;
use crate::registry::Revocation;
use crate::safe_fs;
use crate::spool::Spool;

/// The open log, or none: a log that cannot be opened safely (its directory could be changed
/// by another user, it is a link) is not written at all, rather than written where someone
/// else points.
pub struct Journal(Option<File>);

impl Journal {
    /// `RELAY_LOG` when set, else `relay.log` in the spool (only when the spool was accepted).
    pub fn open(explicit: Option<&Path>, spool: Option<&Spool>) -> Journal {
        Journal::named(explicit, spool, "relay.log")
    }

    /// `explicit` when set, else `name` in the spool (only when the spool was accepted).
    pub fn named(explicit: Option<&Path>, spool: Option<&Spool>, name: &str) -> Journal {
        let file = match explicit {
            Some(path) => safe_fs::open_log(path).ok(),
            None => spool.and_then(|s| s.log(name).ok()),
        };
        Journal(file)
    }

    /// Appends a line; one `write` per line, so concurrent drainers do not interleave.
    pub fn append(&self, line: &str) {
        if let Some(mut file) = self.0.as_ref() {
            let _ = file.write_all(line.as_bytes());
        }
    }
}

/// `TIME dacs_signout relay: user=… outcome=… status=… attempt=… id=… [why=…] [body=…]`
pub fn line(now: u64, signal: &Signal, attempt: &Attempt) -> String {
    let mut line = LogLine::default();
    line.set("user", &signal.user_name)
        .set("outcome", attempt.verdict.outcome())
        .set("status", attempt.status.map_or("-".to_owned(), |s| s.to_string()))
        .set("attempt", signal.attempts)
        .set("id", &signal.id);
    if let Some(why) = attempt.verdict.reason() {
        line.set("why", why);
    }
    if !attempt.detail.is_empty() {
        line.set("body", &attempt.detail);
    }
    line.render_as(now, "dacs_signout relay")
}

/// `TIME dacs_signout relay: revocation=ID outcome=applied|retry attempt=N [why=…]`
/// A revocation's attempt; `spooled` says whether a failure will be tried again.
pub fn revocation_line(
    now: u64,
    revocation: &Revocation,
    error: Option<&String>,
    spooled: bool,
) -> String {
    let outcome = match (error, spooled) {
        (None, _) => "applied",
        (Some(_), true) => "retry",
        (Some(_), false) => "lost",
    };
    let mut line = LogLine::default();
    line.set("revocation", &revocation.id)
        .set("outcome", outcome)
        .set("attempt", revocation.attempts);
    if let Some(why) = error {
        line.set("why", why);
    }
    line.render_as(now, "dacs_signout relay")
}
