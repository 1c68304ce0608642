//! The guard (§13), spoken to over FastCGI as the web servers speak to it: passes, refusals
//! that expire the browser's copy, a new sign-in after a signout elsewhere, the idle timeout,
//! the denial page, the counters, a registry that fails, a clean stop, hostile bytes, and two
//! guards sharing one Redis.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::receiver::Federation;
use crate::support::fastcgi::{AUTHORIZER, Answer, RESPONDER, ask};
use crate::support::redis::RedisServer;
use crate::support::*;

pub const KEY: &str = "a-fingerprint-key-for-the-tests-0123456789";
const TOKEN: &str = "hub-to-us-t0ken-0123456789";

/// A running `dacs_guard` on a unix socket; SIGTERM on drop.
pub struct GuardProcess {
    pub socket: std::path::PathBuf,
    child: Option<Child>,
    /// What the guard wrote on stderr after its first line (read as it comes, so that the
    /// pipe never fills), printed when a test fails.
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    _dir: TempDir,
}

impl GuardProcess {
    pub fn start(conf_text: &str, extra_env: &[(&str, &str)]) -> GuardProcess {
        GuardProcess::start_with(conf_text, extra_env, 4)
    }

    /// As `start`, with this many workers.
    pub fn start_with(conf_text: &str, extra_env: &[(&str, &str)], workers: u8) -> GuardProcess {
        let dir = TempDir::new("guard");
        let conf = dir.write("dacs.conf", conf_text);
        let socket = dir.path().join("guard.sock");
        let mut child = Command::new(GUARD)
            .env_clear()
            .env("DACS_SIGNOUT_CONF", &conf)
            .env("DACS_REGISTRY_KEY", KEY)
            .envs(extra_env.iter().copied())
            .args(["--listen", &format!("unix:{}", socket.display())])
            .args(["--workers", &workers.to_string()])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        lines.read_line(&mut line).unwrap();
        assert!(line.contains("listening on unix:"), "{line}");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let log = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut line = String::new();
            while lines.read_line(&mut line).is_ok_and(|n| n > 0) {
                log.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        GuardProcess { socket, child: Some(child), stderr, _dir: dir }
    }

    /// What the guard wrote on stderr after its first line, so far.
    pub fn log(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn authorize(&self, cookie: &str) -> Answer {
        ask(&self.socket, AUTHORIZER, &[("HTTP_COOKIE", cookie), ("REQUEST_URI", "/protected/")])
    }

    /// SIGTERM, and the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        child.wait().unwrap()
    }
}

impl Drop for GuardProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "dacs_guard's stderr:\n{}",
                self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
            );
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn fed_conf(fed: &Federation, extra: &str) -> String {
    conf(&fed.directives(extra))
}

#[track_caller]
fn passes(answer: &Answer) {
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.headers.is_empty(), "a pass carries nothing but its status: {answer:?}");
}

/// The hub's call to the receiver, for `user`: answered 200.
fn hub_says_signed_out(fed: &Federation, user: &str) -> Output {
    let out = fed.call(
        Cgi::method("POST", &format!("username={user}"))
            .env("CONTENT_LENGTH", "0")
            .env("HTTP_AUTHORIZATION", &format!("Bearer {TOKEN}")),
        "",
    );
    assert_eq!(out.status, 200, "{}", out.log);
    out
}

#[test]
fn a_signout_elsewhere_ends_the_credentials_seen_before_it() {
    let fed = Federation::new();
    let guard = GuardProcess::start(&fed_conf(&fed, ""), &[]);
    // No credential: authentication is DACS's, the guard lets it through.
    passes(&guard.authorize("theme=dark"));
    let bob = "DACS:EX::FEDROOT:bob=first-sign-in";
    let jar = format!("{bob}; DACS:EX::DSS:amy=hers; theme=dark");
    passes(&guard.authorize(&jar));
    std::thread::sleep(Duration::from_millis(20));
    hub_says_signed_out(&fed, "bob");
    // Refused, and the browser's copy of bob's credential (only his) expired.
    let refused = guard.authorize(&jar);
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.expired(), ["DACS:EX::FEDROOT:bob"]);
    assert_eq!(
        refused.all("Set-Cookie"),
        [
            "DACS:EX::FEDROOT:bob=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Path=/; Domain=example.org; Secure; HttpOnly"
        ]
    );
    assert!(refused.body.contains("signed out"), "{}", refused.body);
    // A copy of the same credential in another browser: refused too.
    assert_eq!(guard.authorize(bob).status, 401);
    // Signed in again (a new credential value, first seen after the signout): served.
    std::thread::sleep(Duration::from_millis(20));
    passes(&guard.authorize("DACS:EX::FEDROOT:bob=second-sign-in"));
    // A late or repeated call of the hub, for the earlier signout, ends nothing newer.
    let before = dacs_signout::testing::unix_secs(std::time::SystemTime::now()) - 30;
    hub_says_signed_out(&fed, &format!("bob&logout_at={before}"));
    passes(&guard.authorize("DACS:EX::FEDROOT:bob=second-sign-in"));
    // Amy's credential was never revoked.
    passes(&guard.authorize("DACS:EX::DSS:amy=hers"));
    // logout_at is whole seconds: a credential seen earlier in that very second is revoked too.
    passes(&guard.authorize("DACS:EX::FEDROOT:carol=same-second"));
    let now = dacs_signout::testing::unix_secs(std::time::SystemTime::now());
    hub_says_signed_out(&fed, &format!("carol&logout_at={now}"));
    assert_eq!(guard.authorize("DACS:EX::FEDROOT:carol=same-second").status, 401);
}

/// Signing out here revokes the credentials the browser gave up (§12): a copy kept elsewhere
/// (another browser, a stolen cookie) is refused by every guard, a new sign-in is not.
#[test]
fn a_signout_here_revokes_the_copies_of_what_it_removed() {
    let fed = Federation::new();
    let guard = GuardProcess::start(&fed_conf(&fed, ""), &[]);
    let bob = "DACS:EX::FEDROOT:bob=the-copy";
    passes(&guard.authorize(bob));
    let out = Cgi::get("FORMAT=JSON")
        .config(&fed_conf(&fed, ""))
        .env("DACS_REGISTRY_KEY", KEY)
        .cookie(&format!("{bob}; DACS:EX::DSS:amy=hers"))
        .run();
    out.status(200);
    assert_eq!(out.expired().len(), 2, "{}", out.log);
    assert!(out.log.contains(" revoke=spooled:2"), "{}", out.log);
    // The delivery child applies it once the response is out; bounded wait.
    let refused = (0..100)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            guard.authorize(bob)
        })
        .find(|a| a.status == 401)
        .expect("the copy is refused within five seconds");
    assert_eq!(refused.expired(), ["DACS:EX::FEDROOT:bob"]);
    assert_eq!(guard.authorize("DACS:EX::DSS:amy=hers").status, 401);
    // Only those values: bob signing in again is served, and so is another of amy's.
    passes(&guard.authorize("DACS:EX::FEDROOT:bob=signed-in-again"));
    passes(&guard.authorize("DACS:EX::DSS:amy=another"));
    let log = std::fs::read_to_string(fed.spool().join("relay.log")).unwrap();
    assert!(log.contains("outcome=applied"), "{log}");
    assert!(!log.contains("the-copy"), "no cookie value is logged: {log}");
}

/// A spool that cannot be used: the revocation is still applied, once, by the delivery child.
#[test]
fn a_signout_without_a_spool_revokes_on_a_best_effort() {
    let fed = Federation::new();
    let guard = GuardProcess::start(&fed_conf(&fed, ""), &[]);
    let bob = "DACS:EX::FEDROOT:bob=the-copy";
    passes(&guard.authorize(bob));
    let conf = fed_conf(&fed, "").replace(
        &format!("RELAY_SPOOL_DIR \"{}\"", fed.spool().display()),
        "RELAY_SPOOL_DIR \"/dev/null/spool\"",
    );
    let out = Cgi::get("").config(&conf).env("DACS_REGISTRY_KEY", KEY).cookie(bob).run();
    out.status(200);
    assert!(
        out.log.contains(" revoke=\"best-effort:1 (spool /dev/null/spool unusable"),
        "{}",
        out.log
    );
    let refused = (0..100)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            guard.authorize(bob)
        })
        .find(|a| a.status == 401);
    assert!(refused.is_some(), "the copy is refused within five seconds");
}

/// Without the fingerprint key the signout still signs the browser out, and says what it
/// could not do.
#[test]
fn a_signout_without_the_key_says_so() {
    let fed = Federation::new();
    let out = Cgi::get("").config(&fed_conf(&fed, "")).cookie("DACS:EX::FEDROOT:bob=x").run();
    out.status(200);
    assert_eq!(out.expired(), ["DACS:EX::FEDROOT:bob"]);
    assert!(
        out.log.contains(" revoke=\"key-missing: $DACS_REGISTRY_KEY is not set\""),
        "{}",
        out.log
    );
    // Nothing removed, nothing to revoke.
    let out = Cgi::get("").config(&fed_conf(&fed, "")).env("DACS_REGISTRY_KEY", KEY).run();
    assert!(!out.log.contains("revoke="), "{}", out.log);
}

#[test]
fn the_idle_timeout_ends_a_session_left_alone_and_not_one_in_use() {
    let fed = Federation::new();
    let guard = GuardProcess::start(&fed_conf(&fed, "IDLE_TIMEOUT_SECS \"2\""), &[]);
    let idle = "DACS:EX::FEDROOT:idle=1";
    let busy = "DACS:EX::FEDROOT:busy=1";
    passes(&guard.authorize(idle));
    passes(&guard.authorize(busy));
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(500));
        passes(&guard.authorize(busy));
    }
    let refused = guard.authorize(idle);
    assert_eq!(refused.status, 401, "{refused:?}");
    assert_eq!(refused.expired(), ["DACS:EX::FEDROOT:idle"]);
    assert!(refused.body.contains("idle"), "{}", refused.body);
}

/// The denial page (Apache's ErrorDocument, nginx's `@expired`): the status the server asks
/// for, the expiring lines again, a page that explains; for DACS's own 401, a plain one.
#[test]
fn the_denial_page_echoes_the_status_and_expires_again() {
    let fed = Federation::new();
    let guard = GuardProcess::start(&fed_conf(&fed, "GUARD_REFUSAL_STATUS \"403\""), &[]);
    let jar = "DACS:EX::FEDROOT:bob=one";
    passes(&guard.authorize(jar));
    std::thread::sleep(Duration::from_millis(20));
    hub_says_signed_out(&fed, "bob");
    assert_eq!(guard.authorize(jar).status, 403, "GUARD_REFUSAL_STATUS");
    for status in ["401", "403"] {
        let page =
            ask(&guard.socket, RESPONDER, &[("HTTP_COOKIE", jar), ("REDIRECT_STATUS", status)]);
        assert_eq!(page.status.to_string(), status);
        assert_eq!(page.expired(), ["DACS:EX::FEDROOT:bob"]);
    }
    let plain =
        ask(&guard.socket, RESPONDER, &[("HTTP_COOKIE", "theme=dark"), ("REDIRECT_STATUS", "401")]);
    assert_eq!((plain.status, plain.expired().len()), (401, 0));
    assert!(plain.body.contains("Sign-in required"), "{}", plain.body);
    let health = ask(&guard.socket, RESPONDER, &[("DACS_GUARD_ROLE", "health")]);
    let counters: serde_json::Value = serde_json::from_str(&health.body).unwrap();
    assert_eq!((counters["passes"].as_u64(), counters["refusals"].as_u64()), (Some(1), Some(1)));
    assert_eq!(counters["denial_pages"], 3);
}

/// The registry down (Redis stopped, so every worker's connection fails alike):
/// `GUARD_ON_STORE_ERROR` decides, and a revocation read lately still holds (a short outage
/// does not reopen it).
#[test]
fn a_registry_that_fails_follows_the_policy_and_keeps_recent_revocations() {
    let fed = Federation::new();
    for (policy, expected) in [("allow", 200), ("deny", 401)] {
        let mut redis = RedisServer::start();
        let text = conf(&format!(
            "{EXAMPLE}\nREGISTRY \"{}\"\nRECEIVER_TOKEN_ENV \"HUB_TOKEN\"\nRELAY_SPOOL_DIR \"{}\"\n\
             GUARD_ON_STORE_ERROR \"{policy}\"",
            redis.url(),
            fed.spool().display()
        ));
        let guard = GuardProcess::start(&text, &[]);
        let revoked = "DACS:EX::FEDROOT:bob=1";
        passes(&guard.authorize(revoked));
        std::thread::sleep(Duration::from_millis(20));
        let out = Cgi::method("POST", "username=bob")
            .program(RECEIVER)
            .config(&text)
            .env("HUB_TOKEN", TOKEN)
            .env("CONTENT_LENGTH", "0")
            .env("HTTP_AUTHORIZATION", &format!("Bearer {TOKEN}"))
            .run();
        assert_eq!(out.status, 200, "{}", out.log);
        assert_eq!(guard.authorize(revoked).status, 401, "read while the registry works");
        redis.stop();
        let other = guard.authorize(&format!("DACS:EX::FEDROOT:{policy}-someone=1"));
        assert_eq!(other.status, expected, "{policy}: {other:?}");
        assert!(other.expired().is_empty(), "nothing is known to be revoked");
        assert_eq!(guard.authorize(revoked).status, 401, "{policy}: the cached revocation holds");
        let health = ask(&guard.socket, RESPONDER, &[("DACS_GUARD_ROLE", "health")]);
        let counters: serde_json::Value = serde_json::from_str(&health.body).unwrap();
        assert!(counters["store_errors"].as_u64() >= Some(2), "{}", health.body);
    }
}

/// A registry connection that dropped (Redis restarted, a proxy's idle timeout: here Redis's
/// `CLIENT KILL`) is no outage: the read is tried again on a new connection, and the request
/// is judged, even with `GUARD_ON_STORE_ERROR "deny"`; nothing counts as a store error.
#[test]
fn a_dropped_registry_connection_is_read_again_not_denied() {
    let fed = Federation::new();
    let redis = RedisServer::start();
    let text = conf(&format!(
        "{EXAMPLE}\nREGISTRY \"{}\"\nRELAY_SPOOL_DIR \"{}\"\nGUARD_ON_STORE_ERROR \"deny\"",
        redis.url(),
        fed.spool().display()
    ));
    // One worker: the connection the kill drops is the one the next request uses.
    let guard = GuardProcess::start_with(&text, &[], 1);
    passes(&guard.authorize("DACS:EX::FEDROOT:bob=1"));
    let killed = Command::new("redis-cli")
        .args(["-u", &redis.url(), "CLIENT", "KILL", "TYPE", "normal"])
        .output()
        .unwrap();
    assert!(killed.status.success(), "{}", String::from_utf8_lossy(&killed.stderr));
    assert!(String::from_utf8_lossy(&killed.stdout).trim() != "0", "no connection was killed");
    passes(&guard.authorize("DACS:EX::FEDROOT:carol=1"));
    let health = ask(&guard.socket, RESPONDER, &[("DACS_GUARD_ROLE", "health")]);
    let counters: serde_json::Value = serde_json::from_str(&health.body).unwrap();
    assert_eq!(counters["store_errors"], 0, "{}", health.body);
    assert!(guard.log().contains("read again on a new connection"), "{}", guard.log());
}

/// SIGTERM: a clean stop, the socket removed. Hostile bytes on a connection end that
/// connection only.
#[test]
fn a_clean_stop_and_hostile_connections() {
    let fed = Federation::new();
    let mut guard = GuardProcess::start(&fed_conf(&fed, ""), &[]);
    for garbage in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[1, 1, 0, 1, 0, 8, 0, 0, 0, 2, 0][..],
        &[1, 4, 0, 1, 0xff, 0xff, 0, 0, 1][..],
    ] {
        let mut stream = std::os::unix::net::UnixStream::connect(&guard.socket).unwrap();
        stream.write_all(garbage).unwrap();
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut sink);
    }
    let huge = "x".repeat(300 * 1024);
    let mut stream = std::os::unix::net::UnixStream::connect(&guard.socket).unwrap();
    let _ = stream.write_all(&[1, 1, 0, 1, 0, 8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0]);
    for chunk in huge.as_bytes().chunks(60_000) {
        let mut record = vec![1, 4, 0, 1];
        record.extend_from_slice(&(chunk.len() as u16).to_be_bytes());
        record.extend_from_slice(&[0, 0]);
        record.extend_from_slice(chunk);
        if stream.write_all(&record).is_err() {
            break;
        }
    }
    drop(stream);
    passes(&guard.authorize("DACS:EX::FEDROOT:after=1"));
    let status = guard.stop();
    assert!(status.success(), "{status:?}");
    assert!(!guard.socket.exists(), "the socket is removed");
}

/// Its supervisor's stderr pipe gone, the guard goes on serving and still stops cleanly: a
/// log line it cannot write is dropped, never a panic.
#[test]
fn a_guard_whose_stderr_is_gone_goes_on() {
    let fed = Federation::new();
    let mut guard = GuardProcess::start(&fed_conf(&fed, ""), &[]);
    drop(guard.child.as_mut().unwrap().stderr.take());
    // A connection that speaks no FastCGI is logged (to nowhere now).
    let mut stream = std::os::unix::net::UnixStream::connect(&guard.socket).unwrap();
    stream.write_all(&[9; 16]).unwrap();
    drop(stream);
    passes(&guard.authorize("DACS:EX::FEDROOT:bob=v"));
    let status = guard.stop();
    assert!(status.success(), "{status:?}");
}

/// Two web servers, one Redis: a revocation received by one is refused by the other.
#[test]
fn two_guards_share_one_revocation_through_redis() {
    let redis = RedisServer::start();
    let fed = Federation::new();
    let shared = format!(
        "{EXAMPLE}\nREGISTRY \"{}\"\nRECEIVER_TOKEN_ENV \"HUB_TOKEN\"\nRELAY_SPOOL_DIR \"{}\"",
        redis.url(),
        fed.spool().display()
    );
    let first = GuardProcess::start(&conf(&shared), &[]);
    let second = GuardProcess::start(&conf(&shared), &[]);
    let jar = "DACS:EX::FEDROOT:bob=v";
    passes(&first.authorize(jar));
    passes(&second.authorize(jar));
    std::thread::sleep(Duration::from_millis(20));
    let out = Cgi::method("POST", "username=bob")
        .program(RECEIVER)
        .config(&conf(&shared))
        .env("HUB_TOKEN", TOKEN)
        .env("CONTENT_LENGTH", "0")
        .env("HTTP_AUTHORIZATION", &format!("Bearer {TOKEN}"))
        .run();
    assert_eq!(out.status, 200, "{}", out.log);
    assert!(out.log.contains("kept=registry"), "{}", out.log);
    assert_eq!(first.authorize(jar).status, 401);
    assert_eq!(second.authorize(jar).status, 401);
}

/// The guard refuses to start without what it needs, and says why.
#[test]
fn a_guard_without_a_registry_or_a_key_does_not_start() {
    let fed = Federation::new();
    let dir = TempDir::new("guard-bad");
    for (text, key, why) in
        [(conf(EXAMPLE), KEY, "no REGISTRY"), (fed_conf(&fed, ""), "short", "fingerprint key")]
    {
        let conf = dir.write("dacs.conf", &text);
        let out = Command::new(GUARD)
            .env_clear()
            .env("DACS_SIGNOUT_CONF", &conf)
            .env("DACS_REGISTRY_KEY", key)
            .args(["--listen", &format!("unix:{}", dir.path().join("s").display())])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains(why));
    }
    let out = Command::new(GUARD).env_clear().args(["--listen", "nowhere"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Eight receivers and four guards on one SQLite file, for 30 seconds (SPEC §12): every
/// revocation a receiver answered for is refused at once by another guard, a credential never
/// revoked always passes (the guards deny on a store error, so a "database is locked" would
/// show as a refusal), and no client sees an error.
#[test]
fn eight_receivers_and_four_guards_share_one_sqlite_file() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let seconds: u64 =
        std::env::var("DACS_TEST_CONCURRENCY_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let fed = Federation::new();
    let text = fed_conf(&fed, "GUARD_ON_STORE_ERROR \"deny\"");
    let guards: Vec<GuardProcess> = (0..4).map(|_| GuardProcess::start(&text, &[])).collect();
    let stop = AtomicBool::new(false);
    let (revoked, kept_in_spool, steady) =
        (AtomicUsize::new(0), AtomicUsize::new(0), AtomicUsize::new(0));
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    std::thread::scope(|scope| {
        for receiver in 0..8 {
            let (guards, fed, revoked, kept_in_spool) = (&guards, &fed, &revoked, &kept_in_spool);
            scope.spawn(move || {
                let mut n = 0;
                while std::time::Instant::now() < deadline {
                    let user = format!("r{receiver}-{n}");
                    let jar = format!("DACS:EX::FEDROOT:{user}=v");
                    passes(&guards[n % 4].authorize(&jar));
                    let out = hub_says_signed_out(fed, &user);
                    if out.log.contains("kept=spool") {
                        kept_in_spool.fetch_add(1, Ordering::Relaxed);
                    } else {
                        let refused = guards[(n + 1) % 4].authorize(&jar);
                        assert_eq!(refused.status, 401, "{user}: {refused:?}");
                    }
                    revoked.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            });
        }
        for g in 0..4 {
            let (guards, stop, steady) = (&guards, &stop, &steady);
            scope.spawn(move || {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let jar = format!("DACS:EX::FEDROOT:steady{}=v{}", n % 50, g);
                    passes(&guards[(g + n) % 4].authorize(&jar));
                    steady.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            });
        }
        std::thread::sleep(Duration::from_secs(seconds));
        // The receivers stop at the deadline by themselves; then the steady load.
        std::thread::sleep(Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
    });
    let (revoked, kept_in_spool) = (revoked.into_inner(), kept_in_spool.into_inner());
    assert!(revoked > 0);
    assert_eq!(kept_in_spool, 0, "the registry kept every revocation itself");
    for guard in &guards {
        let health = ask(&guard.socket, RESPONDER, &[("DACS_GUARD_ROLE", "health")]);
        let counters: serde_json::Value = serde_json::from_str(&health.body).unwrap();
        assert_eq!(counters["store_errors"], 0, "{}", health.body);
    }
    // Every revocation is in the file.
    let db = rusqlite::Connection::open(fed.registry()).unwrap();
    let stored: i64 = db.query_row("SELECT count(*) FROM revoked_user", [], |r| r.get(0)).unwrap();
    assert_eq!(stored, revoked as i64);
    // A read that met "database is locked" is read again on a new connection (and passed:
    // no store error above); how often, for the record.
    let again: usize =
        guards.iter().map(|g| g.log().matches("read again on a new connection").count()).sum();
    observe(
        "registry",
        &format!("8 receivers + 4 guards on one SQLite file, {seconds} s"),
        format!(
            "{revoked} revocations, each refused at once by another guard; {} steady passes; \
             {again} reads tried again",
            steady.into_inner()
        ),
    );
}
