//! Receipts (§14): for an event, which receivers have it and which do not, read from where its
//! records are in the spool: `done/` delivered, `dead/` refused for good (and why), `new/` and
//! `work/` pending (attempts, next try, last failure).

use std::io;

use serde_json::{Value, json};

use super::event::{Delivery, EventId};
use crate::spool::{Found, Spool, State};
use crate::time::rfc3339;

/// Where one receiver's delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    Delivered {
        at: u64,
    },
    /// Waiting for its next attempt, or (`under_way`) being attempted now.
    Pending {
        next_attempt: u64,
        under_way: bool,
    },
    Dead {
        why: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverState {
    pub name: String,
    pub standing: Standing,
    pub attempts: u32,
    pub status: Option<u16>,
    /// The last failure, for a pending delivery.
    pub last: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub event_id: String,
    pub sender: String,
    pub user_name: String,
    pub logout_at: u64,
    pub received: u64,
    pub receivers: Vec<ReceiverState>,
    /// Records the event should have but that were not found (removed by hand, or receipts
    /// kept longer than `HUB_RECEIPT_SECS` and pruned).
    pub unaccounted: usize,
}

/// A record's state, most settled first: a record seen twice while it moved counts once, as
/// the later of the two.
fn rank(state: State) -> u8 {
    match state {
        State::Done | State::Dead => 0,
        State::Claimed => 1,
        State::Waiting => 2,
    }
}

/// The receipt of `id` from `spool`; `None` when the spool holds no record of it.
pub fn find(spool: &Spool, id: &EventId) -> io::Result<Option<Receipt>> {
    let prefix = id.record_prefix();
    let mut seen: Vec<Found<Delivery>> = Vec::new();
    // A record moves between directories while they are read (new -> work -> new/done/dead):
    // read again, a few times, until every record has been seen.
    for _ in 0..4 {
        for state in [State::Waiting, State::Claimed, State::Done, State::Dead] {
            for found in spool.find::<Delivery>(state, &prefix)? {
                if found.record.event_id != id.to_string() {
                    continue;
                }
                match seen.iter_mut().find(|s| s.record.receiver == found.record.receiver) {
                    Some(s) if rank(found.state) < rank(s.state) => *s = found,
                    Some(_) => {}
                    None => seen.push(found),
                }
            }
        }
        if seen.first().is_some_and(|f| seen.len() >= f.record.receivers) {
            break;
        }
    }
    let Some(first) = seen.first().map(|f| f.record.clone()) else { return Ok(None) };
    seen.sort_by(|a, b| a.record.receiver.cmp(&b.record.receiver));
    let receivers: Vec<ReceiverState> = seen.into_iter().map(state).collect();
    Ok(Some(Receipt {
        event_id: first.event_id,
        sender: first.sender,
        user_name: first.user_name,
        logout_at: first.logout_at,
        received: first.received,
        unaccounted: first.receivers.saturating_sub(receivers.len()),
        receivers,
    }))
}

fn state(found: Found<Delivery>) -> ReceiverState {
    let d = found.record;
    let standing = match found.state {
        State::Done => Standing::Delivered { at: d.delivered.unwrap_or(d.received) },
        State::Dead => Standing::Dead {
            why: found.why.or_else(|| d.last.clone()).unwrap_or_else(|| "unknown".to_owned()),
        },
        State::Waiting => Standing::Pending { next_attempt: d.next_attempt, under_way: false },
        State::Claimed => Standing::Pending { next_attempt: d.next_attempt, under_way: true },
    };
    let last = matches!(standing, Standing::Pending { .. }).then_some(d.last).flatten();
    ReceiverState { name: d.receiver, standing, attempts: d.attempts, status: d.status, last }
}

impl Receipt {
    /// `[delivered, pending, dead]`.
    pub fn counts(&self) -> [usize; 3] {
        let mut counts = [0; 3];
        for r in &self.receivers {
            counts[match r.standing {
                Standing::Delivered { .. } => 0,
                Standing::Pending { .. } => 1,
                Standing::Dead { .. } => 2,
            }] += 1;
        }
        counts
    }

    /// The answer to its sender's `GET .../actions/logout/<event_id>/`.
    pub fn to_json(&self) -> Value {
        let receivers: Vec<Value> = self
            .receivers
            .iter()
            .map(|r| {
                let mut v = json!({"name": r.name, "attempts": r.attempts, "status": r.status});
                match &r.standing {
                    Standing::Delivered { at } => {
                        v["state"] = "delivered".into();
                        v["delivered_at"] = (*at).into();
                    }
                    Standing::Pending { next_attempt, under_way } => {
                        v["state"] = "pending".into();
                        v["under_way"] = (*under_way).into();
                        v["next_attempt"] = (*next_attempt).into();
                        v["last_error"] = r.last.clone().into();
                    }
                    Standing::Dead { why } => {
                        v["state"] = "dead".into();
                        v["why"] = why.clone().into();
                    }
                }
                v
            })
            .collect();
        let [delivered, pending, dead] = self.counts();
        json!({
            "event_id": self.event_id,
            "sender": self.sender,
            "user": self.user_name,
            "logout_at": self.logout_at,
            "received_at": self.received,
            "summary": {
                "delivered": delivered,
                "pending": pending,
                "dead": dead,
                "unaccounted": self.unaccounted,
            },
            "receivers": receivers,
        })
    }

    /// The command line's `status EVENT_ID`: one line for the event, one per receiver.
    pub fn to_text(&self) -> String {
        let [delivered, pending, dead] = self.counts();
        let mut out = format!(
            "event {} sender={} user={:?} logout_at={} received={} delivered={delivered} \
             pending={pending} dead={dead}",
            self.event_id,
            self.sender,
            self.user_name,
            rfc3339(self.logout_at),
            rfc3339(self.received)
        );
        if self.unaccounted > 0 {
            out.push_str(&format!(" unaccounted={}", self.unaccounted));
        }
        out.push('\n');
        for r in &self.receivers {
            let status = r.status.map_or("-".to_owned(), |s| s.to_string());
            let line = match &r.standing {
                Standing::Delivered { at } => format!("delivered {}", rfc3339(*at)),
                Standing::Pending { next_attempt, under_way: true } => {
                    format!("pending (under way; else next try {})", rfc3339(*next_attempt))
                }
                Standing::Pending { next_attempt, .. } => {
                    format!("pending, next try {}", rfc3339(*next_attempt))
                }
                Standing::Dead { why } => format!("dead: {why}"),
            };
            out.push_str(&format!("  {} {line} (attempts={} status={status}", r.name, r.attempts));
            if let Some(last) = &r.last {
                out.push_str(&format!(" last={last:?}"));
            }
            out.push_str(")\n");
        }
        out
    }
}
