//! The demo's logout hub (SPEC §14): `dacs_logout_hub` as a CGI program, told by another app
//! of the network (the demo, as the sender `kcworks`) that a user signed out, as the Profiles
//! protocol tells it. It fans the logout out, over real HTTP to this very site, to three
//! receivers: `dacs_logout_receiver` (which revokes in the registry the guard reads) and two
//! stand-in apps, a wiki and a BCC-style app, that only record the call they got.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cgi::{self, Answer};
use super::http::HttpRequest;
use super::network::TOKEN_VAR;

/// The variable that holds the sender's token (the hub's configuration names it, never the
/// token).
const SENDER_TOKEN_VAR: &str = "DEMO_HUB_SENDER_TOKEN";
/// Where the hub is mounted: where senders expect the Profiles hub.
const MOUNT: &str = "/api/v1/actions/logout";
/// How long the fan-out page waits for every receiver to have answered.
const WAIT: Duration = Duration::from_secs(5);

/// The hub's program, its configuration and the sender's token; the calls the stand-in apps
/// received.
pub struct Hub {
    program: PathBuf,
    conf: PathBuf,
    sender_token: String,
    calls: Mutex<Vec<String>>,
}

impl Hub {
    /// Writes the hub's configuration in `dir` (its receivers on 127.0.0.1:`port`) and makes
    /// its spool there.
    pub fn new(program: PathBuf, dir: &Path, port: u16) -> Result<Hub, String> {
        use std::os::unix::fs::DirBuilderExt;
        let spool = dir.join("hub-spool");
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&spool)
            .map_err(|e| format!("cannot make the hub's spool {}: {e}", spool.display()))?;
        let base = format!("http://127.0.0.1:{port}");
        let text = format!(
            "<Configuration>\n  <Default>\n    HUB_SENDER \"kcworks {SENDER_TOKEN_VAR}\"\n    \
             HUB_RECEIVER \"dacs {base}/api/logout/ post-query {TOKEN_VAR}\"\n    \
             HUB_RECEIVER \"wiki {base}/apps/wiki/logout get-query\"\n    \
             HUB_RECEIVER \"bcc {base}/apps/bcc/logout bcc-get\"\n    \
             HUB_SPOOL_DIR \"{}\"\n    HUB_INSTANCE \"demo\"\n    HUB_RETRY_SECS \"1\"\n  \
             </Default>\n</Configuration>\n",
            spool.display()
        );
        let conf = dir.join("hub.conf");
        std::fs::write(&conf, text).map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
        let sender_token = super::network::random_hex().map_err(|e| format!("no token: {e}"))?;
        Ok(Hub { program, conf, sender_token, calls: Mutex::new(Vec::new()) })
    }

    /// `kcworks` tells the hub that `user` signed out (`POST .../actions/logout/`, JSON, its
    /// bearer token), passing on the browser's `User-Agent` as a sender does; the hub's answer
    /// and the event's receipt once every receiver answered (or `WAIT` passed).
    pub fn announce(
        &self,
        user: &str,
        user_agent: &str,
        receiver_token: &str,
        port: u16,
    ) -> Fanout {
        let body = serde_json::json!({"user_name": user, "user_agent": user_agent}).to_string();
        let request = HttpRequest {
            method: "POST".into(),
            path: format!("{MOUNT}/").into_bytes(),
            query: Vec::new(),
            headers: vec![
                ("Content-Type".into(), b"application/json".to_vec()),
                ("User-Agent".into(), b"kcworks (the demo, as a sender)".to_vec()),
            ],
            body: body.into_bytes(),
        };
        let answer = self.run(&request, "/", receiver_token, port);
        let event_id = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|v| v["event_id"].as_str().map(str::to_owned));
        let mut receipt = None;
        if let Some(id) = &event_id {
            let started = Instant::now();
            loop {
                let get = HttpRequest {
                    method: "GET".into(),
                    path: format!("{MOUNT}/{id}/").into_bytes(),
                    query: Vec::new(),
                    headers: Vec::new(),
                    body: Vec::new(),
                };
                let got = self.run(&get, &format!("/{id}/"), receiver_token, port);
                let json = serde_json::from_slice::<Value>(&got.body).ok();
                let pending = json.as_ref().and_then(|v| v["summary"]["pending"].as_u64());
                receipt = json;
                if pending == Some(0) || started.elapsed() > WAIT {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        // This event's calls only (the list holds every call since the demo started).
        let tag = event_id.map(|id| format!("event_id={id}"));
        let calls = self.calls.lock().map(|c| c.clone()).unwrap_or_default();
        let calls =
            calls.into_iter().filter(|c| tag.as_ref().is_some_and(|t| c.contains(t))).collect();
        Fanout { answer, receipt, calls }
    }

    /// The hub's program as a CGI child for `request`, with its token (a server told to pass
    /// `Authorization`, as Apache's `CGIPassAuth On`) and the variables its configuration
    /// names (the delivery process it starts keeps only those).
    fn run(
        &self,
        request: &HttpRequest,
        path_info: &str,
        receiver_token: &str,
        port: u16,
    ) -> Answer {
        let mut env = cgi::environment(request, port, MOUNT);
        env.extend([
            ("PATH_INFO".into(), path_info.into()),
            ("HTTP_AUTHORIZATION".into(), format!("Bearer {}", self.sender_token).into()),
            ("DACS_SIGNOUT_CONF".into(), self.conf.clone().into()),
            (OsString::from(SENDER_TOKEN_VAR), self.sender_token.clone().into()),
            (OsString::from(TOKEN_VAR), receiver_token.into()),
        ]);
        cgi::answer(&self.program, &env, &request.body).unwrap_or_else(|failure| Answer {
            status: "502 Bad Gateway".into(),
            headers: Vec::new(),
            body: failure,
        })
    }

    /// A stand-in app's logout endpoint: the call recorded (method, path and query: what the
    /// hub sent it), and 200.
    pub fn app_called(&self, app: &str, request: &HttpRequest) -> Vec<u8> {
        let call = format!(
            "{app}: {} {}?{}",
            request.method,
            String::from_utf8_lossy(&request.path),
            String::from_utf8_lossy(&request.query)
        );
        crate::log::to_stderr(format_args!("dacs_signout demo: the hub called {call}"));
        if let Ok(mut calls) = self.calls.lock() {
            // The latest hundred: enough for any page, bounded for a demo left running.
            if calls.len() >= 100 {
                calls.remove(0);
            }
            calls.push(call);
        }
        super::http::plain("200 OK", "logged out")
    }
}

/// What the fan-out page shows.
pub struct Fanout {
    pub answer: Answer,
    pub receipt: Option<Value>,
    pub calls: Vec<String>,
}
