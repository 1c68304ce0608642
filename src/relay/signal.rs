//! The logout signal: its wire format, its spool record and the judgement of the hub's answer.
//! Pure: no I/O.

use serde_json::{Value, json};

/// One user's logout, to be announced to the hub. The record says *what* to announce; where to
/// send it and with which token come from the configuration of whoever sends it ([`Route`]),
/// never from the record: whoever could write a record must not choose where the token goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// Unique within the spool; also the file name.
    pub id: String,
    /// The network username (after `RELAY_USERNAME_MAP`), trimmed.
    pub user_name: String,
    /// The browser's, trimmed and at most [`MAX_USER_AGENT`] bytes, or `dacs_signout/VERSION`.
    pub user_agent: String,
    /// `{base}actions/logout/`: which configured hub it is for. A sender sends it only to an
    /// endpoint of its own configuration that is equal to this one.
    pub endpoint: String,
    /// When the signout happened (Unix seconds).
    pub created: u64,
    pub attempts: u32,
    pub next_attempt: u64,
}

/// How a signal for one hub is sent: from the sender's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub endpoint: String,
    /// The *name* of the variable holding the bearer token; never the token.
    pub token_env: String,
    pub timeout_secs: u64,
    pub max_age_secs: u64,
    /// `RELAY_SEND_LOGOUT_AT`: the body carries the signout's time.
    pub send_logout_at: bool,
}

/// The longest user agent sent (bytes): the hub echoes it, and its answer must fit the 64 KiB
/// read limit, or a signal it accepted would be retried, and relayed, again and again.
pub const MAX_USER_AGENT: usize = 1024;

/// The request body, compact, as the Knowledge Commons hub expects it:
/// `{"user_name":"john_doe","user_agent":"Mozilla/5.0"}`, with `"logout_at":SECS` after them
/// when the route asks for it.
pub fn body(signal: &Signal, route: &Route) -> String {
    let mut body = format!(
        "{{\"user_name\":{},\"user_agent\":{}",
        Value::from(signal.user_name.as_str()),
        Value::from(signal.user_agent.as_str())
    );
    if route.send_logout_at {
        body.push_str(&format!(",\"logout_at\":{}", signal.created));
    }
    body.push('}');
    body
}

/// The user agent sent for a browser's `User-Agent`: trimmed of Unicode white space (the hub
/// strips it, and refuses what is left empty: U+00A0 alone would be a 500 forever), at most
/// [`MAX_USER_AGENT`] bytes, and `fallback` when nothing is left.
pub fn user_agent(browser: Option<&str>, fallback: &str) -> String {
    let trimmed = browser.map_or("", str::trim);
    if trimmed.is_empty() {
        return fallback.to_owned();
    }
    let mut cut = trimmed.len().min(MAX_USER_AGENT);
    while !trimmed.is_char_boundary(cut) {
        cut -= 1;
    }
    trimmed[..cut].trim_end().to_owned()
}

/// `base` + `tail`, with exactly one `/` between.
pub fn join(base: &str, tail: &str) -> String {
    format!("{}/{tail}", base.trim_end_matches('/'))
}

/// What an attempt's answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Worth trying again later (5xx, 401/403, 3xx, network trouble).
    Retry(String),
    /// Refused for good (400, 404, 422, a 2xx that is not the hub's success body).
    Dead(String),
}

impl Verdict {
    pub fn outcome(&self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Retry(_) => "retry",
            Verdict::Dead(_) => "dead",
        }
    }

    /// Why it was not delivered.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Delivered => None,
            Verdict::Retry(why) | Verdict::Dead(why) => Some(why),
        }
    }
}

/// Success is a 2xx whose JSON has `data.user.user` equal to the name sent.
///
/// The Knowledge Commons hub answers a wrong token with 403, never 401 (both are retried: a
/// token being rotated), and a body it cannot validate with 500. A username holding `/` it
/// answers with 500 *after* acting on it (its profile URL cannot be built): a retry would
/// repeat the network-wide logout, so that 5xx is final.
pub fn judge(status: u16, body: &[u8], user_name: &str) -> Verdict {
    match status {
        200..=299 => {
            let echoed = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
                v.pointer("/data/user/user").and_then(Value::as_str).map(|u| u == user_name)
            });
            match echoed {
                Some(true) => Verdict::Delivered,
                Some(false) => Verdict::Dead(format!("HTTP {status} names another user")),
                None => Verdict::Dead(format!("HTTP {status} without data.user.user")),
            }
        }
        400 | 404 | 422 => Verdict::Dead(format!("HTTP {status}")),
        500..=599 if user_name.contains('/') => Verdict::Dead(format!(
            "HTTP {status} for a username with '/': the hub acts on it before it fails, \
             so it is not retried"
        )),
        _ => Verdict::Retry(format!("HTTP {status}")),
    }
}

/// At most 400 bytes of a body for the log: one line, controls replaced, the token removed.
pub fn excerpt(body: &[u8], token: Option<&str>) -> String {
    // Redact first: a token straddling the cut would otherwise be logged in part.
    let mut text = String::from_utf8_lossy(body).into_owned();
    if let Some(token) = token.filter(|t| t.len() >= 4) {
        text = text.replace(token, "[token]");
    }
    let mut cut = text.len().min(400);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// The wait before the next attempt: 15 s, 30 s, 60 s, 120 s, 240 s, then every 5 minutes.
/// Short, because a late signal is not harmless (the hub ends every session of the user,
/// including ones opened after the signout) and the default `RELAY_MAX_AGE_SECS` is short;
/// README, "Network-wide signout".
pub fn backoff_secs(attempts: u32) -> u64 {
    backoff(15, 300, attempts)
}

/// The wait before attempt `attempts + 1`: `first` seconds, doubled after each attempt, at
/// most `cap`.
pub fn backoff(first: u64, cap: u64, attempts: u32) -> u64 {
    first.saturating_mul(1 << attempts.saturating_sub(1).min(20)).min(cap)
}

/// `secs` spread by up to a quarter either way, by `random`: retries of many deliveries that
/// failed together (a receiver down) do not all come back at the same second.
pub fn jittered(secs: u64, random: u64) -> u64 {
    let spread = secs / 4;
    secs - spread + random % (2 * spread + 1)
}

impl crate::spool::Record for Signal {
    fn id(&self) -> &str {
        &self.id
    }

    fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    fn from_json(bytes: &[u8]) -> Option<Signal> {
        Signal::from_value(&serde_json::from_slice(bytes).ok()?)
    }
}

impl Signal {
    pub fn to_value(&self) -> Value {
        json!({
            "id": self.id,
            "user_name": self.user_name,
            "user_agent": self.user_agent,
            "endpoint": self.endpoint,
            "created": self.created,
            "attempts": self.attempts,
            "next_attempt": self.next_attempt,
        })
    }

    pub fn from_value(v: &Value) -> Option<Signal> {
        let s = |k: &str| v.get(k)?.as_str().map(str::to_owned);
        let n = |k: &str| v.get(k)?.as_u64();
        Some(Signal {
            id: s("id")?,
            user_name: s("user_name")?,
            user_agent: s("user_agent")?,
            endpoint: s("endpoint")?,
            created: n("created")?,
            attempts: u32::try_from(n("attempts")?).ok()?,
            next_attempt: n("next_attempt")?,
        })
    }

    /// Older than the route allows: dead-lettered instead of retried.
    pub fn expired(&self, now: u64, route: &Route) -> bool {
        now.saturating_sub(self.created) > route.max_age_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::Record;

    const OK: &str = r#"{"message":"Action successfully triggered.","data":{"user":{"user":"john_doe","url":"/api/v1/members/john_doe/"},"user_agent":"UA","app":["Profiles","Works"]}}"#;

    pub fn signal() -> Signal {
        Signal {
            id: "1-2-3".into(),
            user_name: "j\"d".into(),
            user_agent: "UA".into(),
            endpoint: "https://hub/api/v1/actions/logout/".into(),
            created: 1_700_000_000,
            attempts: 2,
            next_attempt: 1_700_000_060,
        }
    }

    pub fn route(send_logout_at: bool) -> Route {
        Route {
            endpoint: "https://hub/api/v1/actions/logout/".into(),
            token_env: "T".into(),
            timeout_secs: 15,
            max_age_secs: 900,
            send_logout_at,
        }
    }

    #[test]
    fn judgement_of_every_answer() {
        assert_eq!(judge(200, OK.as_bytes(), "john_doe"), Verdict::Delivered);
        assert_eq!(judge(202, OK.as_bytes(), "john_doe"), Verdict::Delivered);
        assert!(matches!(judge(200, OK.as_bytes(), "jane"), Verdict::Dead(_)));
        assert!(matches!(judge(200, b"<html>ok</html>", "john_doe"), Verdict::Dead(_)));
        assert!(matches!(judge(204, b"", "john_doe"), Verdict::Dead(_)));
        for status in [400, 404, 422] {
            assert!(matches!(judge(status, b"{}", "john_doe"), Verdict::Dead(_)));
        }
        for status in [301, 302, 401, 403, 429, 500, 502, 503] {
            assert!(
                matches!(judge(status, b"{\"detail\":\"x\"}", "john_doe"), Verdict::Retry(_)),
                "{status}"
            );
        }
    }

    #[test]
    fn a_username_with_a_slash_is_not_retried_after_a_5xx() {
        assert!(matches!(judge(500, b"{}", "a/b"), Verdict::Dead(ref why) if why.contains("'/'")));
        assert!(matches!(judge(403, b"{}", "a/b"), Verdict::Retry(_)), "a token problem is");
        assert!(matches!(judge(500, b"{}", "ab"), Verdict::Retry(_)));
    }

    #[test]
    fn body_is_compact_and_escaped_and_carries_the_time_on_request() {
        assert_eq!(body(&signal(), &route(false)), r#"{"user_name":"j\"d","user_agent":"UA"}"#);
        assert_eq!(
            body(&signal(), &route(true)),
            r#"{"user_name":"j\"d","user_agent":"UA","logout_at":1700000000}"#
        );
    }

    #[test]
    fn user_agents_are_trimmed_capped_and_never_blank() {
        assert_eq!(user_agent(Some("  Mozilla/5.0 "), "fb"), "Mozilla/5.0");
        assert_eq!(user_agent(Some("\u{a0}\u{3000}"), "fb"), "fb");
        assert_eq!(user_agent(None, "fb"), "fb");
        let long = "é".repeat(1000);
        let capped = user_agent(Some(&long), "fb");
        assert!(capped.len() <= MAX_USER_AGENT && capped.len() >= MAX_USER_AGENT - 1);
        assert!(capped.chars().all(|c| c == 'é'));
    }

    #[test]
    fn record_round_trips() {
        let s = signal();
        assert_eq!(Signal::from_json(s.to_json().as_bytes()), Some(s));
        assert_eq!(Signal::from_json(b"{\"id\":1}"), None);
        assert_eq!(Signal::from_json(b"[]"), None);
    }

    #[test]
    fn excerpts_are_short_and_redacted() {
        let long = "x".repeat(1000);
        assert_eq!(excerpt(long.as_bytes(), None).len(), 400);
        assert_eq!(
            excerpt(b"bad token s3cr3t-token\n", Some("s3cr3t-token")),
            "bad token [token] "
        );
        let straddling = format!("{}s3cr3t-token", "x".repeat(395));
        assert!(!excerpt(straddling.as_bytes(), Some("s3cr3t-token")).contains("s3cr3t"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!([1, 2, 3, 4, 5, 6].map(backoff_secs), [15, 30, 60, 120, 240, 300]);
        assert_eq!(backoff_secs(40), 300);
        assert_eq!([1, 2, 3, 4, 10].map(|n| backoff(2, 60, n)), [2, 4, 8, 16, 60]);
        assert_eq!(backoff(2, 60, u32::MAX), 60);
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        for random in [0, 1, 7, u64::MAX] {
            let j = jittered(100, random);
            assert!((75..=125).contains(&j), "{j}");
        }
        assert_eq!(jittered(2, 12345), 2);
        assert_eq!(jittered(0, 5), 0);
    }

    #[test]
    fn expiry_is_the_routes() {
        let s = signal();
        assert!(!s.expired(s.created + 900, &route(false)));
        assert!(s.expired(s.created + 901, &route(false)));
    }

    #[test]
    fn endpoints_join_with_one_slash() {
        assert_eq!(
            join("https://h/api/v1/", "actions/logout/"),
            "https://h/api/v1/actions/logout/"
        );
        assert_eq!(join("https://h/api/v1", "actions/logout/"), "https://h/api/v1/actions/logout/");
    }
}
