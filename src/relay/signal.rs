//! The logout signal: its wire format, its spool record and the judgement of the hub's answer.
//! Pure: no I/O.

use serde_json::{Value, json};

/// One user's logout, to be announced to the hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// Unique within the spool; also the file name.
    pub id: String,
    /// The network username (after `RELAY_USERNAME_MAP`).
    pub user_name: String,
    pub user_agent: String,
    /// `{base}actions/logout/`.
    pub endpoint: String,
    /// The *name* of the variable holding the bearer token; never the token.
    pub token_env: String,
    pub timeout_secs: u64,
    pub max_age_secs: u64,
    /// Unix seconds.
    pub created: u64,
    pub attempts: u32,
    pub next_attempt: u64,
}

/// The request body, compact, as the Knowledge Commons hub expects it:
/// `{"user_name":"john_doe","user_agent":"Mozilla/5.0"}`.
pub fn body(user_name: &str, user_agent: &str) -> String {
    format!(
        "{{\"user_name\":{},\"user_agent\":{}}}",
        Value::from(user_name),
        Value::from(user_agent)
    )
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

/// Exponential backoff: 30 s, 60 s, 120 s, … at most an hour.
pub fn backoff_secs(attempts: u32) -> u64 {
    30u64.saturating_mul(1 << attempts.saturating_sub(1).min(7)).min(3600)
}

impl Signal {
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    pub fn to_value(&self) -> Value {
        json!({
            "id": self.id,
            "user_name": self.user_name,
            "user_agent": self.user_agent,
            "endpoint": self.endpoint,
            "token_env": self.token_env,
            "timeout_secs": self.timeout_secs,
            "max_age_secs": self.max_age_secs,
            "created": self.created,
            "attempts": self.attempts,
            "next_attempt": self.next_attempt,
        })
    }

    pub fn from_json(text: &[u8]) -> Option<Signal> {
        Signal::from_value(&serde_json::from_slice(text).ok()?)
    }

    pub fn from_value(v: &Value) -> Option<Signal> {
        let s = |k: &str| v.get(k)?.as_str().map(str::to_owned);
        let n = |k: &str| v.get(k)?.as_u64();
        Some(Signal {
            id: s("id")?,
            user_name: s("user_name")?,
            user_agent: s("user_agent")?,
            endpoint: s("endpoint")?,
            token_env: s("token_env")?,
            timeout_secs: n("timeout_secs")?,
            max_age_secs: n("max_age_secs")?,
            created: n("created")?,
            attempts: u32::try_from(n("attempts")?).ok()?,
            next_attempt: n("next_attempt")?,
        })
    }

    pub fn expired(&self, now: u64) -> bool {
        now.saturating_sub(self.created) > self.max_age_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"message":"Action successfully triggered.","data":{"user":{"user":"john_doe","url":"/profiles/john_doe/"},"user_agent":"UA","app":["Profiles","Works"]}}"#;

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
    fn body_is_compact_and_escaped() {
        assert_eq!(
            body("john_doe", "Mozilla/5.0 \"x\""),
            r#"{"user_name":"john_doe","user_agent":"Mozilla/5.0 \"x\""}"#
        );
    }

    #[test]
    fn record_round_trips() {
        let s = Signal {
            id: "1-2-3".into(),
            user_name: "j\"d".into(),
            user_agent: "UA".into(),
            endpoint: "https://hub/api/v1/actions/logout/".into(),
            token_env: "T".into(),
            timeout_secs: 15,
            max_age_secs: 86400,
            created: 1_700_000_000,
            attempts: 2,
            next_attempt: 1_700_000_060,
        };
        assert_eq!(Signal::from_json(s.to_json().as_bytes()), Some(s));
        assert_eq!(Signal::from_json(b"{\"id\":1}"), None);
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
        assert_eq!([1, 2, 3, 4].map(backoff_secs), [30, 60, 120, 240]);
        assert_eq!(backoff_secs(40), 3600);
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
