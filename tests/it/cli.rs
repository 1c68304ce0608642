//! The command line: `--check-config`, `--version`, `demo`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::*;

fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).env_clear().args(args).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn check_config_names_the_line_and_lists_unknown_directives() {
    let dir = TempDir::new("check");
    let good = dir.write(
        "good.conf",
        &conf(&format!(
            "{EXAMPLE}\nAUTH_CREDENTIALS_DEFAULT_LIFETIME_SECS \"3600\"\nACS_ERROR_HANDLER \"* /error.html\""
        )),
    );
    let (code, out, _) = cli(&["--check-config", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("directives dacs_signout does not read (ignored):"), "{out}");
    assert!(
        out.contains("line 6: AUTH_CREDENTIALS_DEFAULT_LIFETIME_SECS")
            && out.contains("line 7: ACS_ERROR_HANDLER"),
        "{out}"
    );
    assert!(out.ends_with(": ok\n"), "{out}");

    let bad = dir.write("bad.conf", &conf(&format!("{EXAMPLE}\nSECURE_MODE \"sometimes\"")));
    let (code, out, _) = cli(&["--check-config", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("bad.conf: line 6: SECURE_MODE: invalid value \"sometimes\""), "{out}");

    let expr = dir.write("expr.conf", &conf(&format!("{EXAMPLE}\nJURISDICTION_NAME ${{Conf::X}}")));
    let (code, out, _) = cli(&["--check-config", expr.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(out.contains("line 6: JURISDICTION_NAME: only a double-quoted literal value"), "{out}");

    let regex =
        dir.write("regex.conf", &conf(&format!("{EXAMPLE}\nSIGNOUT_HANDLER_ALLOW \"re:(\"")));
    let (code, out, _) = cli(&["--check-config", regex.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");

    let juris = dir.write(
        "juris.conf",
        "<Configuration><Default>\nFEDERATION_NAME \"EX\"\nCOOKIE_NO_DOMAIN \"yes\"\n</Default>\n\
         <Jurisdiction uri=\"ex.org/cgi-bin\">\nJURISDICTION_NAME \"J\"\n</Jurisdiction></Configuration>",
    );
    let (code, out, _) = cli(&["--check-config", juris.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warning: a request matching no Jurisdiction uri would fail: JURISDICTION_NAME is required"),
        "{out}"
    );

    let (code, out, _) = cli(&["--check-config", "/nonexistent.conf"]);
    assert_eq!(code, 1);
    assert!(out.starts_with("/nonexistent.conf: cannot read the file"), "{out}");
}

#[test]
fn version_help_and_usage() {
    let (code, out, _) = cli(&["--version"]);
    assert_eq!(
        (code, out.as_str()),
        (0, concat!("dacs_signout ", env!("CARGO_PKG_VERSION"), "\n"))
    );
    assert_eq!(cli(&["--help"]).0, 0);
    let (code, _, err) = cli(&[]);
    assert_eq!(code, 2);
    assert!(err.contains("GATEWAY_INTERFACE"));
    assert_eq!(cli(&["--frobnicate"]).0, 2);
}

/// `--check-config` on a registry: where it is, whether its directory exists, the key and the
/// receiver's tokens in this environment, one SQLite file for jurisdictions on several hosts,
/// and a Redis reached or not.
#[test]
fn check_config_judges_the_registry() {
    let dir = TempDir::new("check-registry");
    let check = |text: &str, env: &[(&str, &str)]| {
        let file = dir.write("registry.conf", text);
        let out = Command::new(BIN)
            .env_clear()
            .envs(env.iter().copied())
            .args(["--check-config", file.to_str().unwrap()])
            .output()
            .unwrap();
        (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let missing = format!("{EXAMPLE}\nREGISTRY \"sqlite:{}/nowhere/r.db\"", dir.path().display());
    let (code, out) = check(&conf(&missing), &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("/nowhere does not exist: create it"), "{out}");
    assert!(out.contains("warning: $DACS_REGISTRY_KEY (the fingerprint key) is not set"), "{out}");
    assert!(
        out.contains("receiver: warning: no token variable is set here ($DACS_RECEIVER_TOKEN)")
    );

    let here = format!("{EXAMPLE}\nREGISTRY \"sqlite:{}/r.db\"", dir.path().display());
    let key = ("DACS_REGISTRY_KEY", "0123456789abcdef0123");
    let (code, out) = check(&conf(&here), &[key, ("DACS_RECEIVER_TOKEN", "t")]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("r.db: created on first use in"), "{out}");
    assert!(out.contains("the fingerprint key is in $DACS_REGISTRY_KEY"), "{out}");
    assert!(!out.contains("receiver: warning"), "{out}");
    let (code, out) = check(&conf(&here), &[("DACS_REGISTRY_KEY", "short")]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("$DACS_REGISTRY_KEY holds fewer than 16 bytes"), "{out}");

    let two_hosts = format!(
        "<Configuration>\n<Default>\n{here}\n</Default>\n\
         <Jurisdiction uri=\"a.example.org/cgi-bin\">JURISDICTION_NAME \"A\"</Jurisdiction>\n\
         <Jurisdiction uri=\"b.example.org/\">JURISDICTION_NAME \"B\"</Jurisdiction>\n\
         </Configuration>\n"
    );
    let (_, out) = check(&two_hosts, &[key]);
    assert!(
        out.contains("is one machine's file, and jurisdictions on 2 hosts use it (a.example.org, b.example.org)"),
        "{out}"
    );

    let redis = redis::RedisServer::start();
    let shared = format!("{EXAMPLE}\nREGISTRY \"{}\"", redis.url());
    let (code, out) = check(&conf(&shared), &[key]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("registry: {}: reachable", redis.url())), "{out}");
    drop(redis);
    let (code, out) = check(&conf(&shared), &[key]);
    assert_eq!(code, 0, "an unreachable Redis is a warning: {out}");
    assert!(out.contains("cannot be reached from here"), "{out}");
}

/// `dacs_signout demo --port 0`, killed when dropped.
pub struct Demo {
    child: Child,
    pub port: u16,
}

impl Demo {
    pub fn start() -> Demo {
        let mut child = Command::new(BIN)
            .env_clear()
            .args(["demo", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        let port: u16 = line
            .split("127.0.0.1:")
            .nth(1)
            .unwrap()
            .trim_end_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .unwrap();
        Demo { child, port }
    }

    /// Sends `request` as it is and returns all that came back: empty when the demo closed the
    /// connection without an answer.
    fn send(&self, request: &[u8]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        // The demo may answer before it has read everything: what matters is the answer.
        let _ = s.write_all(request);
        // Nothing more comes: a request cut short ends here instead of waiting for a timeout.
        let _ = s.shutdown(Shutdown::Write);
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer).into_owned()
    }

    fn get(&self, target: &str, cookie: &str) -> String {
        self.send(
            format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of an HTTP answer.
fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

/// The README's first command: a local portal, a real CGI child, real HTTP.
#[test]
fn demo_serves_a_portal_and_signs_out_through_the_real_binary() {
    let demo = Demo::start();
    let port = demo.port;
    let signin = demo.get("/signin?user=alice", "");
    assert!(signin.contains("Set-Cookie: DACS:DEMO::DEMO:alice="), "{signin}");
    assert!(demo.get("/", "DACS:DEMO::DEMO:alice=x").contains("DACS:DEMO::DEMO:alice"));
    let signout = demo
        .get("/cgi-bin/dacs_signout?DACS_SIGNOUT_HANDLER=/", "DACS:DEMO::DEMO:alice=x; theme=dark");
    assert!(signout.starts_with("HTTP/1.1 302 Found\r\n"), "{signout}");
    assert!(signout.contains(&format!(
        "Location: http://127.0.0.1:{port}/?DACS_VERSION=1.4&DACS_FEDERATION=DEMO&DACS_JURISDICTION=DEMO"
    )));
    assert!(signout.contains("Set-Cookie: DACS:DEMO::DEMO:alice=; Max-Age=0"));
    assert!(!signout.contains("theme="));
}

/// The demo's network half, as a browser goes through it: a fresh credential at each sign-in,
/// a protected page behind the real `dacs_guard`, the hub's button calling the real
/// `dacs_logout_receiver`, after which the guard refuses the credential and expires it; and a
/// signout that revokes the copies of what it removed.
#[test]
fn demo_shows_the_guard_the_receiver_and_a_revoking_signout() {
    let demo = Demo::start();
    let credential = |answer: &str| {
        let line = answer.lines().find(|l| l.starts_with("Set-Cookie: DACS:DEMO::DEMO:")).unwrap();
        line["Set-Cookie: ".len()..].split(';').next().unwrap().to_owned()
    };
    let alice = credential(&demo.get("/signin?user=alice", ""));
    assert_ne!(alice, credential(&demo.get("/signin?user=alice", "")), "a new value each time");
    let page = demo.get("/protected/", &alice);
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n") && page.contains("id=\"welcome\""), "{page}");
    let hub = demo.send(
        b"POST /hub-says HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 10\r\nConnection: close\r\n\r\nuser=alice",
    );
    assert!(hub.contains("<strong id=\"receiver-status\">200 OK</strong>"), "{hub}");
    let refused = demo.get("/protected/", &alice);
    assert!(refused.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{refused}");
    assert!(refused.contains("Set-Cookie: DACS:DEMO::DEMO:alice=; Max-Age=0"), "{refused}");
    let portal = demo.get("/", &alice);
    assert!(portal.contains("id=\"refused\"") && portal.contains("Max-Age=0"), "{portal}");
    // Signed in again: served.
    let again = credential(&demo.get("/signin?user=alice", ""));
    assert!(demo.get("/protected/", &again).contains("id=\"welcome\""));
    // bob signs out here; a copy of his credential kept elsewhere is refused from then on.
    let bob = credential(&demo.get("/signin?user=bob@example.org", ""));
    assert!(demo.get("/protected/", &bob).contains("id=\"welcome\""));
    let out = demo.get("/cgi-bin/dacs_signout?FORMAT=JSON", &bob);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    let refused = (0..100)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            demo.get("/protected/", &bob)
        })
        .any(|answer| answer.starts_with("HTTP/1.1 401"));
    assert!(refused, "the copy is refused within five seconds");
}

/// The portal's second hub button: an app tells the demo's own hub (`dacs_logout_hub`, a CGI)
/// that alice signed out; the hub answers at once and fans out over HTTP to the receiver and
/// the two stand-in apps, each in its own form; the receiver's revocation reaches the guard.
#[test]
fn demo_hub_fans_a_logout_out_to_every_receiver() {
    let demo = Demo::start();
    let signin = demo.get("/signin?user=alice", "");
    let line = signin.lines().find(|l| l.starts_with("Set-Cookie: DACS:DEMO::DEMO:")).unwrap();
    let alice = line["Set-Cookie: ".len()..].split(';').next().unwrap().to_owned();
    assert!(demo.get("/protected/", &alice).contains("id=\"welcome\""));
    let page = demo.send(
        b"POST /hub-fanout HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Mozilla/5.0 (demo test)\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\
          Connection: close\r\n\r\nuser=alice",
    );
    assert!(page.contains("<strong id=\"hub-status\">200 OK</strong>"), "{page}");
    assert!(page.contains("Action successfully triggered."), "{page}");
    // The sender's browser User-Agent, echoed as the Profiles hub echoes it.
    assert!(page.contains("&quot;user_agent&quot;:&quot;Mozilla/5.0 (demo test)&quot;"), "{page}");
    assert!(
        page.contains("<strong id=\"hub-summary\">delivered 3, pending 0, dead 0</strong>"),
        "{page}"
    );
    assert!(page.contains("<li><code>wiki: GET /apps/wiki/logout?username=alice&amp;logout_at="));
    assert!(page.contains("<li><code>bcc: GET /apps/bcc/logout?userid=alice&amp;logout_at="));
    let refused = demo.get("/protected/", &alice);
    assert!(refused.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{refused}");
    // Again, from a client that sends no User-Agent: the demo names itself to the hub, and the
    // page lists this event's two calls only.
    let again = demo.send(
        b"POST /hub-fanout HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\
          Connection: close\r\n\r\nuser=alice",
    );
    assert!(again.contains("&quot;user_agent&quot;:&quot;dacs_signout demo&quot;"), "{again}");
    assert!(again.contains("delivered 3, pending 0, dead 0"), "{again}");
    assert_eq!(again.matches("<li><code>").count(), 2, "{again}");
    // Pressed from another site (a browser says so in Sec-Fetch-Site): refused.
    let forged = demo.send(
        b"POST /hub-fanout HTTP/1.1\r\nHost: 127.0.0.1\r\nSec-Fetch-Site: cross-site\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10\r\n\
          Connection: close\r\n\r\nuser=alice",
    );
    assert!(forged.starts_with("HTTP/1.1 403 "), "{forged}");
    // A GET of the button's target is refused, and so is a user the demo does not have.
    let get = demo.get("/hub-fanout", "");
    assert!(get.starts_with("HTTP/1.1 405 "), "{get}");
    let mallory = demo.send(
        b"POST /hub-fanout HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\n\
          Connection: close\r\n\r\nuser=mallory",
    );
    assert!(mallory.starts_with("HTTP/1.1 400 "), "{mallory}");
}

/// "Sign out (and come back here)" lands on the portal with the program's DACS_* arguments:
/// the portal says so, escaped.
#[test]
fn demo_portal_confirms_the_signout_it_came_back_from() {
    let demo = Demo::start();
    let back = "/?DACS_VERSION=1.4&DACS_FEDERATION=DEMO&DACS_JURISDICTION=DEMO";
    let portal = demo.get(back, "theme=dark");
    assert!(portal.starts_with("HTTP/1.1 200 OK\r\n"), "{portal}");
    assert!(
        portal.contains(
            "Signed out of federation DEMO (jurisdiction DEMO) \u{2014} the credentials listed \
             below are what your browser still sends"
        ),
        "{portal}"
    );
    let plain = demo.get("/", "theme=dark");
    assert!(plain.starts_with("HTTP/1.1 200 OK\r\n") && !plain.contains("Signed out"), "{plain}");
    let hostile = demo.get(
        "/?DACS_VERSION=1.4&DACS_FEDERATION=%3Cb%3EX&DACS_JURISDICTION=%22%3E%3Cscript%3E",
        "",
    );
    assert!(
        hostile.contains(
            "Signed out of federation &lt;b&gt;X (jurisdiction &quot;&gt;&lt;script&gt;)"
        ),
        "{hostile}"
    );
    assert!(!hostile.contains("<b>X") && !hostile.contains("<script>"), "{hostile}");
}

/// A real server hands the program the whole body, and the program answers 413 over 64 KiB;
/// the demo's own cap is 1 MiB.
#[test]
fn demo_passes_a_post_body_whole() {
    let demo = Demo::start();
    let post = |cookie: &str, body: &str| {
        demo.send(
            format!(
                "POST /cgi-bin/dacs_signout HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    };
    let cookie = "DACS:DEMO::DEMO:alice=x; DACS:DEMO::DEMO:bob=y";
    let small = post(cookie, "FORMAT=JSON&DACS_USERNAME=bob");
    assert!(small.starts_with("HTTP/1.1 200 OK\r\n"), "{small}");
    assert!(small.contains("Set-Cookie: DACS:DEMO::DEMO:bob=; Max-Age=0"), "{small}");
    assert!(!small.contains("Set-Cookie: DACS:DEMO::DEMO:alice="), "{small}");

    let large = post(cookie, &format!("FORMAT=JSON&pad={}", "a".repeat(70 * 1024)));
    assert!(large.starts_with("HTTP/1.1 413 "), "{}", &large[..large.len().min(300)]);
    assert!(!large.contains("Set-Cookie"), "{large}");

    let huge = demo.send(
        b"POST /cgi-bin/dacs_signout HTTP/1.1\r\nHost: 127.0.0.1\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 2000000\r\n\r\n",
    );
    assert!(huge.starts_with("HTTP/1.1 413 "), "{huge}");
    assert!(body(&huge).contains("1 MiB"), "{huge}");
}

/// A cookie of another application that is not UTF-8 is left alone by the program; the demo
/// must pass it on, and the program's own 400 for an oversized Cookie header too.
#[test]
fn demo_answers_a_cookie_that_is_not_utf8() {
    let demo = Demo::start();
    let cookie: &[u8] = b"DACS:DEMO::DEMO:alice=x; caf\xe9=\xff\xfe; theme=dark";
    let request = |target: &str, cookie: &[u8]| {
        let mut request =
            format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ").into_bytes();
        request.extend_from_slice(cookie);
        request.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
        demo.send(&request)
    };
    let signout = request("/cgi-bin/dacs_signout?FORMAT=JSON", cookie);
    assert!(signout.starts_with("HTTP/1.1 200 OK\r\n"), "{signout}");
    assert!(signout.contains("Set-Cookie: DACS:DEMO::DEMO:alice=; Max-Age=0"), "{signout}");
    assert_eq!(signout.matches("Set-Cookie:").count(), 1, "{signout}");

    let portal = request("/", cookie);
    assert!(portal.starts_with("HTTP/1.1 200 OK\r\n"), "{portal}");
    assert!(portal.contains("<code>DACS:DEMO::DEMO:alice</code>"), "{portal}");

    let oversized = format!("DACS:DEMO::DEMO:alice=x; big={}", "b".repeat(65 * 1024));
    let refused = request("/cgi-bin/dacs_signout?FORMAT=JSON", oversized.as_bytes());
    assert!(refused.starts_with("HTTP/1.1 400 "), "{}", &refused[..refused.len().min(300)]);
    assert!(body(&refused).contains("Cookie header is too large"), "{refused}");
}

/// A query of 100 KiB that is not UTF-8 gets the program's 400; a query too long for the demo
/// gets the demo's own. Neither is a dropped connection.
#[test]
fn demo_answers_a_huge_query() {
    let demo = Demo::start();
    let mut request = b"GET /cgi-bin/dacs_signout?FORMAT=JSON&pad=".to_vec();
    request.resize(request.len() + 100 * 1024, 0xff);
    request.extend_from_slice(b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let answer = demo.send(&request);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{}", &answer[..answer.len().min(300)]);
    assert!(body(&answer).contains("QUERY_STRING"), "{answer}");

    let target = format!("/cgi-bin/dacs_signout?FORMAT=JSON&pad={}", "a".repeat(200 * 1024));
    let answer = demo.get(&target, "DACS:DEMO::DEMO:alice=x");
    assert!(answer.starts_with("HTTP/1.1 400 "), "{}", &answer[..answer.len().min(300)]);
    assert!(body(&answer).contains("longer than"), "{answer}");
}

/// Not HTTP: a 400 that says why, not a portal page nor a closed connection.
#[test]
fn demo_answers_a_malformed_request_with_400() {
    let demo = Demo::start();
    for request in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET /\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET http://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nCookie: a=\x00\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n",
    ] {
        let answer = demo.send(request);
        let shown = String::from_utf8_lossy(request);
        assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{shown:?}: {answer}");
        assert!(!body(&answer).is_empty(), "{shown:?}: {answer}");
    }
}

/// The program reads every Fetch Metadata header and the legacy prefetch markers; the demo
/// forwards them as a real server does (and sets no REMOTE_USER: it authenticates nobody).
#[test]
fn demo_forwards_the_headers_the_program_reads() {
    let demo = Demo::start();
    let signout = |headers: &str| {
        demo.send(
            format!(
                "GET /cgi-bin/dacs_signout?DACS_SIGNOUT_HANDLER=/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                 Cookie: DACS:DEMO::DEMO:alice=x\r\n{headers}Connection: close\r\n\r\n"
            )
            .as_bytes(),
        )
    };
    let cross = "Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: navigate\r\n";
    let clicked = signout(&format!("{cross}Sec-Fetch-Dest: document\r\nSec-Fetch-User: ?1\r\n"));
    assert!(clicked.starts_with("HTTP/1.1 302 Found\r\n"), "{clicked}");
    let unclicked = signout(&format!("{cross}Sec-Fetch-Dest: document\r\n"));
    assert!(unclicked.starts_with("HTTP/1.1 200 OK\r\n"), "{unclicked}");
    assert!(unclicked.contains("Sign out?") && !unclicked.contains("Set-Cookie"), "{unclicked}");
    let framed = signout(&format!("{cross}Sec-Fetch-Dest: iframe\r\nSec-Fetch-User: ?1\r\n"));
    assert!(framed.starts_with("HTTP/1.1 403 "), "{framed}");
    for prefetch in ["Purpose: prefetch\r\n", "X-Moz: prefetch\r\n", "X-Purpose: preview\r\n"] {
        let answer = signout(prefetch);
        assert!(answer.starts_with("HTTP/1.1 403 "), "{prefetch:?}: {answer}");
        assert!(!answer.contains("Set-Cookie"), "{prefetch:?}: {answer}");
    }
}

/// Every configuration an operator may copy passes `--check-config`: each `xml` block of the
/// README, and every `dacs.conf` under `examples/`.
#[test]
fn every_example_configuration_is_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let mut examples: Vec<(String, String)> = readme
        .split("```xml\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .enumerate()
        .map(|(i, text)| (format!("README.md xml block {}", i + 1), text.to_owned()))
        .collect();
    assert!(!examples.is_empty());
    let mut dirs = vec![root.join("examples")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.file_name().is_some_and(|n| n == "dacs.conf") {
                examples
                    .push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let dir = TempDir::new("examples");
    for (name, text) in examples {
        let file = dir.write("dacs.conf", &text.replace("@ROOT@", dir.path().to_str().unwrap()));
        if text.contains("HUB_SENDER") && !text.contains("FEDERATION_NAME") {
            // A hub's own configuration: the hub checks it (a missing spool is a warning).
            let out = Command::new(HUB)
                .env_clear()
                .args(["--check-config", file.to_str().unwrap()])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success() && text.ends_with(": ok\n"), "{name}:\n{text}");
            continue;
        }
        let (code, out, _) = cli(&["--check-config", file.to_str().unwrap()]);
        // A spool that does not exist here is the only problem an example may have: it is
        // created on the real server by the install.
        let problems: Vec<&str> = out
            .lines()
            .filter(|l| l.contains(": line ") || l.contains("relay: spool"))
            .filter(|l| !l.contains("does not exist"))
            .collect();
        assert!(
            code == 0 || problems.is_empty() && out.contains("does not exist"),
            "{name}:\n{out}"
        );
        assert!(problems.is_empty(), "{name}:\n{out}");
    }
}
