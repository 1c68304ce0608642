//! The hub (§14): senders' requests, the fan-out to receivers on loopback, receipts, faults.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::peer::{Gateway, Peer, Received, Reply};
use crate::support::servers;
use crate::support::*;

const KC_TOKEN: &str = "kcworks-to-hub-t0ken-0123456789";
const WP_TOKEN: &str = "wordpress-to-hub-t0ken-987654321";
const RECEIVER_TOKEN: &str = "hub-to-receiver-t0ken-abcdef";
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64) test";

/// A hub's directory: its `dacs.conf` and its spool (in a directory of its own, mode 0700).
pub struct HubDir {
    pub dir: TempDir,
    /// A stand-in for the delivery process (it binds the wake-up socket), so that a request
    /// starts none: tests of the request alone.
    _quiet: Option<UnixDatagram>,
}

impl HubDir {
    pub fn new() -> HubDir {
        let dir = TempDir::new("hub");
        let parent = dir.path().join("var");
        std::fs::create_dir(&parent).unwrap();
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700)).unwrap();
        HubDir { dir, _quiet: None }
    }

    /// No delivery process will be started by requests: something listens on the socket.
    pub fn quiet() -> HubDir {
        let mut hub = HubDir::new();
        std::fs::create_dir(hub.spool()).unwrap();
        std::fs::set_permissions(hub.spool(), std::fs::Permissions::from_mode(0o700)).unwrap();
        hub._quiet = Some(UnixDatagram::bind(hub.spool().join("wake.sock")).unwrap());
        hub
    }

    pub fn spool(&self) -> PathBuf {
        self.dir.path().join("var/spool")
    }

    /// A hub-only `dacs.conf`: senders `kcworks` and `wordpress`, these receivers
    /// (`NAME URL FORM [TOKEN_ENV]`), and `extra`.
    pub fn conf(&self, receivers: &[String], extra: &str) -> String {
        let receivers: String =
            receivers.iter().map(|r| format!("HUB_RECEIVER \"{r}\"\n")).collect();
        conf(&format!(
            "HUB_SENDER \"kcworks KC_TOKEN\"\nHUB_SENDER \"wordpress WP_TOKEN\"\n\
             HUB_SPOOL_DIR \"{}\"\nHUB_INSTANCE \"hub1\"\n{receivers}{extra}",
            self.spool().display()
        ))
    }

    /// Three receivers that nothing will call (the request tests): one of each query form.
    pub fn three(&self) -> Vec<String> {
        vec![
            "profiles http://127.0.0.1:9/api/logout/ post-query RECEIVER_TOKEN".into(),
            "guide http://127.0.0.1:9/logout get-query".into(),
            "bcc http://127.0.0.1:9/bcc bcc-get".into(),
        ]
    }

    /// The hub's CGI program on this configuration (written as `hub.conf`, where a delivery
    /// process started by the request can read it after), with the tokens a server gives it.
    pub fn call(&self, cgi: Cgi, conf: &str) -> Output {
        let path = self.dir.write("hub.conf", conf);
        cgi.program(HUB)
            .env("DACS_SIGNOUT_CONF", path.to_str().unwrap())
            .env("KC_TOKEN", KC_TOKEN)
            .env("WP_TOKEN", WP_TOKEN)
            .env("RECEIVER_TOKEN", RECEIVER_TOKEN)
            .env("SCRIPT_NAME", "/api/v1/actions/logout")
            .run()
    }

    /// The records in a state directory (`new`, `work`, `dead`, `done`), as JSON.
    pub fn records(&self, state: &str) -> Vec<Value> {
        let Ok(dir) = std::fs::read_dir(self.spool().join(state)) else { return Vec::new() };
        let mut out: Vec<Value> = dir
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().contains(".json"))
            .filter_map(|p| serde_json::from_slice(&std::fs::read(p).ok()?).ok())
            .collect();
        out.sort_by_key(|v| v["receiver"].as_str().unwrap_or("").to_owned());
        out
    }

    /// The delivery log (`hub.log` in the spool).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.spool().join("hub.log")).unwrap_or_default()
    }

    /// Waits (bounded) until `done/`, `dead/` and `new/` hold these many records.
    #[track_caller]
    pub fn wait_until(&self, what: &str, within: Duration, ready: impl Fn(&HubDir) -> bool) {
        let deadline = Instant::now() + within;
        while !ready(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; spool new={:?}\ndone={:?}\ndead={:?}\nlog:\n{}",
                self.records("new"),
                self.records("done"),
                self.records("dead"),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the delivery process a request started, if one runs (its pid is in the lock).
    pub fn stop_delivery(&self) {
        let Ok(text) = std::fs::read_to_string(self.spool().join("deliver.lock")) else { return };
        let Ok(pid) = text.trim().parse::<i32>() else { return };
        if std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::path::Path::new(&format!("/proc/{pid}")).exists()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    /// `dacs_logout_hub ARGS` on the command line, on `conf` (`hub.conf`), with the receivers'
    /// tokens: (exit status, stdout, stderr).
    pub fn command(&self, args: &[&str]) -> (i32, String, String) {
        let out = self.command_process(args).wait_with_output().unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn command_process(&self, args: &[&str]) -> std::process::Child {
        std::process::Command::new(HUB)
            .env_clear()
            .args(args)
            .env("DACS_SIGNOUT_CONF", self.dir.path().join("hub.conf"))
            .env("RECEIVER_TOKEN", RECEIVER_TOKEN)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

impl Drop for HubDir {
    fn drop(&mut self) {
        self.stop_delivery();
    }
}

/// A sender's logout, as KCWorks sends it (`requests`' `json=`), to `PATH_INFO`.
pub fn logout(path_info: &str, body: &str, token: &str) -> Cgi {
    Cgi::method("POST", "")
        .env("PATH_INFO", path_info)
        .env("CONTENT_TYPE", "application/json")
        .env("CONTENT_LENGTH", &body.len().to_string())
        .env("HTTP_AUTHORIZATION", &format!("Bearer {token}"))
        .env("HTTP_USER_AGENT", "python-requests/2.34.2")
        .stdin(body.as_bytes())
}

fn body(user: &str, ua: &str) -> String {
    json!({"user_name": user, "user_agent": ua}).to_string()
}

/// KCWorks' success rule (`invenio_remote_user_data_kcworks/client.py`): a 2xx, and the JSON
/// echoes the user and the user agent it sent, and its message says "successful".
pub fn kcworks_accepts(status: u16, answer: &str, user: &str, ua: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(answer) else { return false };
    (200..300).contains(&status)
        && v["data"]["user"]["user"] == user
        && v["data"]["user_agent"] == ua
        && v["message"].as_str().is_some_and(|m| m.contains("successful"))
}

#[track_caller]
fn answered(out: &Output, status: u16) -> Value {
    assert_eq!(out.status, status, "{}\n{}", out.body, out.log);
    assert_eq!(out.header("Content-Type"), Some("application/json"));
    assert_eq!(out.header("Cache-Control"), Some("no-store"));
    assert_eq!(out.log.lines().count(), 1, "{}", out.log);
    assert_eq!(out.exit, i32::from(status >= 400), "exit status");
    for token in [KC_TOKEN, WP_TOKEN, RECEIVER_TOKEN] {
        assert!(!out.log.contains(token) && !out.body.contains(token), "a token leaked");
    }
    serde_json::from_str(&out.body).unwrap()
}

/// The Profiles hub's request and answer, plus an event id; one record per receiver, on disk
/// before the answer; with and without the trailing slash.
#[test]
fn a_senders_logout_is_one_durable_record_per_receiver() {
    let hub = HubDir::quiet();
    let conf = hub.conf(&hub.three(), "");
    let mut ids = Vec::new();
    for path_info in ["/", ""] {
        let out = hub.call(logout(path_info, &body(" bob ", UA), KC_TOKEN), &conf);
        let v = answered(&out, 200);
        let id = v["event_id"].as_str().unwrap().to_owned();
        assert_eq!(
            v,
            json!({
                "message": "Action successfully triggered.",
                "data": {"user": {"user": "bob"}, "user_agent": UA, "app": ["profiles", "guide", "bcc"]},
                "event_id": id,
            })
        );
        assert!(id.starts_with("hub1.") && id.len() == "hub1.".len() + 11 + 1 + 32, "{id}");
        assert!(
            out.log.contains("dacs_logout_hub: status=200 route=logout")
                && out.log.contains("sender=kcworks user=bob")
                && out.log.contains(&format!("event_id={id} receivers=3 logout_at=received"))
                && out.log.contains("delivery=woken"),
            "{}",
            out.log
        );
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1], "every event has its own id");
    let records = hub.records("new");
    assert_eq!(records.len(), 6, "{records:?}");
    for id in &ids {
        let mine: Vec<&Value> = records.iter().filter(|r| r["event_id"] == id.as_str()).collect();
        let names: Vec<&str> = mine.iter().map(|r| r["receiver"].as_str().unwrap()).collect();
        assert_eq!(names, ["bcc", "guide", "profiles"]);
        for r in mine {
            assert_eq!(
                (r["user_name"].as_str(), r["sender"].as_str()),
                (Some("bob"), Some("kcworks"))
            );
            assert_eq!(r["attempts"], 0);
            assert_eq!(r["receivers"], 3);
        }
    }
    // Nothing is left half-written, and the spool is nobody else's.
    assert_eq!(std::fs::read_dir(hub.spool().join("tmp")).unwrap().count(), 0);
    let mode = std::fs::metadata(hub.spool()).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
}

/// KCWorks' four-part rule holds on the hub's answer, for what KCWorks sends (trimmed values,
/// as it should send them) and for a form body.
#[test]
fn the_answer_meets_kcworks_success_rule() {
    let hub = HubDir::quiet();
    let conf = hub.conf(&hub.three(), "");
    for (user, ua) in
        [("john_doe", UA), ("amy@uni.example", "dacs_signout/0.1.0"), ("ünï cödé", "Ü")]
    {
        let out = hub.call(logout("/", &body(user, ua), KC_TOKEN), &conf);
        assert!(kcworks_accepts(out.status, &out.body, user, ua), "{user}: {}", out.body);
    }
    let form = format!("user_name=bob&user_agent={}", UA.replace(' ', "+"));
    let out = hub.call(
        logout("/", &form, WP_TOKEN).env("CONTENT_TYPE", "application/x-www-form-urlencoded"),
        &conf,
    );
    assert!(kcworks_accepts(out.status, &out.body, "bob", UA), "{}", out.body);
    assert!(out.log.contains("sender=wordpress"), "{}", out.log);
}

/// No token, a wrong one, a receiver's, another scheme: 401 with `WWW-Authenticate`, nothing
/// spooled, and the presented token only as a fingerprint in the log.
#[test]
fn a_request_without_a_senders_token_is_401_and_changes_nothing() {
    let hub = HubDir::quiet();
    let conf = hub.conf(&hub.three(), "");
    let b = body("bob", UA);
    for (cgi, what) in [
        (logout("/", &b, "wrong-token"), "wrong"),
        (logout("/", &b, RECEIVER_TOKEN), "a receiver's token"),
        (logout("/", &b, &format!("{KC_TOKEN}x")), "longer"),
        (logout("/", &b, "").env("HTTP_AUTHORIZATION", &format!("Basic {KC_TOKEN}")), "Basic"),
        (logout("/", &b, "").unset("HTTP_AUTHORIZATION"), "none"),
        (logout("/", &b, "").env("HTTP_AUTHORIZATION", "Bearer"), "empty"),
    ] {
        let out = hub.call(cgi, &conf);
        let v = answered(&out, 401);
        assert_eq!(out.header("WWW-Authenticate"), Some("Bearer"), "{what}");
        assert!(v["error"].is_string(), "{what}");
    }
    assert!(hub.records("new").is_empty());
    let out = hub.call(logout("/", &b, "wrong-token"), &conf);
    assert!(out.log.contains("presented token "), "a fingerprint: {}", out.log);
    // No sender token set at all: a misconfiguration, not an open door.
    let out = logout("/", &b, "anything").program(HUB).config(&conf).run();
    answered(&out, 500);
    assert!(out.log.contains("no sender token is set"), "{}", out.log);
}

/// Every malformed body has a defined 4xx that names the field at fault, and nothing is
/// spooled.
#[test]
fn malformed_bodies_have_defined_answers_and_spool_nothing() {
    let hub = HubDir::quiet();
    let conf = hub.conf(&hub.three(), "");
    let huge = format!(r#"{{"user_name":"bob","user_agent":"{}"}}"#, "x".repeat(70_000));
    let cases: Vec<(Cgi, u16, Option<&str>, &str)> = vec![
        (logout("/", "{oops", KC_TOKEN), 400, None, "malformed JSON"),
        (logout("/", "", KC_TOKEN), 400, None, "empty"),
        (logout("/", "[\"bob\"]", KC_TOKEN), 400, None, "not an object"),
        (logout("/", r#"{"user_agent":"UA"}"#, KC_TOKEN), 400, Some("user_name"), "missing"),
        (
            logout("/", r#"{"user_name":" ","user_agent":"UA"}"#, KC_TOKEN),
            400,
            Some("user_name"),
            "blank",
        ),
        (
            logout("/", r#"{"user_name":"\u00a0\u3000","user_agent":"UA"}"#, KC_TOKEN),
            400,
            Some("user_name"),
            "Unicode blank",
        ),
        (
            logout("/", r#"{"user_name":42,"user_agent":"UA"}"#, KC_TOKEN),
            400,
            Some("user_name"),
            "a number",
        ),
        (
            logout("/", r#"{"user_name":"bob","user_agent":""}"#, KC_TOKEN),
            400,
            Some("user_agent"),
            "empty UA",
        ),
        (
            logout("/", r#"{"user_name":"bob","user_agent":["UA"]}"#, KC_TOKEN),
            400,
            Some("user_agent"),
            "a list",
        ),
        (
            logout("/", r#"{"user_name":"bob","user_agent":"UA","logout_at":"noon"}"#, KC_TOKEN),
            400,
            Some("logout_at"),
            "a word",
        ),
        (
            logout("/", r#"{"user_name":"bob","user_name":"eve","user_agent":"UA"}"#, KC_TOKEN),
            400,
            Some("user_name"),
            "twice",
        ),
        (
            logout(
                "/",
                &format!(r#"{{"user_name":"{}","user_agent":"UA"}}"#, "a".repeat(300)),
                KC_TOKEN,
            ),
            400,
            Some("user_name"),
            "long",
        ),
        (
            logout("/", r#"{"user_name":"bo\nb","user_agent":"UA"}"#, KC_TOKEN),
            400,
            Some("user_name"),
            "a newline",
        ),
        (
            logout("/", "", KC_TOKEN)
                .env("CONTENT_LENGTH", "31")
                .stdin(b"{\"user_name\":\"\xff\",\"user_agent\":1}"),
            400,
            None,
            "not UTF-8",
        ),
        (logout("/", &huge, KC_TOKEN), 413, None, "over 64 KiB"),
        (
            logout("/", &body("bob", UA), KC_TOKEN).env("CONTENT_TYPE", "text/plain"),
            415,
            None,
            "text/plain",
        ),
        (logout("/", &body("bob", UA), KC_TOKEN).unset("CONTENT_TYPE"), 415, None, "no type"),
        (logout("/", &body("bob", UA), KC_TOKEN).env("CONTENT_LENGTH", "500"), 400, None, "short"),
    ];
    for (cgi, status, field, what) in cases {
        let out = hub.call(cgi, &conf);
        let v = answered(&out, status);
        assert!(v["error"].is_string(), "{what}: {}", out.body);
        assert_eq!(v["field"].as_str(), field, "{what}: {}", out.body);
    }
    assert!(hub.records("new").is_empty(), "{:?}", hub.records("new"));
}

/// Methods and paths: only POST takes a logout; receipts are GET; nothing else exists.
#[test]
fn methods_and_paths_have_defined_answers() {
    let hub = HubDir::quiet();
    let conf = hub.conf(&hub.three(), "");
    let auth = |cgi: Cgi| cgi.env("HTTP_AUTHORIZATION", &format!("Bearer {KC_TOKEN}"));
    for (cgi, status, allow) in [
        (auth(Cgi::get("").env("PATH_INFO", "/")), 405, Some("POST")),
        (auth(Cgi::method("PUT", "").env("PATH_INFO", "/")), 405, Some("POST")),
        (auth(Cgi::method("DELETE", "").env("PATH_INFO", "/hub1.x/")), 405, Some("GET, HEAD")),
        (auth(Cgi::get("").env("PATH_INFO", "/a/b/c")), 404, None),
        (auth(Cgi::get("").env("PATH_INFO", "/not-an-id/")), 404, None),
    ] {
        let out = hub.call(cgi, &conf);
        answered(&out, status);
        assert_eq!(out.header("Allow"), allow);
    }
}

/// A sender's `logout_at` is the event's time within bounds (not in the future, not older than
/// `HUB_MAX_AGE_SECS`); otherwise the time of receipt.
#[test]
fn the_senders_logout_at_is_taken_within_bounds() {
    let hub = HubDir::quiet();
    let conf = hub.conf(&hub.three(), "HUB_MAX_AGE_SECS \"3600\"");
    let now = dacs_signout::testing::unix_secs(std::time::SystemTime::now());
    for (sent, taken) in [
        (json!(now - 600), true),
        (json!((now - 30) as f64 + 0.5), true),
        (json!(now + 3600), false),
        (json!(now - 7200), false),
        (json!(0), false),
    ] {
        let b = json!({"user_name": "bob", "user_agent": UA, "logout_at": sent}).to_string();
        let out = hub.call(logout("/", &b, KC_TOKEN), &conf);
        let id = answered(&out, 200)["event_id"].as_str().unwrap().to_owned();
        let record = hub.records("new").into_iter().find(|r| r["event_id"] == id.as_str()).unwrap();
        let at = record["logout_at"].as_u64().unwrap();
        if taken {
            assert_eq!(at, sent.as_f64().unwrap() as u64, "{sent}");
            assert!(out.log.contains("logout_at=sender"), "{}", out.log);
        } else {
            assert!(at >= now && at <= now + 10, "{sent}: {at}");
            assert!(out.log.contains("logout_at=received"), "{}", out.log);
        }
    }
}

/// Each sender has its own bucket: over it, 429 with `Retry-After` (this project's relay
/// retries a 429), and nothing spooled; the other sender is not slowed down.
#[test]
fn each_sender_is_rate_limited_on_its_own() {
    let hub = HubDir::quiet();
    let conf = hub.conf(&hub.three(), "HUB_SENDER_RATE \"2/60\"");
    for _ in 0..2 {
        answered(&hub.call(logout("/", &body("bob", UA), KC_TOKEN), &conf), 200);
    }
    let out = hub.call(logout("/", &body("bob", UA), KC_TOKEN), &conf);
    answered(&out, 429);
    let wait: u64 = out.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    answered(&hub.call(logout("/", &body("amy", UA), WP_TOKEN), &conf), 200);
    assert_eq!(hub.records("new").len(), 9, "3 events of 3 receivers");
}

/// This project's own relay, pointed at the hub (over HTTP), judges its signals delivered.
#[test]
fn this_projects_relay_judges_the_hub_delivered() {
    let hub = HubDir::quiet();
    let conf_path = hub.dir.write("hub.conf", &hub.conf(&hub.three(), ""));
    let gateway = Gateway::start(
        HUB,
        "/api/v1/actions/logout",
        vec![
            ("DACS_SIGNOUT_CONF".into(), conf_path.display().to_string()),
            ("KC_TOKEN".into(), KC_TOKEN.into()),
        ],
    );
    let relay = TempDir::new("relay-to-hub");
    let out = Cgi::get("")
        .example(&format!(
            "IDMS_BASE_API_URL \"http://127.0.0.1:{}/api/v1/\"\nRELAY_SPOOL_DIR \"{}\"\n\
             RELAY_IDENTITY \"cookies\"\nRELAY_SEND_LOGOUT_AT \"yes\"\nRELAY_TIMEOUT_SECS \"5\"",
            gateway.port(),
            relay.path().join("spool").display()
        ))
        .cookie("DACS:EX::FEDROOT:bobo=c00kie; DACS:EX::DSS:amy@uni.example=c00kie")
        .env("COMMONS_PROFILES_API_TOKEN", KC_TOKEN)
        .env("HTTP_USER_AGENT", UA)
        .run();
    out.status(200);
    assert!(out.log.contains("relay=spooled:2"), "{}", out.log);
    let log_path = relay.path().join("spool/relay.log");
    let deadline = Instant::now() + Duration::from_secs(20);
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        if log.lines().count() >= 2 {
            break log;
        }
        assert!(Instant::now() < deadline, "relay log: {log}\nhub: {}", gateway.logs());
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(log.matches("outcome=delivered status=200 attempt=1").count(), 2, "{log}");
    // The hub took the relay's logout_at: the signout's time.
    let records = hub.records("new");
    assert_eq!(records.len(), 6);
    assert!(gateway.logs().matches("logout_at=sender").count() == 2, "{}", gateway.logs());
}

/// The event id of the only event in `out`'s answer.
#[track_caller]
fn event_id(out: &Output) -> String {
    answered(out, 200)["event_id"].as_str().unwrap().to_owned()
}

/// A receiver line: `NAME URL FORM [TOKEN_ENV]`.
fn receiver(name: &str, peer: &Peer, path: &str, form: &str, token: bool) -> String {
    let token = if token { " RECEIVER_TOKEN" } else { "" };
    format!("{name} {} {form}{token}", peer.url(path))
}

#[track_caller]
fn one_call(peer: &Peer, what: &str) -> Received {
    let got = peer.wait_for(1, Duration::from_secs(20));
    assert_eq!(got.len(), 1, "{what}: {got:?}");
    got.into_iter().next().unwrap()
}

/// Every receiver is called in its own form, the sender's own too, with `logout_at` and
/// `event_id`, its token only if it takes one; by the delivery process the request started;
/// each delivery is kept in `done/` and logged once.
#[test]
fn every_receiver_is_called_in_its_own_form() {
    let hub = HubDir::new();
    let peers: Vec<Peer> = (0..4).map(|_| Peer::always(Reply::ok())).collect();
    let conf = hub.conf(
        &[
            receiver("kcworks", &peers[0], "/api/webhooks/users/logout", "post-query", true),
            receiver("guide", &peers[1], "/logout?app=wp", "get-query", false),
            receiver("bccget", &peers[2], "/bcc/logout", "bcc-get", false),
            receiver("bccpost", &peers[3], "/bcc/logout", "bcc-post", true),
        ],
        "",
    );
    let sent_at = dacs_signout::testing::unix_secs(std::time::SystemTime::now()) - 5;
    let b = json!({"user_name": "amy b@uni.example", "user_agent": UA, "logout_at": sent_at});
    let out = hub.call(logout("/", &b.to_string(), KC_TOKEN), &conf);
    let id = event_id(&out);
    assert!(out.log.contains("delivery=started"), "{}", out.log);
    let calls: Vec<Received> = peers.iter().map(|p| one_call(p, "each receiver")).collect();
    let common = |r: &Received| {
        assert_eq!(r.param("logout_at"), Some(sent_at.to_string()), "{r:?}");
        assert_eq!(r.param("event_id").as_deref(), Some(id.as_str()), "{r:?}");
    };
    calls.iter().for_each(common);
    let bearer = format!("Bearer {RECEIVER_TOKEN}");
    // Profiles' own call: POST ?username=, a bodiless JSON POST, with the token.
    let r = &calls[0];
    assert_eq!((r.method.as_str(), r.path()), ("POST", "/api/webhooks/users/logout"));
    assert_eq!(r.param("username").as_deref(), Some("amy b@uni.example"));
    assert!(r.query().starts_with("username=amy+b%40uni.example&"), "{}", r.query());
    assert_eq!(r.header("Authorization"), Some(bearer.as_str()));
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    assert!(r.body.is_empty());
    // The guide's GET, its own query kept, no token.
    let r = &calls[1];
    assert_eq!((r.method.as_str(), r.path()), ("GET", "/logout"));
    assert_eq!(
        (r.param("app").as_deref(), r.param("username").as_deref()),
        (Some("wp"), Some("amy b@uni.example"))
    );
    assert_eq!(r.header("Authorization"), None);
    // BCC's GET ?userid= and POST {"userId"}.
    let r = &calls[2];
    assert_eq!(
        (r.method.as_str(), r.param("userid").as_deref()),
        ("GET", Some("amy b@uni.example"))
    );
    assert_eq!(r.param("username"), None);
    let r = &calls[3];
    assert_eq!(r.method, "POST");
    assert_eq!(
        serde_json::from_slice::<Value>(&r.body).unwrap(),
        json!({"userId": "amy b@uni.example"})
    );
    assert_eq!(r.header("Authorization"), Some(bearer.as_str()));
    // Each attempt is logged once its record is settled.
    hub.wait_until("all kept in done/ and logged", Duration::from_secs(20), |h| {
        h.records("done").len() == 4 && h.log().lines().count() == 4
    });
    let done = hub.records("done");
    assert!(
        done.iter().all(|r| r["attempts"] == 1 && r["status"] == 200 && r["delivered"].is_u64())
    );
    let log = hub.log();
    assert_eq!(log.matches("outcome=delivered status=200 attempt=1").count(), 4, "{log}");
    assert!(
        log.contains(&format!("event={id} receiver=kcworks user=\"amy b@uni.example\"")),
        "{log}"
    );
    assert!(!log.contains(RECEIVER_TOKEN) && !log.contains(KC_TOKEN));
    assert!(hub.records("new").is_empty() && hub.records("work").is_empty());
}

/// One slow or hung receiver delays no other: each call has its own worker.
#[test]
fn a_hung_receiver_delays_no_other() {
    let hub = HubDir::new();
    let hung = Peer::always(Reply::Hang);
    let slow = Peer::slow(1_000);
    let fast: Vec<Peer> = (0..3).map(|_| Peer::always(Reply::ok())).collect();
    let mut receivers = vec![
        receiver("hung", &hung, "/", "get-query", false),
        receiver("slow", &slow, "/", "get-query", false),
    ];
    receivers.extend(
        fast.iter()
            .enumerate()
            .map(|(i, p)| receiver(&format!("fast{i}"), p, "/", "get-query", false)),
    );
    let conf = hub.conf(&receivers, "HUB_TIMEOUT_SECS \"2\"");
    let started = Instant::now();
    event_id(&hub.call(logout("/", &body("bob", UA), KC_TOKEN), &conf));
    for p in &fast {
        let at = one_call(p, "fast").at.duration_since(started);
        observe(
            "hub",
            "a fast receiver's call after the sender's request began (ms)",
            at.as_millis(),
        );
        assert!(at < Duration::from_millis(1_500), "{at:?}");
    }
    let slow_at = one_call(&slow, "slow").at.duration_since(started);
    assert!(slow_at < Duration::from_millis(1_500), "{slow_at:?}");
    one_call(&hung, "hung");
    hub.wait_until("4 delivered", Duration::from_secs(20), |h| h.records("done").len() == 4);
    // The hung one times out (HUB_TIMEOUT_SECS), and waits for its next try.
    hub.wait_until("the hung call timed out", Duration::from_secs(20), |h| {
        h.log().contains("receiver=hung") && h.records("new").len() == 1
    });
    let line = hub.log().lines().find(|l| l.contains("receiver=hung")).unwrap().to_owned();
    assert!(line.contains("outcome=retry status=- attempt=1"), "{line}");
}

/// Each kind of receiver answer has its defined outcome, in the log and in the spool: a
/// redirect (not followed, retried), 500 then 200 (delivered on the second attempt), 200 with
/// garbage (delivered: any 2xx acknowledges), 404 (dead), 401 (retried, and loud), a hang
/// (timed out, retried). Driven by `drain --now`, one pass at a time.
#[test]
fn every_receiver_answer_has_its_outcome() {
    let hub = HubDir::quiet();
    let redirecting = Peer::redirecting();
    let flaky = Peer::failing_first(1);
    let garbage = Peer::always(Reply::status(200, "<html>not JSON at all"));
    let gone = Peer::always(Reply::status(404, "<h1>Not Found</h1>"));
    let refusing = Peer::always(Reply::status(401, r#"{"detail":"bad token"}"#));
    let hung = Peer::always(Reply::Hang);
    let conf = hub.conf(
        &[
            receiver("redirecting", &redirecting, "/", "post-query", true),
            receiver("flaky", &flaky, "/", "post-query", false),
            receiver("garbage", &garbage, "/", "get-query", false),
            receiver("gone", &gone, "/", "bcc-get", false),
            receiver("refusing", &refusing, "/", "bcc-post", true),
            receiver("hung", &hung, "/", "get-query", false),
        ],
        "HUB_TIMEOUT_SECS \"1\"",
    );
    let id = event_id(&hub.call(logout("/", &body("bob", UA), KC_TOKEN), &conf));
    let (code, report, stderr) = hub.command(&["drain", "--now"]);
    assert_eq!(code, 0, "{report}{stderr}");
    assert!(report.contains("delivered=1 retried=4 dead=1"), "{report}");
    // 401 is loud: on the drain's stderr as well as in the log.
    assert!(
        stderr.contains("receiver=refusing") && stderr.contains("alert=token-refused"),
        "{stderr}"
    );
    let (_, report, _) = hub.command(&["drain", "--now"]);
    assert!(report.contains("delivered=1 retried=3"), "{report}");
    let log = hub.log();
    let line = |name: &str, attempt: u32| -> String {
        log.lines()
            .find(|l| {
                l.contains(&format!("receiver={name} "))
                    && l.contains(&format!("attempt={attempt}"))
            })
            .unwrap_or_else(|| panic!("{name} {attempt}: {log}"))
            .to_owned()
    };
    assert!(line("redirecting", 1).contains("outcome=retry status=302"), "{log}");
    assert!(line("redirecting", 1).contains("not followed"), "{log}");
    assert!(line("flaky", 1).contains("outcome=retry status=500"), "{log}");
    assert!(line("flaky", 2).contains("outcome=delivered status=200"), "{log}");
    assert!(line("garbage", 1).contains("outcome=delivered status=200"), "{log}");
    assert!(line("gone", 1).contains("outcome=dead status=404"), "{log}");
    assert!(line("refusing", 1).contains("outcome=retry status=401"), "{log}");
    assert!(line("hung", 1).contains("outcome=retry status=-"), "{log}");
    assert!(!log.contains(RECEIVER_TOKEN), "{log}");
    // Redirects are never followed: the redirecting receiver saw two calls, both to itself.
    assert_eq!(redirecting.received().len(), 2);
    assert!(redirecting.received().iter().all(|r| r.path() == "/"));
    assert_eq!(gone.received().len(), 1, "dead is not retried");
    // In the spool: done, dead (with why), waiting.
    let names = |state: &str| -> Vec<String> {
        hub.records(state).iter().map(|r| r["receiver"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names("done"), ["flaky", "garbage"]);
    assert_eq!(names("dead"), ["gone"]);
    assert_eq!(names("new"), ["hung", "redirecting", "refusing"]);
    let why = std::fs::read_to_string(
        hub.spool().join(format!("dead/{}-gone.why", id.split_once('.').unwrap().1)),
    )
    .unwrap();
    assert_eq!(why.trim(), "HTTP 404");
}

/// Several drainers at once deliver each record once.
#[test]
fn several_drainers_deliver_each_record_once() {
    let hub = HubDir::quiet();
    let peers: Vec<Peer> = (0..3).map(|_| Peer::slow(20)).collect();
    let receivers: Vec<String> = peers
        .iter()
        .enumerate()
        .map(|(i, p)| receiver(&format!("r{i}"), p, "/", "get-query", false))
        .collect();
    let conf = hub.conf(&receivers, "HUB_WORKERS \"3\"");
    let ids: Vec<String> = (0..20)
        .map(|i| event_id(&hub.call(logout("/", &body(&format!("user{i}"), UA), KC_TOKEN), &conf)))
        .collect();
    let drainers: Vec<_> = (0..4).map(|_| hub.command_process(&["drain", "--now"])).collect();
    for d in drainers {
        let out = d.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    for p in &peers {
        let mut got: Vec<String> =
            p.received().iter().map(|r| r.param("event_id").unwrap()).collect();
        got.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(got, want, "each event once at each receiver");
    }
    assert_eq!(hub.records("done").len(), 60);
}

/// A small deterministic generator for the kill test's random points (seed printed).
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `kill -9` of the delivery process at random points: every receiver still gets every event
/// at least once, and a repeat carries the same event id (the receiver deduplicates by it).
/// Duplicates come only from deliveries cut between the answer and the record: at most one
/// per worker per kill.
#[test]
fn kill_9_of_the_fan_out_loses_nothing() {
    let hub = HubDir::quiet();
    let peers: Vec<Peer> = (0..3)
        .map(|i| {
            Peer::start(move |n, _| {
                std::thread::sleep(Duration::from_millis(((n * 7 + i * 13) % 40) as u64));
                Reply::ok()
            })
        })
        .collect();
    let receivers: Vec<String> = peers
        .iter()
        .enumerate()
        .map(|(i, p)| receiver(&format!("r{i}"), p, "/", "post-query", false))
        .collect();
    let workers = 4;
    let conf = hub.conf(&receivers, &format!("HUB_WORKERS \"{workers}\"\nHUB_RETRY_SECS \"1\""));
    let ids: Vec<String> = (0..40)
        .map(|i| event_id(&hub.call(logout("/", &body(&format!("user{i}"), UA), KC_TOKEN), &conf)))
        .collect();
    // The quiet spool's stand-in goes: the delivery process binds the socket itself.
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
            as u64
            | 1;
    observe("hub", "kill -9 test seed", seed);
    let mut random = XorShift(seed);
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while hub.records("done").len() < 120 && Instant::now() < deadline {
        let mut process = hub.command_process(&["deliver"]);
        std::thread::sleep(Duration::from_millis(20 + random.below(150)));
        process.kill().unwrap(); // SIGKILL
        process.wait().unwrap();
        kills += 1;
    }
    // Whatever the last kill left claimed is taken back at once (its process is gone).
    let (code, report, stderr) = hub.command(&["drain", "--now"]);
    assert_eq!(code, 0, "{report}{stderr}");
    assert_eq!(hub.records("done").len(), 120, "{report}");
    assert!(hub.records("new").is_empty() && hub.records("work").is_empty());
    let mut duplicates = 0;
    for p in &peers {
        let got: Vec<String> = p.received().iter().map(|r| r.param("event_id").unwrap()).collect();
        for id in &ids {
            let n = got.iter().filter(|g| *g == id).count();
            assert!(n >= 1, "event {id} never reached a receiver");
            duplicates += n - 1;
        }
        assert!(got.iter().all(|g| ids.contains(g)));
    }
    observe("hub", "kill -9 runs, duplicates", format!("{kills} kills, {duplicates} repeats"));
    assert!(kills >= 2, "the test killed the delivery process only {kills} times");
    assert!(duplicates <= kills * workers, "{duplicates} repeats after {kills} kills");
}

/// No proxy from the environment, whatever it says: the token goes to the receiver only.
#[test]
fn the_fan_out_uses_no_proxy_from_the_environment() {
    let hub = HubDir::quiet();
    let proxy = Peer::always(Reply::ok());
    let target = Peer::always(Reply::ok());
    let conf = hub.conf(&[receiver("r", &target, "/", "post-query", true)], "");
    event_id(&hub.call(logout("/", &body("bob", UA), KC_TOKEN), &conf));
    let out = std::process::Command::new(HUB)
        .env_clear()
        .args(["drain", "--now"])
        .env("DACS_SIGNOUT_CONF", hub.dir.path().join("hub.conf"))
        .env("RECEIVER_TOKEN", RECEIVER_TOKEN)
        .env("HTTP_PROXY", proxy.url("/"))
        .env("http_proxy", proxy.url("/"))
        .env("ALL_PROXY", proxy.url("/"))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("delivered=1"), "{out:?}");
    assert_eq!(target.received().len(), 1);
    assert!(proxy.received().is_empty());
}

/// The receipt of an event, over HTTP to the sender that sent it (404 to anyone else, and for
/// an id this instance does not hold), and on the command line.
#[test]
fn receipts_say_where_each_delivery_stands() {
    let hub = HubDir::quiet();
    let ok = Peer::always(Reply::ok());
    let failing = Peer::always(Reply::status(503, "down for maintenance"));
    let gone = Peer::always(Reply::status(410, "gone"));
    let conf = hub.conf(
        &[
            receiver("ok", &ok, "/", "get-query", false),
            receiver("failing", &failing, "/", "get-query", false),
            receiver("gone", &gone, "/", "get-query", false),
        ],
        "",
    );
    let id = event_id(&hub.call(logout("/", &body("bob", UA), KC_TOKEN), &conf));
    // Before any delivery: all pending.
    let get = |path: &str, token: &str| {
        Cgi::get("").env("PATH_INFO", path).env("HTTP_AUTHORIZATION", &format!("Bearer {token}"))
    };
    let v = answered(&hub.call(get(&format!("/{id}/"), KC_TOKEN), &conf), 200);
    assert_eq!(v["summary"], json!({"delivered": 0, "pending": 3, "dead": 0, "unaccounted": 0}));
    assert_eq!(hub.command(&["drain", "--now"]).0, 0);
    for path in [format!("/{id}/"), format!("/{id}")] {
        let out = hub.call(get(&path, KC_TOKEN), &conf);
        let v = answered(&out, 200);
        assert_eq!(v["event_id"], id.as_str());
        assert_eq!((v["sender"].as_str(), v["user"].as_str()), (Some("kcworks"), Some("bob")));
        assert_eq!(
            v["summary"],
            json!({"delivered": 1, "pending": 1, "dead": 1, "unaccounted": 0})
        );
        let r = &v["receivers"];
        assert_eq!(
            (r[0]["name"].as_str(), r[0]["state"].as_str()),
            (Some("failing"), Some("pending"))
        );
        assert_eq!((r[0]["attempts"].as_u64(), r[0]["status"].as_u64()), (Some(1), Some(503)));
        assert_eq!(r[0]["last_error"], "HTTP 503");
        assert!(r[0]["next_attempt"].as_u64().unwrap() > v["received_at"].as_u64().unwrap());
        assert_eq!((r[1]["name"].as_str(), r[1]["state"].as_str()), (Some("gone"), Some("dead")));
        assert_eq!(r[1]["why"], "HTTP 410");
        assert_eq!(
            (r[2]["name"].as_str(), r[2]["state"].as_str()),
            (Some("ok"), Some("delivered"))
        );
        assert!(r[2]["delivered_at"].is_u64());
    }
    let head = hub.call(
        Cgi::head("")
            .env("PATH_INFO", &format!("/{id}/"))
            .env("HTTP_AUTHORIZATION", &format!("Bearer {KC_TOKEN}")),
        &conf,
    );
    assert_eq!((head.status, head.body.as_str()), (200, ""));
    // Anyone else: the same 404 as for an id that does not exist.
    let other_instance = format!("hub2.{}", id.split_once('.').unwrap().1);
    let unknown = format!("hub1.{:011}-{}", 1, "0".repeat(32));
    for (path, token) in [
        (format!("/{id}/"), WP_TOKEN),
        (format!("/{other_instance}/"), KC_TOKEN),
        (format!("/{unknown}/"), KC_TOKEN),
    ] {
        let v = answered(&hub.call(get(&path, token), &conf), 404);
        assert_eq!(v["error"], "no event of this sender has that id here", "{path}");
    }
    answered(&hub.call(get("/../../etc/passwd/", KC_TOKEN), &conf), 404);
    answered(&hub.call(get(&format!("/{id}/"), "wrong"), &conf), 401);
    // The command line: the spool's counts, and the event's receipt.
    let (code, text, _) = hub.command(&["status"]);
    assert_eq!(code, 0);
    assert!(text.contains("instance hub1: waiting=1 under_way=0 dead=1"), "{text}");
    let (code, text, err) = hub.command(&["status", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with(&format!("event {id} sender=kcworks user=\"bob\"")), "{text}");
    assert!(text.contains("delivered=1 pending=1 dead=1"), "{text}");
    assert!(text.contains("\n  failing pending, next try "), "{text}");
    assert!(text.contains("\n  gone dead: HTTP 410 (attempts=1 status=410)"), "{text}");
    assert!(text.contains("\n  ok delivered "), "{text}");
    let (code, _, err) = hub.command(&["status", &other_instance]);
    assert_eq!(code, 1);
    assert!(err.contains("held by hub instance hub2"), "{err}");
    assert_eq!(hub.command(&["status", "nonsense"]).0, 1);
}

/// `dacs_logout_hub --check-config`: every problem of the hub's directives with its line; a
/// hub's `dacs.conf` needs no signout directives.
#[test]
fn the_hubs_configuration_is_checked_with_line_numbers() {
    let hub = HubDir::new();
    let good = hub.conf(&hub.three(), "");
    hub.dir.write("hub.conf", &good);
    let (code, out, err) = hub.command(&["--check-config"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("hub instance hub1: 2 sender(s), 3 receiver(s), up to 512 workers"),
        "{out}"
    );
    assert!(out.contains("warning: sender kcworks's $KC_TOKEN is not set here"), "{out}");
    assert!(out.ends_with(": ok\n"), "{out}");
    // A jurisdiction with a hub of its own (its own spool): each hub is summarised, named.
    let two = good.replace(
        "</Configuration>",
        &format!(
            "<Jurisdiction uri=\"hub.example.org/other\">\nHUB_SPOOL_DIR \"{}/other\"\n\
             HUB_INSTANCE \"hub2\"\nHUB_RECEIVER \"only http://127.0.0.1:9/x get-query\"\n\
             </Jurisdiction>\n</Configuration>",
            hub.dir.path().display()
        ),
    );
    hub.dir.write("hub.conf", &two);
    let (code, out, err) = hub.command(&["--check-config"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(": Default: hub instance hub1: 2 sender(s), 3 receiver(s)"), "{out}");
    assert!(
        // A jurisdiction's HUB_RECEIVER lines replace Default's, as any repeated directive.
        out.contains(
            ": Jurisdiction hub.example.org/other: hub instance hub2: 2 sender(s), 1 receiver(s)"
        ),
        "{out}"
    );
    assert!(out.contains(": Jurisdiction hub.example.org/other: warning: spool "), "{out}");
    // The same jurisdiction without a spool of its own: its deliveries would be sent by
    // Default's delivery process, to Default's receivers. A problem, on its line.
    let shared =
        two.replace(&format!("HUB_SPOOL_DIR \"{}/other\"\n", hub.dir.path().display()), "");
    hub.dir.write("hub.conf", &shared);
    let (code, out, _) = hub.command(&["--check-config"]);
    assert_eq!(code, 1, "{out}");
    let line =
        out.lines().find(|l| l.contains("shares HUB_SPOOL_DIR")).unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("Jurisdiction hub.example.org/other shares HUB_SPOOL_DIR")
            && line.contains("with Default")
            && line.contains(&format!(
                "line {}: ",
                shared.lines().position(|l| l.starts_with("<Jurisdiction")).unwrap() + 1
            )),
        "{line}"
    );
    let bad = conf(
        "HUB_SENDER \"kcworks\"\n\
         HUB_SENDER \"wp WP_TOKEN\"\n\
         HUB_SENDER \"wp2 WP_TOKEN\"\n\
         HUB_RECEIVER \"a ftp://x/ post-query\"\n\
         HUB_RECEIVER \"b https://x/ put-json\"\n\
         HUB_RECEIVER \"c https://x/ get-query T-ENV\"\n\
         HUB_RECEIVER \"d https://x/ get-query\"\n\
         HUB_RECEIVER \"d https://y/ get-query\"\n\
         HUB_WORKERS \"0\"\n\
         HUB_SENDER_RATE \"fast\"\n\
         HUB_INSTANCE \"a.b\"\n\
         HUB_SPOOL_DIR \"relative/path\"",
    );
    hub.dir.write("hub.conf", &bad);
    let (code, out, _) = hub.command(&["--check-config"]);
    assert_eq!(code, 1, "{out}");
    for (line, what) in [
        (3, "HUB_SENDER"),
        (5, "another sender's token too"),
        (6, "\"ftp://x/\" is not an http or https URL"),
        (7, "\"put-json\" is not a request form"),
        (8, "\"T-ENV\" is not an environment variable name"),
        (10, "d is named twice"),
        (11, "HUB_WORKERS"),
        (12, "HUB_SENDER_RATE"),
        (13, "HUB_INSTANCE"),
        (14, "HUB_SPOOL_DIR"),
    ] {
        assert!(
            out.lines().any(|l| l.contains(&format!("line {line}: ")) && l.contains(what)),
            "line {line} {what}:\n{out}"
        );
    }
    // The signout's own check reads the hub's directives too.
    let checked = std::process::Command::new(BIN)
        .env_clear()
        .args(["--check-config"])
        .env(
            "DACS_SIGNOUT_CONF",
            hub.dir.write(
                "signout.conf",
                &conf(&format!(
                    "{EXAMPLE}\nHUB_SENDER \"kcworks\"\nHUB_RECEIVER \"a https://x/ get-query\""
                )),
            ),
        )
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&checked.stdout);
    assert!(!checked.status.success() && text.contains("line 6: HUB_SENDER"), "{text}");
}

/// This project's receiver (its federation, with an SQLite registry) behind a CGI gateway at
/// `/api/logout`, taking the hub's token.
fn our_receiver() -> (crate::receiver::Federation, Gateway) {
    let fed = crate::receiver::Federation::new();
    let fed_conf = fed.dir.write("receiver.conf", &conf(&fed.directives("")));
    let ours = Gateway::start(
        RECEIVER,
        "/api/logout",
        vec![
            ("DACS_SIGNOUT_CONF".into(), fed_conf.display().to_string()),
            ("HUB_TOKEN".into(), RECEIVER_TOKEN.into()),
        ],
    );
    (fed, ours)
}

/// This project's receiver takes every form the hub sends (over HTTP, behind a CGI gateway),
/// with the hub's `logout_at`: each delivery is a 200, and the user is revoked at the event's
/// time.
#[test]
fn this_projects_receiver_takes_every_form_the_hub_sends() {
    let (fed, ours) = our_receiver();
    let hub = HubDir::quiet();
    let forms = ["post-query", "get-query", "bcc-get", "bcc-post"];
    let receivers: Vec<String> = forms
        .iter()
        .map(|form| format!("{} {} {form} RECEIVER_TOKEN", form.replace('-', ""), ours.url("/")))
        .collect();
    let conf = hub.conf(&receivers, "");
    let at = dacs_signout::testing::unix_secs(std::time::SystemTime::now()) - 120;
    let b = json!({"user_name": "bob", "user_agent": UA, "logout_at": at}).to_string();
    event_id(&hub.call(logout("/", &b, KC_TOKEN), &conf));
    let (code, report, err) = hub.command(&["drain", "--now"]);
    assert_eq!(code, 0, "{err}");
    assert!(report.contains("delivered=4 retried=0 dead=0"), "{report}\n{}", ours.logs());
    assert_eq!(fed.revoked_before("EX::FEDROOT:bob"), Some(at as i64 * 1000 + 999));
    assert_eq!(
        ours.logs().matches("dacs_logout_receiver: status=200").count(),
        4,
        "{}",
        ours.logs()
    );
}

/// Stops the delivery process whose pid is in `lock` (one a request started), if it runs.
fn stop_delivery_at(lock: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(lock) else { return };
    let Ok(pid) = text.trim().parse::<u32>() else { return };
    let alive = || std::path::Path::new(&format!("/proc/{pid}")).exists();
    if alive() {
        let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The whole chain under a real web server (lighttpd, as the examples mount it): a browser
/// signs out at `dacs_signout`, whose relay tells `dacs_logout_hub`, which fans out to three
/// receivers, one in each query form: a Profiles-style app (post-query, with a token), a BCC
/// app (bcc-get, none), and this project's `dacs_logout_receiver` (get-query), whose guard then
/// refuses the credential, though the browser elsewhere still holds it. The sender's receipt
/// says all three have it.
#[test]
fn lighttpd_chain_signout_hub_receivers_and_the_guard_refuses() {
    use crate::support::servers::{Request, ServerKind};
    let (fed, ours) = our_receiver();
    let guard = crate::guard::GuardProcess::start(&conf(&fed.directives("")), &[]);
    let profiles = Peer::always(Reply::ok());
    let bcc = Peer::always(Reply::status(200, "OK"));
    // Another browser (or a stolen copy) holds the same credential; the guard has seen it.
    let credential = "DACS:EX::FEDROOT:bob=the-session-value";
    assert_eq!(guard.authorize(credential).status, 200);
    // `logout_at` is in whole seconds: the signout comes in a later second than the sighting.
    std::thread::sleep(Duration::from_millis(1_100));
    let hub_conf = conf(&format!(
        "HUB_SENDER \"portal HUB_TOKEN_KCWORKS\"\nHUB_SPOOL_DIR \"@ROOT@/var/hub\"\n\
         HUB_INSTANCE \"hub1\"\n\
         HUB_RECEIVER \"profiles {} post-query HUB_TOKEN_RECEIVERS\"\n\
         HUB_RECEIVER \"bcc {} bcc-get\"\n\
         HUB_RECEIVER \"ours {} get-query HUB_TOKEN_RECEIVERS\"",
        profiles.url("/api/webhooks/users/logout"),
        bcc.url("/bcc/logout"),
        ours.url("/")
    ));
    let snippet = std::fs::read_to_string(examples_dir_hub()).unwrap();
    // Filled as an operator would; the server's own placeholders (@ROOT@) are then the harness's.
    let snippet = snippet
        .replace("@HUB_BIN@", "@ROOT@/cgi-bin/dacs_logout_hub")
        .replace("@HUB_CONF@", "@ROOT@/etc/hub.conf");
    let server = ServerKind::Lighttpd
        .setup()
        .conf(&conf(&format!(
            "{EXAMPLE}\nIDMS_BASE_API_URL \"http://127.0.0.1:@PORT@/api/v1/\"\n\
             RELAY_SPOOL_DIR \"@ROOT@/var/relay\"\nRELAY_IDENTITY \"cookies\"\n\
             RELAY_SEND_LOGOUT_AT \"yes\"\nRELAY_TIMEOUT_SECS \"10\""
        )))
        .hub_token(KC_TOKEN)
        .preamble(&format!(
            "export HUB_TOKEN_KCWORKS={KC_TOKEN} HUB_TOKEN_RECEIVERS={RECEIVER_TOKEN}"
        ))
        .cgi_program("dacs_logout_hub", HUB)
        .file("etc/hub.conf", &hub_conf)
        .append_config(&format!("\n{snippet}"))
        .start();
    let signout = server.ask(&Request::get("/cgi-bin/dacs_signout?FORMAT=JSON").cookie(credential));
    assert_eq!(signout.status, 200, "{}", server.all_logs());
    assert_eq!(signout.cookie_names(), ["DACS:EX::FEDROOT:bob"]);
    let within = Duration::from_secs(30);
    let p = profiles.wait_for(1, within).remove(0);
    assert_eq!((p.method.as_str(), p.param("username").as_deref()), ("POST", Some("bob")));
    assert_eq!(p.header("Authorization"), Some(format!("Bearer {RECEIVER_TOKEN}").as_str()));
    let id = p.param("event_id").unwrap();
    let b = bcc.wait_for(1, within).remove(0);
    assert_eq!((b.method.as_str(), b.param("userid").as_deref()), ("GET", Some("bob")));
    assert_eq!(b.header("Authorization"), None);
    assert_eq!(b.param("event_id").as_deref(), Some(id.as_str()));
    let deadline = Instant::now() + within;
    while fed.revoked_before("EX::FEDROOT:bob").is_none() {
        assert!(Instant::now() < deadline, "not revoked: {}\n{}", ours.logs(), server.all_logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    // The guard refuses the credential the browser elsewhere still holds, and expires it.
    let refused = guard.authorize(credential);
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(refused.all("Set-Cookie").iter().any(|c| c.starts_with("DACS:EX::FEDROOT:bob=;")));
    // A sign-in after the signout is served.
    std::thread::sleep(Duration::from_millis(1_100));
    assert_eq!(guard.authorize("DACS:EX::FEDROOT:bob=a-new-sign-in").status, 200);
    // The relay judged the hub's answer delivered, and the hub's receipt says all three have it.
    let relay_log = server.root().join("var/relay/relay.log");
    let deadline = Instant::now() + within;
    while !std::fs::read_to_string(&relay_log).unwrap_or_default().contains("outcome=delivered") {
        assert!(Instant::now() < deadline, "{}", server.all_logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    let receipt = |server: &servers::Server| {
        let r = server.ask(
            &Request::get(&format!("/api/v1/actions/logout/{id}/"))
                .header("Authorization", &format!("Bearer {KC_TOKEN}")),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        serde_json::from_str::<Value>(&r.text()).unwrap()
    };
    let deadline = Instant::now() + within;
    while receipt(&server)["summary"]["delivered"] != 3 {
        assert!(Instant::now() < deadline, "{}", receipt(&server));
        std::thread::sleep(Duration::from_millis(50));
    }
    let v = receipt(&server);
    assert_eq!(v["sender"], "portal");
    let log = server.log(ServerKind::Lighttpd.program_log());
    let hub_line = log.lines().find(|l| l.contains("dacs_logout_hub: status=200 route=logout"));
    let hub_line = hub_line.unwrap_or_else(|| panic!("{log}"));
    assert!(hub_line.contains("sender=portal user=bob") && hub_line.contains("logout_at=sender"));
    stop_delivery_at(&server.root().join("var/hub/deliver.lock"));
}

/// The hub mounted under Apache (mod_cgid) and nginx+fcgiwrap exactly as
/// `examples/apache/hub.conf` and `examples/nginx/hub.conf` say, the tokens in the server's
/// (fcgiwrap's) environment: a sender's logout is answered as KCWorks expects, both receivers
/// are called in their forms (one with its token), the receipt answers the sender, and a call
/// with a token that is no sender's is a 401 that spools nothing (under Apache too, though the
/// body it sent was never read).
fn the_hub_is_mounted_as_its_example_says(kind: servers::ServerKind) {
    use servers::Request;
    let profiles = Peer::always(Reply::ok());
    let bcc = Peer::always(Reply::status(200, "OK"));
    let hub_conf = conf(&format!(
        "HUB_SENDER \"portal HUB_TOKEN_KCWORKS\"\nHUB_SPOOL_DIR \"@ROOT@/var/hub\"\n\
         HUB_INSTANCE \"hub1\"\n\
         HUB_RECEIVER \"profiles {} post-query HUB_TOKEN_RECEIVERS\"\n\
         HUB_RECEIVER \"bcc {} bcc-get\"",
        profiles.url("/api/webhooks/users/logout"),
        bcc.url("/bcc/logout"),
    ));
    let server = hub_mounted(kind, &hub_conf);
    let name = kind.name();
    let ua = "Mozilla/5.0 (X11; Linux x86_64) the sender's user";
    let send = |target: &str, token: Option<&str>| {
        let mut request = Request::new("POST", target)
            .header("Content-Type", "application/json")
            .body(body("bob", ua).as_bytes());
        if let Some(token) = token {
            request = request.header("Authorization", &format!("Bearer {token}"));
        }
        server.ask(&request)
    };
    // No sender's token: 401, and nothing reaches a receiver.
    let refused = send("/api/v1/actions/logout/", Some("not-a-senders-token"));
    assert_eq!(refused.status, 401, "{name}: {}\n{}", refused.text(), server.all_logs());
    assert!(refused.header("WWW-Authenticate").is_some_and(|h| h.starts_with("Bearer")));
    let records: usize = ["new", "work", "done", "dead"]
        .iter()
        .map(|d| std::fs::read_dir(server.root().join("var/hub").join(d)).map_or(0, |e| e.count()))
        .sum();
    assert_eq!(records, 0, "{name}: the 401 spooled something");
    // Without the trailing slash, as KCWorks may call it.
    let answer = send("/api/v1/actions/logout", Some(KC_TOKEN));
    assert!(kcworks_accepts(answer.status, &answer.text(), "bob", ua), "{name}: {}", answer.text());
    let id = serde_json::from_str::<Value>(&answer.text()).unwrap()["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let within = Duration::from_secs(30);
    let p = profiles.wait_for(1, within).remove(0);
    assert_eq!((p.method.as_str(), p.param("username").as_deref()), ("POST", Some("bob")));
    assert_eq!(p.header("Authorization"), Some(format!("Bearer {RECEIVER_TOKEN}").as_str()));
    assert_eq!(p.param("event_id").as_deref(), Some(id.as_str()));
    let b = bcc.wait_for(1, within).remove(0);
    assert_eq!((b.method.as_str(), b.param("userid").as_deref()), ("GET", Some("bob")));
    assert_eq!(b.header("Authorization"), None);
    // The receipt, over HTTP, to the sender; a token that is no sender's gets a 401.
    let receipt = |token: &str| {
        server.ask(
            &Request::get(&format!("/api/v1/actions/logout/{id}/"))
                .header("Authorization", &format!("Bearer {token}")),
        )
    };
    let deadline = Instant::now() + within;
    loop {
        let r = receipt(KC_TOKEN);
        assert_eq!(r.status, 200, "{name}: {}", r.text());
        let v: Value = serde_json::from_str(&r.text()).unwrap();
        if v["summary"]["delivered"] == 2 {
            assert_eq!(v["sender"], "portal");
            break;
        }
        assert!(Instant::now() < deadline, "{name}: {v}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(receipt("not-a-senders-token").status, 401, "{name}");
    assert_eq!(profiles.received().len(), 1, "{name}: called once");
    stop_delivery_at(&server.root().join("var/hub/deliver.lock"));
}

#[test]
fn the_hub_under_apache_cgid_as_its_example_says() {
    the_hub_is_mounted_as_its_example_says(servers::ServerKind::ApacheCgid);
}

#[test]
fn the_hub_under_nginx_fcgiwrap_as_its_example_says() {
    the_hub_is_mounted_as_its_example_says(servers::ServerKind::Nginx);
}

fn examples_dir_hub() -> PathBuf {
    servers::examples_dir().join("lighttpd/hub.conf")
}

/// A hub instance under lighttpd, as `examples/lighttpd/hub.conf` mounts it: its own spool
/// (`@ROOT@/var/hub`) and instance name, these receivers.
fn hub_under_lighttpd(instance: &str, receivers: &[String]) -> servers::Server {
    let receivers: String = receivers.iter().map(|r| format!("HUB_RECEIVER \"{r}\"\n")).collect();
    let hub_conf = conf(&format!(
        "HUB_SENDER \"portal HUB_TOKEN_KCWORKS\"\nHUB_SPOOL_DIR \"@ROOT@/var/hub\"\n\
         HUB_INSTANCE \"{instance}\"\n{receivers}"
    ));
    hub_mounted(servers::ServerKind::Lighttpd, &hub_conf)
}

/// The hub under `kind`, mounted by the server's example snippet (`examples/SERVER/hub.conf`)
/// filled as an operator would, on `hub_conf` (written as `ROOT/etc/hub.conf`), the senders'
/// and receivers' tokens in the server's environment.
fn hub_mounted(kind: servers::ServerKind, hub_conf: &str) -> servers::Server {
    let example = match kind {
        servers::ServerKind::Nginx => "nginx/hub.conf",
        servers::ServerKind::Lighttpd => "lighttpd/hub.conf",
        servers::ServerKind::ApacheCgid | servers::ServerKind::ApacheCgi => "apache/hub.conf",
    };
    let snippet = std::fs::read_to_string(servers::examples_dir().join(example))
        .unwrap()
        .replace("@HUB_BIN@", "@ROOT@/cgi-bin/dacs_logout_hub")
        .replace("@HUB_CONF@", "@ROOT@/etc/hub.conf");
    kind.setup()
        .conf(&conf(EXAMPLE))
        .preamble(&format!(
            "export HUB_TOKEN_KCWORKS={KC_TOKEN} HUB_TOKEN_RECEIVERS={RECEIVER_TOKEN}"
        ))
        .cgi_program("dacs_logout_hub", HUB)
        .file("etc/hub.conf", hub_conf)
        .mount(&format!("\n{snippet}"))
        .start()
}

/// Where one machine is not enough: two hub instances, each with its own spool, behind one
/// lighttpd that spreads senders' events round robin and routes a receipt to the instance its
/// id names. Each event lives in exactly one instance, and every event reaches every receiver.
#[test]
fn two_hub_instances_behind_one_load_balancer() {
    use servers::{Request, ServerKind};
    let peers: Vec<Peer> = (0..3).map(|_| Peer::always(Reply::ok())).collect();
    let receivers: Vec<String> = peers
        .iter()
        .enumerate()
        .map(|(i, p)| format!("r{i} {} get-query HUB_TOKEN_RECEIVERS", p.url("/logout")))
        .collect();
    let instances =
        [hub_under_lighttpd("hub1", &receivers), hub_under_lighttpd("hub2", &receivers)];
    let backend =
        |i: usize| format!("( \"host\" => \"127.0.0.1\", \"port\" => {} )", instances[i].port);
    let front = ServerKind::Lighttpd
        .setup()
        .conf(&conf(EXAMPLE))
        .append_config(&format!(
            "\nserver.modules += ( \"mod_proxy\" )\n\
             $HTTP[\"url\"] =~ \"^/api/v1/actions/logout/hub1\\.\" {{\n\
             \x20   proxy.server = ( \"\" => ( {} ) )\n}}\n\
             else $HTTP[\"url\"] =~ \"^/api/v1/actions/logout/hub2\\.\" {{\n\
             \x20   proxy.server = ( \"\" => ( {} ) )\n}}\n\
             else $HTTP[\"url\"] =~ \"^/api/v1/actions/logout\" {{\n\
             \x20   proxy.balance = \"round-robin\"\n\
             \x20   proxy.server = ( \"\" => ( {}, {} ) )\n}}\n",
            backend(0),
            backend(1),
            backend(0),
            backend(1)
        ))
        .start();
    let mut ids = Vec::new();
    for i in 0..10 {
        let answer = front.ask(
            &Request::new("POST", "/api/v1/actions/logout/")
                .header("Content-Type", "application/json")
                .header("Authorization", &format!("Bearer {KC_TOKEN}"))
                .body(body(&format!("user{i}"), UA).as_bytes()),
        );
        assert!(
            kcworks_accepts(answer.status, &answer.text(), &format!("user{i}"), UA),
            "{}",
            answer.text()
        );
        let v: Value = serde_json::from_str(&answer.text()).unwrap();
        ids.push(v["event_id"].as_str().unwrap().to_owned());
    }
    let on =
        |instance: &str| ids.iter().filter(|id| id.starts_with(&format!("{instance}."))).count();
    observe(
        "hub",
        "events per instance behind round robin (hub1, hub2)",
        format!("{}, {}", on("hub1"), on("hub2")),
    );
    assert!(on("hub1") >= 3 && on("hub2") >= 3, "{ids:?}");
    // Every event reaches every receiver, once each here.
    for p in &peers {
        let got = p.wait_for(10, Duration::from_secs(30));
        let mut seen: Vec<String> = got.iter().map(|r| r.param("event_id").unwrap()).collect();
        seen.sort();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(seen, want);
    }
    // Each event is in exactly one spool; its receipt, asked through the front, comes from it.
    for id in &ids {
        let key = id.split_once('.').unwrap().1;
        let holders: Vec<bool> = instances
            .iter()
            .map(|s| {
                std::fs::read_dir(s.root().join("var/hub"))
                    .unwrap()
                    .flat_map(|d| std::fs::read_dir(d.unwrap().path()).into_iter().flatten())
                    .any(|f| f.unwrap().file_name().to_string_lossy().starts_with(key))
            })
            .collect();
        assert_eq!(holders.iter().filter(|h| **h).count(), 1, "{id}: {holders:?}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = front.ask(
                &Request::get(&format!("/api/v1/actions/logout/{id}/"))
                    .header("Authorization", &format!("Bearer {KC_TOKEN}")),
            );
            assert_eq!(r.status, 200, "{id}: {}", r.text());
            let v: Value = serde_json::from_str(&r.text()).unwrap();
            if v["summary"]["delivered"] == 3 {
                break;
            }
            assert!(Instant::now() < deadline, "{v}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    for s in &instances {
        stop_delivery_at(&s.root().join("var/hub/deliver.lock"));
    }
}

/// The long-running delivery process waits for the spool, delivers, and stops on SIGTERM.
#[test]
fn the_delivery_process_waits_for_its_spool_and_stops_on_sigterm() {
    let hub = HubDir::new();
    let peer = Peer::always(Reply::ok());
    let conf = hub.conf(&[receiver("r", &peer, "/", "get-query", false)], "");
    hub.dir.write("hub.conf", &conf);
    let mut process = hub.command_process(&["deliver"]);
    // No spool yet: it waits for the first request to make it (as the web server's user).
    std::thread::sleep(Duration::from_millis(300));
    assert!(process.try_wait().unwrap().is_none(), "it waits");
    let out = hub.call(logout("/", &body("bob", UA), KC_TOKEN), &conf);
    event_id(&out);
    peer.wait_for(1, Duration::from_secs(20));
    hub.wait_until("delivered", Duration::from_secs(20), |h| h.records("done").len() == 1);
    let _ = std::process::Command::new("kill").arg(process.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = process.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "still running after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(process.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("waiting for the first request to create it"), "{stderr}");
    assert!(stderr.contains("up to 512 workers, instance hub1"), "{stderr}");
    assert!(!hub.spool().join("wake.sock").exists(), "its socket goes with it");
}
