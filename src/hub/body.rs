//! A sender's body (§9's wire format, as the Profiles hub takes it): `user_name` and
//! `user_agent`, non-empty strings once trimmed of Unicode white space (the trimmed values are
//! what the answer echoes), and an optional `logout_at`. Unknown fields are ignored. Pure.
//!
//! Where the real hub answers 500 (a missing, blank or mistyped field, malformed JSON, a body
//! that is not an object, an unsupported type), this one answers a 4xx that names the field.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::cgi::args;
use crate::error::Error;

/// The longest `user_name` taken (bytes): a network username; the receivers take no longer.
pub const MAX_USER_NAME: usize = 256;
/// The most fields a JSON body may have: more is not a logout.
const MAX_FIELDS: usize = 64;

/// What a sender announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logout {
    pub user_name: String,
    pub user_agent: String,
    /// Unix seconds of the signout, as the sender says (whole seconds).
    pub logout_at: Option<u64>,
}

/// The body of a `POST .../actions/logout/`, by its `Content-Type`: JSON, or a form (the
/// real hub takes both; senders send JSON). Anything else is a 415.
pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Logout, Error> {
    let media =
        content_type.and_then(|t| t.split(';').next()).map(|t| t.trim().to_ascii_lowercase());
    let fields = match media.as_deref() {
        Some("application/json") => json_fields(body)?,
        Some("application/x-www-form-urlencoded") => form_fields(body)?,
        _ => {
            return Err(Error::unsupported_media_type(
                "the body must be application/json: {\"user_name\": ..., \"user_agent\": ...}",
            ));
        }
    };
    validate(&fields)
}

/// The members of a JSON object, in order, repeats included.
struct Fields(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Fields, D::Error> {
        struct Members;
        impl<'de> Visitor<'de> for Members {
            type Value = Fields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, Value>()? {
                    if members.len() == MAX_FIELDS {
                        return Err(de::Error::custom("too many fields"));
                    }
                    members.push(member);
                }
                Ok(Fields(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

fn json_fields(body: &[u8]) -> Result<Vec<(String, Value)>, Error> {
    if std::str::from_utf8(body).is_err() {
        return Err(Error::bad_request("the body is not UTF-8"));
    }
    match serde_json::from_slice::<Fields>(body) {
        Ok(Fields(members)) => Ok(members),
        Err(e) if e.is_data() => Err(Error::bad_request(
            "the body must be a JSON object: {\"user_name\": ..., \"user_agent\": ...}",
        )
        .with_detail(e.to_string())),
        Err(e) => Err(Error::bad_request("the body is not valid JSON").with_detail(e.to_string())),
    }
}

fn form_fields(body: &[u8]) -> Result<Vec<(String, Value)>, Error> {
    let pairs = args::pairs(body)?;
    Ok(pairs.into_iter().map(|(name, value)| (name, Value::String(value))).collect())
}

const FIELDS: [&str; 3] = ["user_name", "user_agent", "logout_at"];

fn validate(fields: &[(String, Value)]) -> Result<Logout, Error> {
    for (i, (name, _)) in fields.iter().enumerate() {
        if fields[..i].iter().any(|(seen, _)| seen == name) {
            return Err(match FIELDS.iter().find(|f| *f == name) {
                Some(field) => {
                    Error::bad_request(format!("{field} is given twice")).in_field(field)
                }
                None => Error::bad_request("a field is given twice"),
            });
        }
    }
    let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let user_name = text(get("user_name"), "user_name")?;
    if user_name.len() > MAX_USER_NAME {
        return Err(Error::bad_request(format!("user_name is longer than {MAX_USER_NAME} bytes"))
            .in_field("user_name"));
    }
    if user_name.chars().any(char::is_control) {
        return Err(Error::bad_request("user_name holds a control character").in_field("user_name"));
    }
    let user_agent = text(get("user_agent"), "user_agent")?;
    let logout_at = match get("logout_at") {
        None | Some(Value::Null) => None,
        Some(value) => Some(seconds(value).ok_or_else(|| {
            Error::bad_request("logout_at must be Unix seconds (a whole number)")
                .in_field("logout_at")
        })?),
    };
    Ok(Logout { user_name, user_agent, logout_at })
}

/// A string field, trimmed of Unicode white space (as the real hub does), not empty, no NUL.
fn text(value: Option<&Value>, field: &'static str) -> Result<String, Error> {
    let refuse = |why: &str| Error::bad_request(format!("{field} {why}")).in_field(field);
    match value {
        None => Err(refuse("is missing")),
        Some(Value::String(s)) => {
            let trimmed = s.trim();
            if trimmed.is_empty() {
                Err(refuse("is empty"))
            } else if trimmed.contains('\0') {
                Err(refuse("holds a NUL character"))
            } else {
                Ok(trimmed.to_owned())
            }
        }
        Some(_) => Err(refuse("must be a string")),
    }
}

/// Unix seconds: a non-negative number (a fraction is dropped: Python's `time.time()`), or a
/// string of digits (a form).
fn seconds(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            let f = n.as_f64()?;
            // `as` saturates: a huge value becomes u64::MAX, which no event time accepts.
            (f.is_finite() && f >= 0.0).then_some(f as u64)
        }),
        Value::String(s)
            if !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()) =>
        {
            s.parse().ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: Option<&str> = Some("application/json");

    fn field(result: Result<Logout, Error>) -> (u16, Option<&'static str>) {
        let e = result.unwrap_err();
        (e.status().0, e.field)
    }

    #[test]
    fn the_wire_format_of_section_9() {
        let body = br#"{"user_name": " bob ", "user_agent": "Mozilla/5.0\u00a0", "logout_at": 1700000000, "extra": [1, {"x": null}]}"#;
        assert_eq!(
            parse(Some("application/json; charset=utf-8"), body).unwrap(),
            Logout {
                user_name: "bob".into(),
                user_agent: "Mozilla/5.0".into(),
                logout_at: Some(1_700_000_000)
            }
        );
        let plain = parse(JSON, br#"{"user_name":"amy","user_agent":"UA"}"#).unwrap();
        assert_eq!(plain.logout_at, None);
        let form = parse(
            Some("application/x-www-form-urlencoded"),
            b"user_name=amy%40x&user_agent=A+B&logout_at=17",
        )
        .unwrap();
        assert_eq!((form.user_name.as_str(), form.user_agent.as_str()), ("amy@x", "A B"));
        assert_eq!(form.logout_at, Some(17));
        assert_eq!(
            parse(JSON, br#"{"user_name":"a","user_agent":"b","logout_at":1.9}"#)
                .unwrap()
                .logout_at,
            Some(1)
        );
        assert_eq!(
            parse(JSON, br#"{"user_name":"a","user_agent":"b","logout_at":null}"#)
                .unwrap()
                .logout_at,
            None
        );
    }

    #[test]
    fn every_bad_field_is_named() {
        for (body, name) in [
            (&br#"{"user_agent":"UA"}"#[..], "user_name"),
            (br#"{"user_name":"","user_agent":"UA"}"#, "user_name"),
            (br#"{"user_name":" \u3000\t","user_agent":"UA"}"#, "user_name"),
            (br#"{"user_name":123,"user_agent":"UA"}"#, "user_name"),
            (br#"{"user_name":null,"user_agent":"UA"}"#, "user_name"),
            (br#"{"user_name":["bob"],"user_agent":"UA"}"#, "user_name"),
            (br#"{"user_name":"a\nb","user_agent":"UA"}"#, "user_name"),
            (br#"{"user_name":"bob"}"#, "user_agent"),
            (br#"{"user_name":"bob","user_agent":"  "}"#, "user_agent"),
            (br#"{"user_name":"bob","user_agent":true}"#, "user_agent"),
            (br#"{"user_name":"bob","user_agent":"a\u0000b"}"#, "user_agent"),
            (br#"{"user_name":"bob","user_agent":"UA","logout_at":"soon"}"#, "logout_at"),
            (br#"{"user_name":"bob","user_agent":"UA","logout_at":-5}"#, "logout_at"),
            (br#"{"user_name":"bob","user_name":"eve","user_agent":"UA"}"#, "user_name"),
        ] {
            assert_eq!(
                field(parse(JSON, body)),
                (400, Some(name)),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let long = format!(r#"{{"user_name":"{}","user_agent":"UA"}}"#, "a".repeat(257));
        assert_eq!(field(parse(JSON, long.as_bytes())), (400, Some("user_name")));
    }

    #[test]
    fn bodies_that_are_no_logout() {
        for body in [
            &b""[..],
            b"{",
            b"[]",
            b"\"bob\"",
            b"null",
            b"{\"user_name\":\"a\",\"user_agent\":\"b\"} trailing",
            b"{\"user_name\":\"\xff\",\"user_agent\":\"b\"}",
            b"\xef\xbb\xbf{\"user_name\":\"a\",\"user_agent\":\"b\"}",
            b"{\"x\":1,\"x\":2,\"user_name\":\"a\",\"user_agent\":\"b\"}",
            b"{\"user_name\":\"\\ud800\",\"user_agent\":\"b\"}",
        ] {
            assert_eq!(field(parse(JSON, body)), (400, None), "{}", String::from_utf8_lossy(body));
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let nested = format!(r#"{{"user_name":"a","user_agent":"b","x":{deep}}}"#);
        assert_eq!(field(parse(JSON, nested.as_bytes())), (400, None), "recursion is bounded");
        let many: String = (0..100).map(|i| format!("\"f{i}\":0,")).collect();
        let wide = format!(r#"{{{many}"user_name":"a","user_agent":"b"}}"#);
        assert_eq!(field(parse(JSON, wide.as_bytes())), (400, None));
        for kind in [None, Some("text/plain"), Some("multipart/form-data; boundary=x"), Some("")] {
            assert_eq!(field(parse(kind, br#"{"user_name":"a","user_agent":"b"}"#)), (415, None));
        }
        assert_eq!(
            field(parse(
                Some("application/x-www-form-urlencoded"),
                b"user_name=a&user_name=b&user_agent=c"
            )),
            (400, Some("user_name"))
        );
    }

    /// What the sender is told: a body that is JSON but not an object, or not JSON at all.
    #[test]
    fn the_two_kinds_of_bad_json_are_told_apart() {
        let e = parse(JSON, b"[1]").unwrap_err();
        assert!(e.message.contains("must be a JSON object"), "{}", e.message);
        assert!(e.detail.unwrap().contains("expected a JSON object"));
        let e = parse(JSON, b"{\"user_name\"").unwrap_err();
        assert_eq!(e.message, "the body is not valid JSON");
    }

    #[test]
    fn a_user_name_of_exactly_256_bytes_is_taken() {
        let body = format!(r#"{{"user_name":"{}","user_agent":"UA"}}"#, "a".repeat(256));
        assert_eq!(parse(JSON, body.as_bytes()).unwrap().user_name.len(), 256);
    }

    /// A form's `logout_at` is digits only: Rust's own parser would take a sign.
    #[test]
    fn logout_at_in_a_form_is_digits_only() {
        let form = |at: &str| {
            let body = format!("user_name=a&user_agent=b&logout_at={at}");
            parse(Some("application/x-www-form-urlencoded"), body.as_bytes())
        };
        assert_eq!(form("17").unwrap().logout_at, Some(17));
        for bad in ["%2B17", "17x", "", "123456789012345678901", "-1"] {
            assert_eq!(field(form(bad)), (400, Some("logout_at")), "{bad:?}");
        }
    }
}
