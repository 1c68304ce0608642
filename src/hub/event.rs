//! An event (one sender's logout of one user) and its deliveries: one spool record per
//! receiver. Pure: the time and the randomness are handed in.

use std::fmt;

use serde_json::{Value, json};

use crate::config::HubReceiver;
use crate::spool::Record;

/// How far in the future a sender's `logout_at` may be (clock skew) and still be taken.
pub const SKEW_SECS: u64 = 60;

/// An event's id: `INSTANCE.SECONDS-RANDOM`, e.g. `hub1.01700000000-9f86d0818…` (32 hex
/// digits, 128 random bits). It names the hub instance that holds the event (a load balancer
/// or an operator can tell where to ask), is unguessable (a receipt is refused to anyone but
/// its sender anyway), and its `SECONDS-RANDOM` part (the key) starts the file names of the
/// event's records, so that they sort by age.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventId {
    pub instance: String,
    pub key: String,
}

impl EventId {
    pub fn new(instance: &str, received: u64, random: [u8; 16]) -> EventId {
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        EventId { instance: instance.to_owned(), key: format!("{received:011}-{hex}") }
    }

    /// An id as a sender gives it back; `None` for anything that is not one.
    pub fn parse(text: &str) -> Option<EventId> {
        let (instance, key) = text.split_once('.')?;
        let (secs, hex) = key.split_once('-')?;
        let valid = (1..=64).contains(&instance.len())
            && instance.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && secs.len() == 11
            && secs.bytes().all(|b| b.is_ascii_digit())
            && hex.len() == 32
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| EventId { instance: instance.to_owned(), key: key.to_owned() })
    }

    /// The prefix of its records' ids.
    pub fn record_prefix(&self) -> String {
        format!("{}-", self.key)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.instance, self.key)
    }
}

/// The event's time: the sender's `logout_at` when it is not in the future (beyond the skew,
/// and never later than the receipt) and not older than `max_age`; else the receipt time.
/// Whether the sender's time was taken.
pub fn logout_time(sent: Option<u64>, received: u64, max_age: u64) -> (u64, bool) {
    match sent {
        Some(at)
            if at <= received.saturating_add(SKEW_SECS)
                && received.saturating_sub(at) <= max_age =>
        {
            (at.min(received), true)
        }
        _ => (received, false),
    }
}

/// One receiver's delivery of one event: a spool record. It says *what* to deliver and to
/// *which* receiver by name; the URL, the form and the token come from the configuration of
/// whoever delivers it, never from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `KEY-RECEIVER`: unique in the spool, and the file name.
    pub id: String,
    pub event_id: String,
    pub receiver: String,
    /// How many receivers the event has (a receipt that finds fewer records looks again).
    pub receivers: usize,
    pub sender: String,
    pub user_name: String,
    /// The event's time, sent as `logout_at`.
    pub logout_at: u64,
    /// When the hub received it.
    pub received: u64,
    pub attempts: u32,
    pub next_attempt: u64,
    /// The last answer's HTTP status.
    pub status: Option<u16>,
    /// Why the last attempt failed.
    pub last: Option<String>,
    /// When it was delivered.
    pub delivered: Option<u64>,
}

/// The records of an event, one per receiver, each due at once.
pub fn deliveries(
    id: &EventId,
    sender: &str,
    user_name: &str,
    logout_at: u64,
    received: u64,
    receivers: &[HubReceiver],
) -> Vec<Delivery> {
    receivers
        .iter()
        .map(|r| Delivery {
            id: format!("{}{}", id.record_prefix(), r.name),
            event_id: id.to_string(),
            receiver: r.name.clone(),
            receivers: receivers.len(),
            sender: sender.to_owned(),
            user_name: user_name.to_owned(),
            logout_at,
            received,
            attempts: 0,
            next_attempt: received,
            status: None,
            last: None,
            delivered: None,
        })
        .collect()
}

impl Delivery {
    /// Older than the hub retries: dead-lettered instead.
    pub fn expired(&self, now: u64, max_age: u64) -> bool {
        now.saturating_sub(self.received) > max_age
    }
}

/// Set in every record: a hub delivery is never taken for another spool's record.
const KIND: &str = "hub-delivery";

impl Record for Delivery {
    fn id(&self) -> &str {
        &self.id
    }

    fn to_json(&self) -> String {
        json!({
            "kind": KIND,
            "id": self.id,
            "event_id": self.event_id,
            "receiver": self.receiver,
            "receivers": self.receivers,
            "sender": self.sender,
            "user_name": self.user_name,
            "logout_at": self.logout_at,
            "received": self.received,
            "attempts": self.attempts,
            "next_attempt": self.next_attempt,
            "status": self.status,
            "last": self.last,
            "delivered": self.delivered,
        })
        .to_string()
    }

    fn from_json(bytes: &[u8]) -> Option<Delivery> {
        let v: Value = serde_json::from_slice(bytes).ok()?;
        if v.get("kind")?.as_str()? != KIND {
            return None;
        }
        let s = |k: &str| v.get(k)?.as_str().map(str::to_owned);
        let n = |k: &str| v.get(k)?.as_u64();
        let optional = |k: &str| match v.get(k) {
            None | Some(Value::Null) => Some(None),
            Some(other) => Some(Some(other)),
        };
        Some(Delivery {
            id: s("id")?,
            event_id: s("event_id")?,
            receiver: s("receiver")?,
            receivers: usize::try_from(n("receivers")?).ok()?,
            sender: s("sender")?,
            user_name: s("user_name")?,
            logout_at: n("logout_at")?,
            received: n("received")?,
            attempts: u32::try_from(n("attempts")?).ok()?,
            next_attempt: n("next_attempt")?,
            status: match optional("status")? {
                None => None,
                Some(v) => Some(u16::try_from(v.as_u64()?).ok()?),
            },
            last: match optional("last")? {
                None => None,
                Some(v) => Some(v.as_str()?.to_owned()),
            },
            delivered: match optional("delivered")? {
                None => None,
                Some(v) => Some(v.as_u64()?),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Form;

    fn receiver(name: &str) -> HubReceiver {
        HubReceiver {
            name: name.into(),
            url: "https://a.example/logout".into(),
            form: Form::PostQuery,
            token_env: None,
        }
    }

    #[test]
    fn ids_name_the_instance_and_round_trip() {
        let id = EventId::new("hub-1", 1_700_000_000, [0xab; 16]);
        let text = id.to_string();
        assert_eq!(text, format!("hub-1.01700000000-{}", "ab".repeat(16)));
        assert_eq!(EventId::parse(&text), Some(id));
        for bad in [
            "",
            "hub.01700000000-abab",
            ".01700000000-abababababababababababababababab",
            "hub.1700000000-abababababababababababababababab",
            "hub.01700000000-ABABABABABABABABABABABABABABABAB",
            "h/b.01700000000-abababababababababababababababab",
            "hub.01700000000-abababababababababababababababab/",
            "hub..01700000000-abababababababababababababababab",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_senders_time_is_taken_within_bounds() {
        let now = 1_700_000_000;
        assert_eq!(logout_time(None, now, 86_400), (now, false));
        assert_eq!(logout_time(Some(now - 10), now, 86_400), (now - 10, true));
        assert_eq!(logout_time(Some(now + 30), now, 86_400), (now, true), "skew: never later");
        assert_eq!(logout_time(Some(now + 61), now, 86_400), (now, false), "the future");
        assert_eq!(logout_time(Some(now - 86_401), now, 86_400), (now, false), "too old");
        assert_eq!(logout_time(Some(u64::MAX), now, 86_400), (now, false));
        assert_eq!(logout_time(Some(0), now, 86_400), (now, false));
    }

    #[test]
    fn one_record_per_receiver_round_trips() {
        let id = EventId::new("h", 5, [1; 16]);
        let records = deliveries(&id, "kc", "bob", 4, 5, &[receiver("a"), receiver("b")]);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].id, format!("{}b", id.record_prefix()));
        assert!(records.iter().all(|r| r.receivers == 2 && r.next_attempt == 5));
        let mut done = records[0].clone();
        done.status = Some(200);
        done.last = Some("x \"y\"".into());
        done.delivered = Some(9);
        for r in [&records[0], &done] {
            assert_eq!(Delivery::from_json(r.to_json().as_bytes()).as_ref(), Some(r));
        }
        assert_eq!(Delivery::from_json(b"{\"id\":\"x\"}"), None);
        let signal = br#"{"id":"1","user_name":"a","user_agent":"b","endpoint":"e","created":1,"attempts":0,"next_attempt":1}"#;
        assert_eq!(Delivery::from_json(signal), None, "a relay signal is no delivery");
    }
}
