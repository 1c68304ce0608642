//! The hub's CGI role (§14): a sender's `POST .../actions/logout/` (with or without the
//! trailing slash) becomes an event, one spool record per receiver, durable before the 200;
//! `GET .../actions/logout/<event_id>/` is the event's receipt, for its sender only.
//!
//! ```text
//! route      PATH_INFO: "" or "/" -> the logout; "/ID" or "/ID/" -> a receipt (also under a
//!            mount at a prefix: ".../actions/logout/..." in PATH_INFO)
//! token      Authorization: Bearer, constant time against every sender's: who is calling
//! body       body::parse (JSON or a form), 64 KiB at most
//! rate       the sender's bucket
//! spool      one record per receiver, fsynced, then the 200 (Profiles' shape + event_id)
//! ```

use std::io::Read;
use std::path::PathBuf;
use std::time::SystemTime;

use serde_json::{Value, json};

use super::body;
use super::event::{self, EventId};
use super::rate;
use super::receipt;
use crate::cgi::body::read_body;
use crate::cgi::{Env, Response, bearer};
use crate::config::{Hub, Loaded};
use crate::error::Error;
use crate::log::LogLine;
use crate::spool::{Spool, is_full};
use crate::time::{unix_millis, unix_secs};

/// The success message of the Profiles hub: KCWorks looks for "successful" in it.
pub const MESSAGE: &str = "Action successfully triggered.";

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `.../actions/logout/`
    Logout,
    /// `.../actions/logout/<event_id>/`
    Receipt(String),
    /// Anything deeper.
    Unknown,
}

/// The route, from `PATH_INFO`: the program is mounted at `.../actions/logout` (the rest is
/// `/`, empty, or an event id), or at a prefix with `actions/logout/...` in `PATH_INFO`.
pub fn route(path_info: &str) -> Route {
    let segments: Vec<&str> = path_info.split('/').filter(|s| !s.is_empty()).collect();
    let rest = match segments.windows(2).rposition(|w| w == ["actions", "logout"]) {
        Some(at) => &segments[at + 2..],
        None => &segments[..],
    };
    match rest {
        [] => Route::Logout,
        [id] => Route::Receipt((*id).to_owned()),
        _ => Route::Unknown,
    }
}

/// What the request process must do after its answer: tell the delivery process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub spool_dir: PathBuf,
    /// The section the request used (`SERVER_NAME` + `SCRIPT_NAME`), for the delivery process
    /// it may start.
    pub section: String,
    /// The receivers' token variables, which that process needs.
    pub token_envs: Vec<String>,
}

/// What happened to one request: its log line.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub at: u64,
    pub status: u16,
    pub route: Option<&'static str>,
    pub config: Option<String>,
    pub sender: Option<String>,
    pub user: Option<String>,
    pub event_id: Option<String>,
    pub receivers: Option<usize>,
    /// Whose time the event has: `sender` (its `logout_at`) or `received`.
    pub time: Option<&'static str>,
    pub rate_error: Option<String>,
    /// What the request did to get the event delivered (`woken`, `started`, …).
    pub delivery: Option<String>,
    pub remote: Option<String>,
    pub error: Option<Error>,
}

impl Outcome {
    pub fn log_line(&self) -> String {
        let mut line = LogLine::default();
        line.set("status", self.status)
            .maybe("route", self.route)
            .maybe("config", self.config.as_ref())
            .maybe("sender", self.sender.as_ref())
            .maybe("user", self.user.as_ref())
            .maybe("event_id", self.event_id.as_ref())
            .maybe("receivers", self.receivers)
            .maybe("logout_at", self.time)
            .maybe("rate_error", self.rate_error.as_ref())
            .maybe("delivery", self.delivery.as_ref())
            .maybe("remote", self.remote.as_ref());
        if let Some(error) = &self.error {
            line.set("error", &error.message)
                .maybe("field", error.field)
                .maybe("detail", error.detail.as_ref());
        }
        line.render_as(self.at, "dacs_logout_hub")
    }

    pub fn exit_code(&self) -> i32 {
        self.error.as_ref().map_or(0, Error::exit_code)
    }
}

/// One request's answer, what happened, and the hand-off to the delivery process.
pub struct Served {
    pub response: Response,
    pub head_only: bool,
    pub outcome: Outcome,
    pub handoff: Option<Handoff>,
}

/// Serves one request at `now`; `random` makes the event id (a request makes at most one).
pub fn serve(
    env: &Env,
    stdin: &mut dyn Read,
    config: &Loaded,
    now: SystemTime,
    random: [u8; 16],
) -> Served {
    let mut outcome = Outcome {
        at: unix_secs(now),
        remote: env.soft("REMOTE_ADDR").map(str::to_owned),
        ..Outcome::default()
    };
    let head_only = env.soft("REQUEST_METHOD") == Some("HEAD");
    let mut handoff = None;
    let response = match respond(env, stdin, config, now, random, &mut outcome, &mut handoff) {
        Ok(response) => response,
        Err(e) => {
            let response = error(&e);
            outcome.error = Some(e);
            response
        }
    };
    outcome.status = response.status;
    Served { response, head_only, outcome, handoff }
}

fn respond(
    env: &Env,
    stdin: &mut dyn Read,
    config: &Loaded,
    now: SystemTime,
    random: [u8; 16],
    outcome: &mut Outcome,
    handoff: &mut Option<Handoff>,
) -> Result<Response, Error> {
    let config = config.as_ref().map_err(|(source, e)| {
        outcome.config = Some(source.to_string());
        Error::misconfigured(format!("{source}: {e}"))
    })?;
    outcome.config = Some(config.source.to_string());
    let section = crate::cgi::server(env).host_path();
    let hub = config
        .hub(&section)
        .map_err(|e| Error::misconfigured(format!("{}: {e}", config.source)))?
        .ok_or_else(|| {
            Error::misconfigured("no hub is configured here (HUB_SENDER, HUB_RECEIVER)")
        })?;
    let route = route(env.soft("PATH_INFO").unwrap_or(""));
    let method = env.text("REQUEST_METHOD")?.unwrap_or("");
    let allowed = match route {
        Route::Logout => {
            outcome.route = Some("logout");
            "POST"
        }
        Route::Receipt(_) => {
            outcome.route = Some("receipt");
            "GET, HEAD"
        }
        Route::Unknown => return Err(Error::not_found("no such resource")),
    };
    if !allowed.split(", ").any(|m| m == method) {
        return Err(Error::method_not_allowed(format!("only {allowed} is served here"))
            .with_detail(format!("allow={allowed}")));
    }
    // The token first: nothing about the request is looked at for a caller who has none.
    let sender = authorize(env, &hub)?;
    outcome.sender = Some(sender.clone());
    match route {
        Route::Receipt(id) => receipt(&hub, &sender, &id),
        _ => {
            let response = logout(env, stdin, &hub, &sender, now, random, outcome)?;
            *handoff = Some(Handoff {
                spool_dir: PathBuf::from(&hub.spool_dir),
                section,
                token_envs: hub.receivers.iter().filter_map(|r| r.token_env.clone()).collect(),
            });
            Ok(response)
        }
    }
}

/// The sender whose token the request carries. A hub with no sender token set refuses every
/// call (a misconfiguration, not an open door).
fn authorize(env: &Env, hub: &Hub) -> Result<String, Error> {
    let tokens: Vec<&str> =
        hub.senders.iter().map(|s| env.soft(&s.token_env).unwrap_or("")).collect();
    if tokens.iter().all(|t| t.is_empty()) {
        let names: Vec<&str> = hub.senders.iter().map(|s| s.token_env.as_str()).collect();
        return Err(Error::misconfigured(format!(
            "no sender token is set: ${}",
            names.join(", $")
        )));
    }
    let presented =
        bearer::presented(env).ok_or_else(|| Error::unauthorized("a bearer token is required"))?;
    match bearer::matching(presented, &tokens) {
        Some(i) => Ok(hub.senders[i].name.clone()),
        None => Err(Error::unauthorized("the bearer token is not accepted")
            .with_detail(format!("presented token {}", bearer::fingerprint(presented)))),
    }
}

fn logout(
    env: &Env,
    stdin: &mut dyn Read,
    hub: &Hub,
    sender: &str,
    now: SystemTime,
    random: [u8; 16],
    outcome: &mut Outcome,
) -> Result<Response, Error> {
    let bytes = read_body(env, stdin)?;
    let logout = body::parse(env.soft("CONTENT_TYPE"), &bytes)?;
    outcome.user = Some(logout.user_name.clone());
    let unavailable = |e: std::io::Error| {
        Error::unavailable("the logout could not be kept: try again", e.to_string())
    };
    let spool =
        Spool::create(std::path::Path::new(&hub.spool_dir), hub.spool_max).map_err(unavailable)?;
    match rate::admit_sender(&spool, sender, hub.rate, unix_millis(now)) {
        Ok(Ok(())) => {}
        Ok(Err(wait)) => {
            return Err(Error::too_many_requests(format!(
                "this sender is over its rate: try again in {wait} s"
            ))
            .with_detail(format!("retry-after={wait}")));
        }
        Err(e) => outcome.rate_error = Some(e.to_string()),
    }
    let received = unix_secs(now);
    let (logout_at, senders_time) =
        event::logout_time(logout.logout_at, received, hub.max_age_secs);
    outcome.time = Some(if senders_time { "sender" } else { "received" });
    let id = EventId::new(&super::instance(hub), received, random);
    outcome.event_id = Some(id.to_string());
    let records =
        event::deliveries(&id, sender, &logout.user_name, logout_at, received, &hub.receivers);
    outcome.receivers = Some(records.len());
    spool.put_batch(&records).map_err(|e| {
        if is_full(&e) {
            Error::unavailable("the hub is full: try again later", e.to_string())
        } else {
            unavailable(e)
        }
    })?;
    let apps: Vec<&str> = hub.receivers.iter().map(|r| r.name.as_str()).collect();
    Ok(json_response(
        200,
        "OK",
        &json!({
            "message": MESSAGE,
            "data": {
                "user": {"user": logout.user_name},
                "user_agent": logout.user_agent,
                "app": apps,
            },
            "event_id": id.to_string(),
        }),
    ))
}

/// The receipt of `id` for `sender`: 404 for an event of another sender, of another hub
/// instance, or none at all (the same answer: an id says nothing to anyone else).
fn receipt(hub: &Hub, sender: &str, id: &str) -> Result<Response, Error> {
    let not_found = || Error::not_found("no event of this sender has that id here");
    let id = EventId::parse(id).ok_or_else(not_found)?;
    if id.instance != super::instance(hub) {
        return Err(not_found());
    }
    let spool = match Spool::open(std::path::Path::new(&hub.spool_dir), hub.spool_max) {
        Ok(spool) => spool,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found()),
        Err(e) => {
            return Err(Error::unavailable("the receipt cannot be read now", e.to_string()));
        }
    };
    let found = receipt::find(&spool, &id)
        .map_err(|e| Error::unavailable("the receipt cannot be read now", e.to_string()))?;
    match found {
        Some(receipt) if receipt.sender == sender => {
            Ok(json_response(200, "OK", &receipt.to_json()))
        }
        _ => Err(not_found()),
    }
}

fn json_response(status: u16, reason: &'static str, body: &Value) -> Response {
    let mut r = Response::new(status, reason);
    r.header("Content-Type", "application/json");
    r.body = format!("{body}\n").into_bytes();
    r
}

/// An error as JSON: `{"error": message}`, and `"field"` when one field is at fault.
fn error(e: &Error) -> Response {
    let (code, reason) = e.status();
    let mut body = json!({"error": e.message});
    if let Some(field) = e.field {
        body["field"] = field.into();
    }
    let mut r = json_response(code, reason, &body);
    match code {
        401 => {
            r.header("WWW-Authenticate", "Bearer");
        }
        // The header's value travels in the error's detail (which the log line shows too).
        405 => {
            if let Some(allow) = e.detail.as_deref().and_then(|d| d.strip_prefix("allow=")) {
                r.header("Allow", allow);
            }
        }
        429 => {
            if let Some(wait) = e.detail.as_deref().and_then(|d| d.strip_prefix("retry-after=")) {
                r.header("Retry-After", wait);
            }
        }
        _ => {}
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_from_path_info() {
        assert_eq!(route(""), Route::Logout);
        assert_eq!(route("/"), Route::Logout);
        assert_eq!(route("/api/v1/actions/logout/"), Route::Logout);
        assert_eq!(route("/api/v1/actions/logout"), Route::Logout);
        assert_eq!(route("/h.0-ab/"), Route::Receipt("h.0-ab".into()));
        assert_eq!(route("/h.0-ab"), Route::Receipt("h.0-ab".into()));
        assert_eq!(route("/api/v1/actions/logout/h.0-ab/"), Route::Receipt("h.0-ab".into()));
        assert_eq!(route("/a/b"), Route::Unknown);
        assert_eq!(route("/actions/logout/a/b/"), Route::Unknown);
    }
}
