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

/// The network username's DACS identities, keyed `FED::JUR:USER` (lowercase under
/// `NAME_COMPARE "nocase"`): `JUR:U` for this section's own jurisdiction, the username whole,
/// whatever it holds; or what `RECEIVER_USERNAME_MAP` makes of it: `JUR:USER` forms or bare
/// `USER`s (this jurisdiction), several comma-separated.
pub fn identities(username: &str, settings: &Settings) -> Result<Vec<UserKey>, Error> {
    let rules = &settings.rules;
    let own = rules.jurisdiction_name.as_str();
    let key = |jurisdiction: &str, user: &str| {
        user_key(&rules.federation_name, jurisdiction, user, rules.name_compare)
    };
    let Some(UsernameMap { pattern, replacement }) = &settings.receiver.username_map else {
        return Ok(vec![key(own, username)]);
    };
    let re = regex::Regex::new(pattern)
        .map_err(|e| Error::misconfigured(format!("RECEIVER_USERNAME_MAP: {e}")))?;
    let mapped = re.replace(username, replacement.as_str());
    let mut keys: Vec<UserKey> = Vec::new();
    for form in mapped.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        let (jurisdiction, user) = match form.split_once(':') {
            Some((j, u)) if crate::credentials::identity::is_name(j) => (j, u),
            _ => (own, form),
        };
        let key = key(jurisdiction, user);
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

    fn settings(extra: &str) -> Settings {
        let text = format!(
            "<Configuration><Default>FEDERATION_NAME \"EX\"\nFEDERATION_DOMAIN \"example.org\"\n\
             JURISDICTION_NAME \"J\"\nRECEIVER_TOKEN_ENV \"T1\"\nRECEIVER_TOKEN_ENV \"T2\"\n\
             {extra}\n</Default></Configuration>"
        );
        let config = crate::config::Config::parse(&text, crate::config::Source::BuiltIn).unwrap();
        config.settings("").unwrap()
    }

    fn call(method: &str, query: &str, body: &str) -> Result<Call, Error> {
        let length = body.len().to_string();
        let env = Env::from_pairs([
            ("REQUEST_METHOD", method),
            ("QUERY_STRING", query),
            ("CONTENT_LENGTH", length.as_str()),
            ("CONTENT_TYPE", "application/json"),
        ]);
        read(&env, &mut body.as_bytes())
    }

    fn status(result: Result<impl std::fmt::Debug, Error>) -> u16 {
        result.map_or_else(|e| e.status().0, |_| 200)
    }

    #[test]
    fn only_a_configured_token_is_accepted() {
        let settings = settings("");
        let env = |pairs: &[(&'static str, &'static str)]| Env::from_pairs(pairs.iter().copied());
        let bearer = |t: &'static str| ("HTTP_AUTHORIZATION", t);
        assert_eq!(authorize(&env(&[("T1", "one"), bearer("Bearer one")]), &settings), Ok(()));
        assert_eq!(authorize(&env(&[("T2", "two"), bearer("Bearer two")]), &settings), Ok(()));
        let wrong = env(&[("T1", "one"), bearer("Bearer two")]);
        assert_eq!(status(authorize(&wrong, &settings)), 401);
        assert_eq!(status(authorize(&env(&[("T1", "one")]), &settings)), 401);
        // No token configured (or only empty ones): every call refused, as a misconfiguration.
        assert_eq!(status(authorize(&env(&[bearer("Bearer x")]), &settings)), 500);
        assert_eq!(status(authorize(&env(&[("T1", ""), bearer("Bearer ")]), &settings)), 500);
    }

    #[test]
    fn every_form_of_the_call() {
        let user = |r: Result<Call, Error>| r.map(|c| c.username).unwrap();
        assert_eq!(user(call("POST", "username=bob", "")), "bob");
        assert_eq!(user(call("GET", "username=bob", "")), "bob");
        assert_eq!(user(call("GET", "userid=bob", "")), "bob");
        assert_eq!(user(call("GET", "userId=bob", "")), "bob");
        assert_eq!(user(call("POST", "", "{\"userId\":\"amy\"}")), "amy");
        assert_eq!(user(call("POST", "username=x", "  \n")), "x", "white space is no body");
    }

    #[test]
    fn what_a_call_may_not_be() {
        assert_eq!(status(call("PUT", "username=bob", "")), 405);
        assert_eq!(status(call("POST", "", "")), 400, "no username");
        assert_eq!(status(call("GET", "username=%20", "")), 400, "white space only");
        assert_eq!(status(call("POST", "", "{oops")), 400);
        // The query's name wins over a body's; a GET's body is never read.
        assert_eq!(call("POST", "username=bob", "{\"userId\":\"amy\"}").unwrap().username, "bob");
        assert_eq!(status(call("GET", "", "{\"userId\":\"amy\"}")), 400);
        let longest = "a".repeat(256);
        assert_eq!(call("GET", &format!("username={longest}"), "").unwrap().username, longest);
        assert_eq!(status(call("GET", &format!("username={longest}a"), "")), 400);
        assert_eq!(status(call("GET", "username=a%07b", "")), 400);
        assert_eq!(call("GET", "username=bob&logout_at=17", "").unwrap().logout_at, Some(17));
        assert_eq!(status(call("GET", "username=bob&logout_at=x", "")), 400);
    }

    #[test]
    fn a_username_is_this_jurisdictions_user_unless_mapped() {
        let plain = settings("");
        assert_eq!(identities("bob", &plain).unwrap(), ["EX::J:bob"]);
        // Without a map the name is taken whole: no other jurisdiction, no list.
        assert_eq!(identities("K:bob", &plain).unwrap(), ["EX::J:K:bob"]);
        assert_eq!(identities("a,b", &plain).unwrap(), ["EX::J:a,b"]);
        let mapped = settings("RECEIVER_USERNAME_MAP \"^kc_(.*)$ => K:$1, $1,K:$1, bad name:$1\"");
        assert_eq!(
            identities("kc_bob", &mapped).unwrap(),
            ["EX::K:bob", "EX::J:bob", "EX::J:bad name:bob"]
        );
        let nothing = settings("RECEIVER_USERNAME_MAP \"^.*$ => ,\"");
        assert_eq!(status(identities("bob", &nothing)), 400);
        let nocase = settings("NAME_COMPARE \"nocase\"");
        assert_eq!(identities("Bob", &nocase).unwrap(), ["ex::j:bob"]);
    }

    /// The log line says when and from where, whatever the call was.
    #[test]
    fn the_outcome_has_its_time_and_remote_address() {
        let env = Env::from_pairs([("REMOTE_ADDR", "192.0.2.7"), ("REQUEST_METHOD", "GET")]);
        let broken: Loaded = Err((crate::config::Source::BuiltIn, crate::config::Problems(vec![])));
        let now = crate::time::from_unix_secs(1_700_000_000);
        let (response, outcome) = serve(&env, &mut &b""[..], &broken, now);
        assert_eq!(response.status, 500);
        assert_eq!((outcome.at, outcome.remote.as_deref()), (1_700_000_000, Some("192.0.2.7")));
    }
}
