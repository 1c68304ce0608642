//! The receiver role (§11): a hub's logout reaches this federation. The hub calls it when a
//! user signed out elsewhere; from then on that user's credentials that existed before the
//! signout are refused by the guard, though the browser still holds them.
//!
//! ```text
//! request    the forms hubs send: POST ?username= (Profiles), GET ?username= (the guide),
//!            GET ?userid= / ?userId=, POST {"userId": ...} (BCC); logout_at, event_id
//! token      Authorization: Bearer, compared in constant time with each configured token
//! identities the network username to FED::JUR:USER keys
//! keep       the registry, else the spool (applied by `dacs_signout relay`), else 503
//! ```

use std::io::Read;
use std::time::SystemTime;

use serde_json::Value;

use crate::cgi::args::Arguments;
use crate::cgi::bearer;
use crate::cgi::body::read_body;
use crate::cgi::{Env, Response};
use crate::config::{Loaded, Settings};
use crate::error::Error;
use crate::log::LogLine;
use crate::registry::revocation::Revoke;
use crate::registry::{self, Revocation, UserKey, user_key};
use crate::relay::UsernameMap;
use crate::spool::Spool;
use crate::time::{unix_millis, unix_secs};

/// The longest network username taken (bytes).
const MAX_USERNAME: usize = 256;
/// How far in the future a `logout_at` may be (clock skew) before it is clamped to now: nobody
/// can lock a user out of the future.
const SKEW_MS: u64 = 60_000;

/// What a hub asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub method: &'static str,
    pub username: String,
    /// Unix seconds, as the hub sent it.
    pub logout_at: Option<u64>,
    pub event_id: Option<String>,
}

/// Where a revocation was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Registry,
    /// The registry could not take it: in the spool, for `dacs_signout relay`.
    Spool,
}

/// What happened to one call: its log line.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub at: u64,
    pub status: u16,
    pub method: Option<&'static str>,
    pub config: Option<String>,
    pub user: Option<String>,
    pub identities: Vec<UserKey>,
    pub kept: Option<Kept>,
    pub registry_error: Option<String>,
    pub event_id: Option<String>,
    pub remote: Option<String>,
    pub error: Option<Error>,
}

impl Outcome {
    pub fn log_line(&self) -> String {
        let mut line = LogLine::default();
        line.set("status", self.status)
            .maybe("method", self.method)
            .maybe("config", self.config.as_ref())
            .maybe("user", self.user.as_ref());
        if !self.identities.is_empty() {
            line.set("revoked", self.identities.join(","));
        }
        let kept = self.kept.map(|kept| match kept {
            Kept::Registry => "registry",
            Kept::Spool => "spool",
        });
        line.maybe("kept", kept)
            .maybe("registry_error", self.registry_error.as_ref())
            .maybe("event_id", self.event_id.as_ref())
            .maybe("remote", self.remote.as_ref());
        if let Some(error) = &self.error {
            line.set("error", &error.message).maybe("detail", error.detail.as_ref());
        }
        line.render_as(self.at, "dacs_logout_receiver")
    }

    pub fn exit_code(&self) -> i32 {
        self.error.as_ref().map_or(0, Error::exit_code)
    }
}

/// Serves one call at `now`: the response and what happened.
pub fn serve(
    env: &Env,
    stdin: &mut dyn Read,
    config: &Loaded,
    now: SystemTime,
) -> (Response, Outcome) {
    let mut outcome = Outcome {
        at: unix_secs(now),
        remote: env.soft("REMOTE_ADDR").map(str::to_owned),
        ..Outcome::default()
    };
    match respond(env, stdin, config, now, &mut outcome) {
        Ok(response) => {
            outcome.status = response.status;
            (response, outcome)
        }
        Err(e) => {
            let response = error(&e);
            outcome.status = response.status;
            outcome.error = Some(e);
            (response, outcome)
        }
    }
}

fn respond(
    env: &Env,
    stdin: &mut dyn Read,
    config: &Loaded,
    now: SystemTime,
    outcome: &mut Outcome,
) -> Result<Response, Error> {
    let config = config.as_ref().map_err(|(source, e)| {
        outcome.config = Some(source.to_string());
        Error::misconfigured(format!("{source}: {e}"))
    })?;
    outcome.config = Some(config.source.to_string());
    let server = crate::cgi::server(env);
    let settings = config
        .settings(&server.host_path())
        .map_err(|e| Error::misconfigured(format!("{}: {e}", config.source)))?;
    let registry = settings.registry.as_ref().ok_or_else(|| {
        Error::misconfigured("no REGISTRY is configured: the receiver has nowhere to keep a logout")
    })?;
    // The token first: nothing about the request is looked at for a caller who has none.
    authorize(env, &settings)?;
    let call = read(env, stdin)?;
    outcome.method = Some(call.method);
    outcome.user = Some(call.username.clone());
    outcome.event_id = call.event_id.clone();
    let identities = identities(&call.username, &settings)?;
    outcome.identities = identities.clone();
    let mut store = registry::open(registry, &settings.rules.federation_name, env);
    let received_ms = match store.as_mut() {
        Ok(store) => store.now_ms().unwrap_or_else(|_| unix_millis(now)),
        Err(_) => unix_millis(now),
    };
    let before_ms = logout_time(call.logout_at, received_ms);
    let kept = match store.and_then(|mut store| {
        identities.iter().try_for_each(|user| store.revoke_user(user, before_ms))
    }) {
        Ok(()) => Kept::Registry,
        Err(e) => {
            outcome.registry_error = Some(e.to_string());
            spool(&settings, &identities, before_ms, now).map_err(|spool_error| {
                Error::unavailable(
                    "the logout could not be kept: try again",
                    format!("registry: {e}; spool: {spool_error}"),
                )
            })?;
            Kept::Spool
        }
    };
    outcome.kept = Some(kept);
    Ok(success(&call.username))
}

/// `Authorization: Bearer T` against every configured token, in constant time. A receiver with
/// no token configured refuses every call (a misconfiguration, not an open door).
fn authorize(env: &Env, settings: &Settings) -> Result<(), Error> {
    let tokens: Vec<&str> = settings
        .receiver
        .token_envs
        .iter()
        .filter_map(|name| env.soft(name))
        .filter(|t| !t.is_empty())
        .collect();
    if tokens.is_empty() {
        let names = settings.receiver.token_envs.join(", $");
        return Err(Error::misconfigured(format!("no receiver token: ${names} is not set")));
    }
    let Some(presented) = bearer::presented(env) else {
        return Err(Error::unauthorized("a bearer token is required"));
    };
    match bearer::matching(presented, &tokens) {
        Some(_) => Ok(()),
        None => Err(Error::unauthorized("the bearer token is not accepted")),
    }
}

/// The call, from its query and (for BCC's JSON form) its body.
pub fn read(env: &Env, stdin: &mut dyn Read) -> Result<Call, Error> {
    let method = match env.text("REQUEST_METHOD")? {
        Some("GET") => "GET",
        Some("POST") => "POST",
        Some(_) => return Err(Error::method_not_allowed("only GET and POST are served")),
        None => return Err(Error::bad_request("REQUEST_METHOD is missing: not a CGI request")),
    };
    let args = Arguments::parse(env.text("QUERY_STRING")?.unwrap_or("").as_bytes())?;
    let given = |name: &str| args.get(name).filter(|v| !v.is_empty()).map(str::to_owned);
    let mut username = given("username").or_else(|| given("userid")).or_else(|| given("userId"));
    if method == "POST" {
        // Any content type, an empty body: the real hub sends `application/json` and nothing.
        let body = read_body(env, stdin)?;
        if !body.iter().all(u8::is_ascii_whitespace) {
            let json: Value = serde_json::from_slice(&body)
                .map_err(|_| Error::bad_request("the body is not JSON ({\"userId\": ...})"))?;
            if username.is_none() {
                username = json.get("userId").and_then(Value::as_str).map(str::to_owned);
            }
        }
    }
    let username = username.filter(|u| !u.trim().is_empty()).ok_or_else(|| {
        Error::bad_request("the username is missing (username, userid or userId)")
    })?;
    if username.len() > MAX_USERNAME || username.chars().any(char::is_control) {
        return Err(Error::bad_request(
            "the username is longer than 256 bytes or holds a control character",
        ));
    }
    let logout_at = match given("logout_at") {
        None => None,
        Some(text) => {
            Some(text.parse().map_err(|_| Error::bad_request("logout_at must be Unix seconds"))?)
        }
    };
    Ok(Call {
        method,
        username: username.trim().to_owned(),
        logout_at,
        event_id: given("event_id"),
    })
}

/// The network username's DACS identities: `JUR:U` for this section's own jurisdiction, or
/// what `RECEIVER_USERNAME_MAP` makes of it (`JUR:USER`, a bare `USER`, or several, comma-
/// separated), keyed `FED::JUR:USER` (lowercase under `NAME_COMPARE "nocase"`).
pub fn identities(username: &str, settings: &Settings) -> Result<Vec<UserKey>, Error> {
    let rules = &settings.rules;
    let mapped = match &settings.receiver.username_map {
        None => username.to_owned(),
        Some(UsernameMap { pattern, replacement }) => {
            let re = regex::Regex::new(pattern)
                .map_err(|e| Error::misconfigured(format!("RECEIVER_USERNAME_MAP: {e}")))?;
            re.replace(username, replacement.as_str()).into_owned()
        }
    };
    let mut keys: Vec<UserKey> = Vec::new();
    for form in mapped.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (jurisdiction, user) = match form.split_once(':') {
            Some((j, u)) if crate::credentials::identity::is_name(j) => (j, u),
            _ => (rules.jurisdiction_name.as_str(), form),
        };
        let key = user_key(&rules.federation_name, jurisdiction, user, rules.name_compare);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(Error::bad_request("the username maps to no identity"));
    }
    Ok(keys)
}

/// The time the revocation takes effect: the end of the hub's `logout_at` second (it is whole
/// seconds, and a credential seen earlier in that second, before the signout, must not escape),
/// unless that is later than now (plus a minute of skew), when it is now; without one, the time
/// of receipt.
pub fn logout_time(logout_at: Option<u64>, received_ms: u64) -> u64 {
    match logout_at.map(|secs| secs.saturating_mul(1000).saturating_add(999)) {
        Some(at) if at <= received_ms.saturating_add(SKEW_MS) => at,
        _ => received_ms,
    }
}

/// The revocation, durably in the spool (the same spool, and the same drain, as the relay's).
fn spool(
    settings: &Settings,
    users: &[UserKey],
    before_ms: u64,
    now: SystemTime,
) -> std::io::Result<()> {
    let secs = unix_secs(now);
    let nanos = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let record = Revocation {
        id: format!("{secs:011}-{nanos:09}-{}-r", std::process::id()),
        revoke: Revoke::Users { users: users.to_vec(), before_ms },
        created: secs,
        attempts: 0,
        next_attempt: secs,
    };
    Spool::create(std::path::Path::new(&settings.relay.spool_dir), settings.relay.spool_max)?
        .put(&record)
}

fn json(status: u16, reason: &'static str, body: Value) -> Response {
    let mut r = Response::new(status, reason);
    r.header("Content-Type", "application/json");
    r.body = format!("{body}\n").into_bytes();
    r
}

/// The guide's answer, also for a user never seen (the hub's health probe counts on it).
fn success(username: &str) -> Response {
    json(
        200,
        "OK",
        serde_json::json!({"status": "success", "message": format!("User {username} logged out")}),
    )
}

fn error(e: &Error) -> Response {
    let (code, reason) = e.status();
    let mut r = json(code, reason, serde_json::json!({"status": "error", "message": e.message}));
    match code {
        401 => {
            r.header("WWW-Authenticate", "Bearer");
        }
        405 => {
            r.header("Allow", "GET, POST");
        }
        _ => {}
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logout_times_are_clamped_to_now() {
        let now = 1_700_000_000_000;
        assert_eq!(logout_time(None, now), now);
        assert_eq!(
            logout_time(Some(1_600_000_000), now),
            1_600_000_000_999,
            "a late call keeps its time, to the end of its second"
        );
        assert_eq!(logout_time(Some(1_700_000_030), now), 1_700_000_030_999, "within the skew");
        assert_eq!(logout_time(Some(1_800_000_000), now), now, "never in the future");
        assert_eq!(logout_time(Some(u64::MAX), now), now);
    }
}
