//! The call each receiver takes (§14: its request form), and what its answer means. Pure.

use serde_json::json;

use super::event::Delivery;
use crate::config::{Form, HubReceiver};
use crate::relay::signal::Verdict;
use crate::relay::transport::Method;

/// What to send a receiver for a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub url: String,
    /// A JSON body (`bcc-post`); `None`: none.
    pub json: Option<String>,
}

/// The receiver's URL with the user (in its form's parameter), `logout_at` and `event_id`
/// added to its query (form-encoded as the Profiles hub's `requests` does: a space is `+`,
/// `@` is `%40`); a query the URL already has is kept.
pub fn request(receiver: &HubReceiver, delivery: &Delivery) -> Request {
    let mut url = match url::Url::parse(&receiver.url) {
        Ok(url) => url,
        // The configuration checked it; a URL that no longer parses is sent as it is, and the
        // receiver's answer (or the transport's error) says what happened.
        Err(_) => return Request { method: Method::Get, url: receiver.url.clone(), json: None },
    };
    let user = match receiver.form {
        Form::PostQuery | Form::GetQuery => Some("username"),
        Form::BccGet => Some("userid"),
        Form::BccPost => None,
    };
    {
        let mut query = url.query_pairs_mut();
        if let Some(param) = user {
            query.append_pair(param, &delivery.user_name);
        }
        query
            .append_pair("logout_at", &delivery.logout_at.to_string())
            .append_pair("event_id", &delivery.event_id);
    }
    let (method, json) = match receiver.form {
        Form::PostQuery => (Method::Post, None),
        Form::GetQuery | Form::BccGet => (Method::Get, None),
        Form::BccPost => (Method::Post, Some(json!({"userId": delivery.user_name}).to_string())),
    };
    Request { method, url: url.into(), json }
}

/// A receiver's answer: any 2xx is delivered (receivers answer in their own words: the
/// guide's JSON, KCWorks', BCC's; the Profiles hub itself counts any status below 400).
/// Retried: 401 and 403 (a token being rotated), 408, 429, 5xx, and 3xx (never followed: a
/// POST turned into a GET, or the token sent elsewhere; the operator fixes the URL, and the
/// retries then reach it). Any other 4xx is refused for good.
pub fn judge(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        401 | 403 => Verdict::Retry(format!(
            "HTTP {status}: the receiver refuses the hub's token (rotated, or not yet installed?)"
        )),
        300..=399 => Verdict::Retry(format!("HTTP {status}: a redirect, not followed")),
        408 | 429 | 500..=599 => Verdict::Retry(format!("HTTP {status}")),
        _ => Verdict::Dead(format!("HTTP {status}")),
    }
}

/// An answer an operator must see at once: the receiver refuses the hub's token.
pub fn loud(status: Option<u16>) -> bool {
    matches!(status, Some(401 | 403))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::event::{EventId, deliveries};

    fn receiver(url: &str, form: Form) -> HubReceiver {
        HubReceiver { name: "r".into(), url: url.into(), form, token_env: None }
    }

    fn delivery() -> Delivery {
        let id = EventId::new("h", 1_700_000_000, [0x0f; 16]);
        let r = receiver("https://x.example/", Form::GetQuery);
        deliveries(&id, "kc", "amy b@uni", 1_699_999_990, 1_700_000_000, &[r]).remove(0)
    }

    #[test]
    fn each_form_as_its_receivers_take_it() {
        let d = delivery();
        let tail = format!("logout_at=1699999990&event_id=h.01700000000-{}", "0f".repeat(16));
        let post = request(&receiver("https://p.example/api/logout/", Form::PostQuery), &d);
        assert_eq!(
            post,
            Request {
                method: Method::Post,
                url: format!("https://p.example/api/logout/?username=amy+b%40uni&{tail}"),
                json: None
            }
        );
        let get = request(&receiver("http://g.example/logout?app=works", Form::GetQuery), &d);
        assert_eq!(get.method, Method::Get);
        assert_eq!(
            get.url,
            format!("http://g.example/logout?app=works&username=amy+b%40uni&{tail}")
        );
        let bcc = request(&receiver("https://b.example/logout", Form::BccGet), &d);
        assert_eq!(bcc.url, format!("https://b.example/logout?userid=amy+b%40uni&{tail}"));
        let json = request(&receiver("https://b.example/logout", Form::BccPost), &d);
        assert_eq!(json.method, Method::Post);
        assert_eq!(json.url, format!("https://b.example/logout?{tail}"));
        assert_eq!(json.json.as_deref(), Some(r#"{"userId":"amy b@uni"}"#));
    }

    #[test]
    fn every_answer_has_its_verdict() {
        for status in [200, 201, 204, 299] {
            assert_eq!(judge(status), Verdict::Delivered);
        }
        for status in [301, 302, 307, 401, 403, 408, 429, 500, 502, 503, 504] {
            assert!(matches!(judge(status), Verdict::Retry(_)), "{status}");
        }
        for status in [400, 404, 405, 410, 422] {
            assert!(matches!(judge(status), Verdict::Dead(_)), "{status}");
        }
        assert!(loud(Some(401)) && loud(Some(403)) && !loud(Some(500)) && !loud(None));
    }
}
