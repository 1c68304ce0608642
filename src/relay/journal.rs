//! The delivery log: one line per attempt (time, network username, outcome, HTTP status,
//! attempt number), appended where the request's own stderr can no longer reach.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::drain::Attempt;
use super::signal::Signal;
use crate::log::LogLine;
use crate::time::rfc3339;

/// `dacs_signout relay: time=… user=… outcome=… status=… attempt=… id=… [why=…] [body=…]`
pub fn line(now: u64, signal: &Signal, attempt: &Attempt) -> String {
    let mut line = LogLine::default();
    line.set("time", rfc3339(now))
        .set("user", &signal.user_name)
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
    line.render_as("dacs_signout relay")
}

/// Appends to the relay log; one `write` per line, so concurrent drainers do not interleave.
pub fn append(log: &Path, line: &str) {
    let file = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(log);
    if let Ok(mut file) = file {
        let _ = file.write_all(line.as_bytes());
    }
}
