//! Each sender's rate (`HUB_SENDER_RATE "N/SECS"`): a bucket of N events, refilled at N per
//! SECS seconds. A token names a sender; a sender that is broken or taken over cannot flood
//! the receivers or fill the spool. The level lives in a small file of the spool per sender,
//! shared by every CGI process under a lock.

use std::io;
use std::os::unix::fs::FileExt;

use rustix::fs::FlockOperation;

use crate::config::Rate;
use crate::spool::Spool;

/// A bucket's level (events it still admits, in thousandths) at a time (Unix milliseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub milli: u64,
    pub at_ms: u64,
}

/// Admits one event at `now_ms`: the new level, or how many seconds until one is admitted.
/// A bucket never seen is full; a clock that went back refills nothing.
pub fn admit(level: Option<Level>, now_ms: u64, rate: Rate) -> Result<Level, u64> {
    let full = u64::from(rate.events) * 1000;
    let period_ms = rate.secs.saturating_mul(1000).max(1);
    let milli = match level {
        None => full,
        Some(Level { milli, at_ms }) => {
            let elapsed = now_ms.saturating_sub(at_ms);
            // Refill in thousandths of an event: elapsed * events / period, in u128.
            let refill = u128::from(elapsed) * u128::from(full) / u128::from(period_ms);
            milli.saturating_add(u64::try_from(refill).unwrap_or(u64::MAX)).min(full)
        }
    };
    if milli >= 1000 {
        Ok(Level { milli: milli - 1000, at_ms: now_ms })
    } else {
        let wait_ms = (1000 - milli) * period_ms / full.max(1);
        Err(wait_ms.div_ceil(1000).max(1))
    }
}

/// A level's line: two 20-digit numbers, a space and a newline.
const LINE: usize = 42;

fn parse(text: &str) -> Option<Level> {
    let (milli, at) = text.trim().split_once(' ')?;
    Some(Level { milli: milli.parse().ok()?, at_ms: at.parse().ok()? })
}

/// Admits one event of `sender` now, or says how long to wait. The level's file
/// (`rate-SENDER` in the spool) is locked for the read and the write; a file that cannot be
/// used admits the event (a rate limit is a protection, not a reason to lose a logout), and
/// the error is returned for the log.
pub fn admit_sender(
    spool: &Spool,
    sender: &str,
    rate: Rate,
    now_ms: u64,
) -> Result<Result<(), u64>, io::Error> {
    let file = spool.state_file(&format!("rate-{sender}"))?;
    rustix::fs::flock(&file, FlockOperation::LockExclusive)?;
    // One fixed-width line, read and rewritten in place (no truncation: one page-cache write).
    let mut line = [0u8; LINE];
    let read = file.read_at(&mut line, 0).unwrap_or(0);
    let level = std::str::from_utf8(&line[..read]).ok().and_then(parse);
    match admit(level, now_ms, rate) {
        Err(wait) => Ok(Err(wait)),
        Ok(level) => {
            let text = format!("{:020} {:020}\n", level.milli, level.at_ms);
            file.write_all_at(text.as_bytes(), 0)?;
            Ok(Ok(()))
        }
    }
    // The lock goes with the file.
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: Rate = Rate { events: 3, secs: 60 };

    #[test]
    fn a_bucket_admits_its_size_then_refills() {
        let mut level = None;
        for _ in 0..3 {
            level = Some(admit(level, 1_000, RATE).unwrap());
        }
        // Empty: one event comes back every 20 s.
        assert_eq!(admit(level, 1_000, RATE), Err(20));
        assert_eq!(admit(level, 11_000, RATE), Err(10));
        let refilled = admit(level, 21_000, RATE).unwrap();
        assert_eq!(refilled, Level { milli: 0, at_ms: 21_000 });
        // Never over full, whatever the wait.
        assert_eq!(admit(Some(refilled), u64::MAX, RATE).unwrap().milli, 2000);
        // A clock that went back refills nothing.
        assert_eq!(admit(Some(refilled), 0, RATE), Err(20));
    }

    #[test]
    fn levels_read_back_and_garbage_is_a_fresh_bucket() {
        assert_eq!(parse("1500 42\n"), Some(Level { milli: 1500, at_ms: 42 }));
        assert_eq!(parse("x"), None);
        assert_eq!(parse(""), None);
    }
}
