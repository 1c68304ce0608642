//! Network-wide signout (§9): the relay to the logout hub, against a hub double on loopback.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::hub::{Behaviour, Hub};
use crate::support::*;

const TOKEN: &str = "tok-s3cr3t-0123456789";
const JAR: &str = "DACS:EX::FEDROOT:bobo=c00kie; DACS:EX::DSS:bobo=c00kie; DACS:EX::FEDROOT:amy@uni.example=c00kie";

/// A spool directory and a configuration that relays to `base`.
struct Relay {
    dir: TempDir,
}

impl Relay {
    fn new() -> Relay {
        Relay { dir: TempDir::new("spool") }
    }

    fn spool(&self) -> std::path::PathBuf {
        self.dir.path().join("spool")
    }

    /// Relays every removed credential (`RELAY_IDENTITY "cookies"`): these tests are about
    /// delivery; which identities go is `only_the_authenticated_identity_goes_network_wide`'s.
    fn directives(&self, base: &str, extra: &str) -> String {
        format!(
            "IDMS_BASE_API_URL \"{base}\"\nRELAY_SPOOL_DIR \"{}\"\nRELAY_TIMEOUT_SECS \"1\"\n\
             RELAY_IDENTITY \"cookies\"\n{extra}",
            self.spool().display()
        )
    }

    fn signout(&self, base: &str, extra: &str) -> Output {
        Cgi::get("")
            .example(&self.directives(base, extra))
            .cookie(JAR)
            .env("COMMONS_PROFILES_API_TOKEN", TOKEN)
            .env("HTTP_USER_AGENT", "Mozilla/5.0 (X11; Linux x86_64) test")
            .run()
    }

    /// The relay log's lines, once there are at least `n` (bounded wait).
    #[track_caller]
    fn log_lines(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(self.spool().join("relay.log")).unwrap_or_default();
            let lines: Vec<String> = text.lines().map(str::to_owned).collect();
            if lines.len() >= n {
                return lines;
            }
            assert!(
                Instant::now() < deadline,
                "relay log has {} of {n} lines:\n{text}",
                lines.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Files in `new/`, `work/` and `dead/` (reasons not counted).
    fn counts(&self) -> [usize; 3] {
        ["new", "work", "dead"].map(|sub| {
            std::fs::read_dir(self.spool().join(sub))
                .map(|d| {
                    d.filter(|e| !e.as_ref().unwrap().path().to_string_lossy().ends_with(".why"))
                        .count()
                })
                .unwrap_or(0)
        })
    }

    /// `dacs_signout relay --now` on this spool, relaying to `base`, stdout piped.
    fn drainer(&self, base: &str) -> std::process::Child {
        self.drainer_with(base, "")
    }

    /// The same, with `extra` directives in the drainer's configuration.
    fn drainer_with(&self, base: &str, extra: &str) -> std::process::Child {
        // Written once: rewriting it while an earlier drainer reads it would truncate its read.
        let path = self.dir.path().join("relay.conf");
        if !path.exists() {
            self.dir.write(
                "relay.conf",
                &conf(&format!("{EXAMPLE}\n{}", self.directives(base, extra))),
            );
        }
        Command::new(BIN)
            .env_clear()
            .args(["relay", "--now"])
            .env("DACS_SIGNOUT_CONF", &path)
            .env("COMMONS_PROFILES_API_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn drain(&self, base: &str) -> String {
        let out = self.drainer(base).wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }
}

#[test]
fn wire_format_is_exactly_the_hubs() {
    let hub = Hub::start(Behaviour::Ok);
    let relay = Relay::new();
    let out = relay.signout(&hub.base(), "");
    out.status(200).common_headers();
    assert!(out.log.contains("relay=spooled:2"), "{}", out.log);
    let received = hub.wait_for(2);
    relay.log_lines(2);
    for r in &received {
        assert_eq!(r.request_line, "POST /api/v1/actions/logout/ HTTP/1.1");
        assert_eq!(r.header("Authorization"), Some(format!("Bearer {TOKEN}").as_str()));
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        assert_eq!(r.header("Accept"), Some("application/json"));
        assert_eq!(
            r.header("User-Agent"),
            Some(concat!("dacs_signout/", env!("CARGO_PKG_VERSION")))
        );
    }
    // bobo signed in at two jurisdictions: one signal.
    let mut bodies: Vec<&str> = received.iter().map(|r| r.body.as_str()).collect();
    bodies.sort();
    assert_eq!(
        bodies,
        [
            r#"{"user_name":"amy@uni.example","user_agent":"Mozilla/5.0 (X11; Linux x86_64) test"}"#,
            r#"{"user_name":"bobo","user_agent":"Mozilla/5.0 (X11; Linux x86_64) test"}"#,
        ]
    );
    let log = relay.log_lines(2).join("\n");
    assert!(log.contains("outcome=delivered status=200 attempt=1"), "{log}");
    assert!(!log.contains(TOKEN) && !out.log.contains(TOKEN) && !log.contains("c00kie"));
    assert_eq!(relay.counts(), [0, 0, 0], "delivered signals leave the spool");
}

#[test]
fn every_hub_answer_has_its_outcome() {
    // (behaviour, outcome in the log, status in the log, spool [new, work, dead] afterwards)
    let cases = [
        (Behaviour::Forbidden, "retry", "403", [1, 0, 0]),
        (Behaviour::ServerError, "retry", "500", [1, 0, 0]),
        (Behaviour::HtmlError, "retry", "500", [1, 0, 0]),
        (Behaviour::Moved, "retry", "301", [1, 0, 0]),
        (Behaviour::Hang, "retry", "-", [1, 0, 0]),
        (Behaviour::WrongUser, "dead", "200", [0, 0, 1]),
        (Behaviour::Invalid, "dead", "400", [0, 0, 1]),
        (Behaviour::NotFound, "dead", "404", [0, 0, 1]),
    ];
    for (behaviour, outcome, status, spool) in cases {
        let hub = Hub::start(behaviour);
        let relay = Relay::new();
        let out = Cgi::get("DACS_USERNAME=amy@uni.example")
            .example(&relay.directives(&hub.base(), ""))
            .cookie(JAR)
            .env("COMMONS_PROFILES_API_TOKEN", TOKEN)
            .run();
        out.status(200);
        let line = relay.log_lines(1).remove(0);
        assert!(
            line.contains(&format!("outcome={outcome} status={status} attempt=1")),
            "{behaviour:?}: {line}"
        );
        assert!(!line.contains(TOKEN));
        assert_eq!(relay.counts(), spool, "{behaviour:?}");
        // Redirects are not followed: one request only.
        assert_eq!(hub.received().len(), 1, "{behaviour:?}");
    }
    // The 403 and 500 bodies are in the log, in short.
    let hub = Hub::start(Behaviour::ServerError);
    let relay = Relay::new();
    relay.signout(&hub.base(), "");
    let log = relay.log_lines(2).join("\n");
    assert!(log.contains("An unexpected error occurred"), "{log}");
}

#[test]
fn a_closed_port_keeps_the_signal_and_relay_delivers_it_once_the_hub_is_back() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let base = format!("http://127.0.0.1:{port}/api/v1/");
    let relay = Relay::new();
    let out = relay.signout(&base, "");
    out.status(200).common_headers();
    let lines = relay.log_lines(2);
    assert!(lines.iter().all(|l| l.contains("outcome=retry status=- attempt=1")), "{lines:?}");
    assert_eq!(relay.counts(), [2, 0, 0]);

    let hub = Hub::on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(), Behaviour::Ok);
    let report = relay.drain(&base);
    assert!(report.contains("delivered=2"), "{report}");
    assert_eq!(relay.counts(), [0, 0, 0]);
    let report = relay.drain(&base);
    assert!(report.contains("delivered=0"), "{report}");
    assert_eq!(hub.received().len(), 2, "each signal delivered once");
    assert!(relay.log_lines(4)[2].contains("attempt=2"));
}

#[test]
fn relay_without_the_spool_is_best_effort_and_says_so() {
    let hub = Hub::start(Behaviour::Ok);
    let relay = Relay::new();
    std::fs::write(relay.spool(), "a file where the spool directory should be").unwrap();
    let log = relay.dir.path().join("relay.log");
    let out = relay.signout(&hub.base(), &format!("RELAY_LOG \"{}\"", log.display()));
    out.status(200).common_headers();
    assert!(out.log.contains("relay=\"best-effort:2 (spool"), "{}", out.log);
    assert_eq!(hub.wait_for(2).len(), 2);
}

#[test]
fn the_response_does_not_wait_for_the_hub() {
    let hub = Hub::start(Behaviour::Gate);
    let relay = Relay::new();
    // Cgi::run returns only when the program has exited and its stdout is closed.
    let out = relay.signout(&hub.base(), "");
    out.status(200).common_headers();
    // The hub is still holding the delivery: the user got the page first, and both signals
    // are still in the spool (waiting or claimed), none settled.
    let [waiting, claimed, dead] = relay.counts();
    assert_eq!((waiting + claimed, dead), (2, 0));
    assert!(
        std::fs::read_to_string(relay.spool().join("relay.log")).unwrap_or_default().is_empty()
    );
    hub.release();
    let lines = relay.log_lines(2);
    assert!(lines.iter().all(|l| l.contains("outcome=delivered")), "{lines:?}");
}

#[test]
fn username_map_user_agent_fallback_and_the_guide_variables() {
    let hub = Hub::start(Behaviour::Ok);
    let relay = Relay::new();
    let out = Cgi::get("DACS_USERNAME=amy@uni.example")
        .config(&conf(&format!(
            "{EXAMPLE}\nRELAY_USERNAME_MAP \"^([^@]+)@uni\\\\.example$ => kc_$1\"\nRELAY_SPOOL_DIR \"{}\"",
            relay.spool().display()
        )))
        .env("REMOTE_USER", "EX::FEDROOT:amy@uni.example")
        .env("PROFILES_API_URL", &format!("http://127.0.0.1:{}/", hub.port))
        .env("PROFILES_API_BEARER_TOKEN", TOKEN)
        .cookie(JAR)
        .run();
    out.status(200);
    let r = hub.wait_for(1).remove(0);
    assert_eq!(r.request_line, "POST /api/v1/actions/logout/ HTTP/1.1");
    assert_eq!(r.header("Authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    assert_eq!(
        r.body,
        format!(
            r#"{{"user_name":"kc_amy","user_agent":"dacs_signout/{}"}}"#,
            env!("CARGO_PKG_VERSION")
        )
    );
}

#[test]
fn no_relay_when_refused_or_nothing_removed_or_unconfigured() {
    let hub = Hub::start(Behaviour::Ok);
    let relay = Relay::new();
    let drive_by = Cgi::get("")
        .example(&relay.directives(&hub.base(), ""))
        .cookie(JAR)
        .env("HTTP_SEC_FETCH_SITE", "cross-site")
        .env("HTTP_SEC_FETCH_MODE", "no-cors")
        .env("COMMONS_PROFILES_API_TOKEN", TOKEN)
        .run();
    drive_by.status(403);
    let nothing =
        Cgi::get("").example(&relay.directives(&hub.base(), "")).cookie("theme=dark").run();
    assert!(nothing.log.contains("relay=none"), "{}", nothing.log);
    let off = Cgi::get("").example("").cookie(JAR).run();
    assert!(off.log.contains("relay=off"), "{}", off.log);
    std::thread::sleep(Duration::from_millis(300));
    assert!(hub.received().is_empty());
}

/// Puts `n` signals for users `u0..un` into a spool, as the CGI would.
fn fill(spool_dir: &Path, base: &str, n: usize) {
    use dacs_signout::testing::{Signal, Spool, unix_secs};
    let spool = Spool::create(spool_dir, 10_000).unwrap();
    for i in 0..n {
        spool
            .put(&Signal {
                id: format!("{i:06}"),
                user_name: format!("u{i}"),
                user_agent: "UA".into(),
                endpoint: format!("{base}actions/logout/"),
                created: unix_secs(std::time::SystemTime::now()),
                attempts: 0,
                next_attempt: 0,
            })
            .unwrap();
        // As a signal written by an earlier attempt: its file is an hour old when claimed.
        let file = std::fs::File::options()
            .write(true)
            .open(spool_dir.join(format!("new/{i:06}.json")))
            .unwrap();
        file.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600)).unwrap();
    }
}

fn delivered_once_each(hub: &Hub, n: usize) -> usize {
    let mut users: Vec<String> = hub.received().iter().map(|r| r.user_name()).collect();
    users.sort();
    let total = users.len();
    users.dedup();
    assert_eq!(users.len(), n, "every signal delivered");
    total - n
}

#[test]
fn many_concurrent_drainers_deliver_each_signal_exactly_once() {
    let hub = Hub::start(Behaviour::Ok);
    let relay = Relay::new();
    fill(&relay.spool(), &hub.base(), 300);
    let drainers: Vec<_> = (0..8).map(|_| relay.drainer(&hub.base())).collect();
    let mut delivered = 0;
    for d in drainers {
        let out = d.wait_with_output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        delivered += text
            .split("delivered=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse::<usize>()
            .unwrap();
    }
    assert_eq!(delivered, 300);
    assert_eq!(delivered_once_each(&hub, 300), 0, "no signal sent twice");
    assert_eq!(relay.counts(), [0, 0, 0]);
}

#[test]
fn killing_drainers_at_random_points_loses_nothing() {
    let hub = Hub::start(Behaviour::Slow(5));
    let relay = Relay::new();
    fill(&relay.spool(), &hub.base(), 120);
    let drainer = || relay.drainer(&hub.base());
    // A small deterministic generator: reproducible kill points.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let kills = 12;
    for _ in 0..kills {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = drainer();
        std::thread::sleep(Duration::from_millis(seed % 60));
        let _ = child.kill();
        let _ = child.wait();
    }
    // Dead drainers' claims are reclaimed; the rest is delivered.
    let mut finisher = drainer();
    assert!(finisher.wait().unwrap().success());
    assert_eq!(relay.counts(), [0, 0, 0], "nothing left behind");
    let duplicates = delivered_once_each(&hub, 120);
    assert!(
        duplicates <= kills,
        "{duplicates} duplicates for {kills} kills: at most the one in flight per kill"
    );
}

/// A CA and a certificate for `host` (an IP address or a DNS name), made with openssl.
fn test_pki(dir: &Path, host: &str) {
    let run = |args: &str| {
        let out = Command::new("sh").arg("-c").arg(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "{args}: {}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    run(&format!(
        "openssl req -x509 {ec} -keyout ca.key -out ca.pem -days 2 -subj /CN=dacs-test-ca"
    ));
    run(&format!("openssl req {ec} -keyout leaf.key -out leaf.csr -subj /CN={host}"));
    let san = if host.parse::<std::net::IpAddr>().is_ok() { "IP" } else { "DNS" };
    std::fs::write(
        dir.join("leaf.ext"),
        format!(
            "subjectAltName={san}:{host}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .unwrap();
    run(
        "openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out leaf.pem -days 2 -extfile leaf.ext",
    );
}

/// bench/hub.py over HTTPS on 127.0.0.1 with the certificate of `test_pki`; killed on drop.
struct HttpsHub {
    port: u16,
    child: std::process::Child,
}

impl HttpsHub {
    fn start(dir: &Path) -> HttpsHub {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let hub_script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/hub.py");
        let child = Command::new("python3")
            .arg(hub_script)
            .args([&port.to_string(), "0", "leaf.pem", "leaf.key"])
            .current_dir(dir)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the HTTPS hub did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        HttpsHub { port, child }
    }
}

impl Drop for HttpsHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn https_hubs_are_verified_against_the_trust_store() {
    let relay = Relay::new();
    test_pki(relay.dir.path(), "127.0.0.1");
    let hub = HttpsHub::start(relay.dir.path());
    let base = format!("https://127.0.0.1:{}/api/v1/", hub.port);
    let signout = |trust: Option<&Path>| {
        let mut cgi = Cgi::get("DACS_USERNAME=amy@uni.example")
            .example(&relay.directives(&base, ""))
            .cookie(JAR)
            .env("COMMONS_PROFILES_API_TOKEN", TOKEN);
        if let Some(ca) = trust {
            cgi = cgi.env("SSL_CERT_FILE", ca.to_str().unwrap());
        }
        cgi.run().status(200);
    };
    // The system's store does not know the test CA: refused, kept for a retry.
    signout(None);
    let first = relay.log_lines(1).remove(0);
    assert!(first.contains("outcome=retry status=-"), "{first}");
    assert!(
        first.to_ascii_lowercase().contains("certificate") || first.contains("UnknownIssuer"),
        "{first}"
    );
    // With the CA in the trust store (SSL_CERT_FILE), the same hub is accepted.
    signout(Some(&relay.dir.path().join("ca.pem")));
    let second = relay.log_lines(2).remove(1);
    assert!(second.contains("outcome=delivered status=200"), "{second}");
}

/// A hub named by a host name, not an address: the delivery child resolves it (glibc's
/// resolver, through /etc/nsswitch.conf and /etc/hosts, in the build the tests run, which
/// `.cargo/config.toml` makes static on *-linux-gnu as the release build is), and over HTTPS
/// the certificate is checked against that name.
#[test]
fn a_hub_named_by_dns_is_reached_and_its_name_verified() {
    // Plain HTTP: the name resolves, the signal is delivered.
    let hub = Hub::start(Behaviour::Ok);
    let relay = Relay::new();
    let base = format!("http://localhost:{}/api/v1/", hub.port);
    relay.signout(&base, "").status(200);
    let received = hub.wait_for(2);
    assert!(
        received
            .iter()
            .all(|r| r.header("Host") == Some(format!("localhost:{}", hub.port).as_str()))
    );
    let log = relay.log_lines(2).join("\n");
    assert_eq!(log.matches("outcome=delivered status=200").count(), 2, "{log}");

    // HTTPS: a certificate for the name `localhost`, the CA in the trust store.
    let relay = Relay::new();
    test_pki(relay.dir.path(), "localhost");
    let hub = HttpsHub::start(relay.dir.path());
    let signout = |host: &str| {
        Cgi::get("DACS_USERNAME=amy@uni.example")
            .example(&relay.directives(&format!("https://{host}:{}/api/v1/", hub.port), ""))
            .cookie(JAR)
            .env("COMMONS_PROFILES_API_TOKEN", TOKEN)
            .env("SSL_CERT_FILE", relay.dir.path().join("ca.pem").to_str().unwrap())
            .run()
            .status(200);
    };
    signout("localhost");
    let first = relay.log_lines(1).remove(0);
    assert!(first.contains("outcome=delivered status=200"), "{first}");
    // The same server reached by its address: the certificate does not name it, refused.
    signout("127.0.0.1");
    let second = relay.log_lines(2).remove(1);
    assert!(second.contains("outcome=retry status=-"), "{second}");
    assert!(second.to_ascii_lowercase().contains("certificate"), "{second}");
}

/// fcgiwrap hands the CGI its FastCGI connection without close-on-exec; the delivery child,
/// which may wait on the hub for RELAY_TIMEOUT_SECS, must not keep such descriptors open, nor
/// the request's environment (other apps' cookies, a `Proxy:` header as HTTP_PROXY).
#[test]
fn the_delivery_child_keeps_no_inherited_descriptor_or_request_variable() {
    let hub = Hub::start(Behaviour::Gate);
    let relay = Relay::new();
    // A token variable of a unique name: it finds the child among the processes.
    let token_env = format!("DACS_TEST_TOKEN_{}_{}", std::process::id(), hub.port);
    let directives = relay.directives(&hub.base(), &format!("IDMS_API_TOKEN_ENV \"{token_env}\""));
    let conf = relay.dir.write("dacs.conf", &conf(&format!("{EXAMPLE}\n{directives}")));
    let status = Command::new("sh")
        .args(["-c", "exec 7</dev/null 8</dev/null; exec \"$0\"", BIN])
        .env_clear()
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", "GET")
        .env("DACS_SIGNOUT_CONF", &conf)
        .env("HTTP_COOKIE", "DACS:EX::FEDROOT:bobo=1; sessionid=other-apps-secret")
        .env("HTTP_PROXY", "http://127.0.0.1:9/")
        .env(&token_env, TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let received = hub.wait_for(1); // the child is connected, and held
    assert_eq!(received[0].header("Authorization"), Some(format!("Bearer {TOKEN}").as_str()));
    let (child, environ) = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.parse::<u32>().ok())
        .find_map(|pid| {
            let environ =
                String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).ok()?)
                    .into_owned();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (environ.contains(&token_env)
                && String::from_utf8_lossy(&cmdline).contains("--deliver"))
            .then_some((pid, environ))
        })
        .expect("the delivery child is running");
    // Above 2: the child's own (the spool's directories, its log, the hub's socket), never the
    // two it inherited, which are /dev/null.
    let fds: Vec<(u32, String)> = std::fs::read_dir(format!("/proc/{child}/fd"))
        .unwrap()
        .filter_map(|e| {
            let e = e.ok()?;
            let fd: u32 = e.file_name().into_string().ok()?.parse().ok()?;
            Some((fd, std::fs::read_link(e.path()).ok()?.display().to_string()))
        })
        .filter(|(fd, _)| *fd > 2)
        .collect();
    hub.release();
    assert!(
        !fds.iter().any(|(_, target)| target == "/dev/null"),
        "inherited descriptors still open: {fds:?}"
    );
    assert!(!environ.contains("HTTP_COOKIE") && !environ.contains("HTTP_PROXY"), "{environ}");
    relay.log_lines(1);
}

/// "httpoxy": a request's `Proxy:` header arrives as HTTP_PROXY; the token must not follow it.
#[test]
fn a_proxy_header_does_not_redirect_the_signal() {
    let hub = Hub::start(Behaviour::Ok);
    let proxy = Hub::start(Behaviour::Ok);
    let relay = Relay::new();
    let out = Cgi::get("")
        .example(&relay.directives(&hub.base(), ""))
        .cookie(JAR)
        .env("COMMONS_PROFILES_API_TOKEN", TOKEN)
        .env("HTTP_PROXY", &format!("http://127.0.0.1:{}/", proxy.port))
        .run();
    out.status(200);
    assert_eq!(hub.wait_for(2).len(), 2);
    relay.log_lines(2);
    assert!(proxy.received().is_empty(), "the proxy saw {:?}", proxy.received());
}

/// The signout of `jar` with the default `RELAY_IDENTITY` ("remote-user") and `remote_user`
/// (unset when `None`), relaying to `hub`.
fn signout_as(relay: &Relay, hub: &Hub, jar: &str, remote_user: Option<&str>) -> Output {
    let directives = format!(
        "IDMS_BASE_API_URL \"{}\"\nRELAY_SPOOL_DIR \"{}\"\nRELAY_TIMEOUT_SECS \"1\"",
        hub.base(),
        relay.spool().display()
    );
    let cgi =
        Cgi::get("").example(&directives).cookie(jar).env("COMMONS_PROFILES_API_TOKEN", TOKEN);
    match remote_user {
        Some(user) => cgi.env("REMOTE_USER", user).run(),
        None => cgi.run(),
    }
}

/// A cookie's name is whatever the client sends: by default only the identity the web server
/// authenticated (`REMOTE_USER`) goes network-wide. Before, a request carrying
/// `DACS:EX::FEDROOT:victim=x` signed the victim out of the whole network.
#[test]
fn only_the_authenticated_identity_goes_network_wide() {
    let forged = "DACS:EX::FEDROOT:bobo=c00kie; DACS:EX::DSS:bobo=c00kie; \
                  DACS:EX::FEDROOT:victim=anything; DACS:EX::DSS:victim2=anything";
    // No authenticated user: the local signout happens, nothing is relayed.
    let hub = Hub::start(Behaviour::Ok);
    let relay = Relay::new();
    let out = signout_as(&relay, &hub, forged, None);
    out.status(200).common_headers();
    assert_eq!(out.expired().len(), 4, "the local signout still happens");
    assert!(out.log.contains("relay=unauthenticated"), "{}", out.log);
    // The three forms REMOTE_USER takes, each naming one credential: one signal, bobo's.
    for remote_user in ["EX::FEDROOT:bobo", "FEDROOT:bobo", "bobo", "EX::DSS:bobo", "DSS:bobo"] {
        let hub = Hub::start(Behaviour::Ok);
        let relay = Relay::new();
        let out = signout_as(&relay, &hub, forged, Some(remote_user));
        assert!(out.log.contains("relay=spooled:1"), "{remote_user}: {}", out.log);
        let received = hub.wait_for(1);
        assert_eq!(received[0].user_name(), "bobo", "{remote_user}");
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(hub.received().len(), 1, "{remote_user}: one signal only");
    }
    // A bare name is a user of this section's jurisdiction only: DSS's victim2 is another
    // jurisdiction's user, and REMOTE_USER naming nobody removed relays nothing.
    for remote_user in ["victim2", "EX::FEDROOT:someone-else"] {
        let hub = Hub::start(Behaviour::Ok);
        let relay = Relay::new();
        let out = signout_as(&relay, &hub, forged, Some(remote_user));
        assert!(out.log.contains("relay=unmatched"), "{remote_user}: {}", out.log);
        std::thread::sleep(Duration::from_millis(200));
        assert!(hub.received().is_empty(), "{remote_user}");
    }
}

/// `RELAY_IDENTITY "cookies"` relays every removed credential, at most `RELAY_MAX_SIGNALS` of
/// them per request.
#[test]
fn relay_max_signals_caps_one_request() {
    let hub = Hub::start(Behaviour::Ok);
    let relay = Relay::new();
    let jar: Vec<String> = (0..20).map(|i| format!("DACS:EX::FEDROOT:u{i:02}=c")).collect();
    let out = Cgi::get("")
        .example(&relay.directives(&hub.base(), "RELAY_MAX_SIGNALS \"3\""))
        .cookie(&jar.join("; "))
        .env("COMMONS_PROFILES_API_TOKEN", TOKEN)
        .run();
    out.status(200);
    assert_eq!(out.expired().len(), 20);
    assert!(out.log.contains("spooled:3 (17 more over RELAY_MAX_SIGNALS dropped)"), "{}", out.log);
    let mut users: Vec<String> = hub.wait_for(3).iter().map(|r| r.user_name()).collect();
    users.sort();
    assert_eq!(users, ["u00", "u01", "u02"]);
    // The default is 8.
    let hub = Hub::start(Behaviour::Ok);
    let relay = Relay::new();
    let out = Cgi::get("")
        .example(&relay.directives(&hub.base(), ""))
        .cookie(&jar.join("; "))
        .env("COMMONS_PROFILES_API_TOKEN", TOKEN)
        .run();
    assert!(out.log.contains("spooled:8 (12 more"), "{}", out.log);
}

/// What the real hub taught: it strips Unicode white space from the user agent and refuses
/// what is left empty (a 500 forever), and echoes it in an answer that must fit the 64 KiB
/// read limit.
#[test]
fn user_agents_are_trimmed_replaced_when_blank_and_capped() {
    let fallback = concat!("dacs_signout/", env!("CARGO_PKG_VERSION"));
    let long = "Mozilla/5.0 ".to_owned() + &"x".repeat(70_000);
    for (sent, expected) in [
        ("\u{a0}\u{3000} ", fallback.to_owned()),
        ("  Mozilla/5.0 (X11)  ", "Mozilla/5.0 (X11)".to_owned()),
        (long.as_str(), long[..1024].to_owned()),
    ] {
        let hub = Hub::start(Behaviour::Ok);
        let relay = Relay::new();
        let out = Cgi::get("DACS_USERNAME=amy@uni.example")
            .example(&relay.directives(&hub.base(), ""))
            .cookie(JAR)
            .env("COMMONS_PROFILES_API_TOKEN", TOKEN)
            .env("HTTP_USER_AGENT", sent)
            .run();
        out.status(200);
        let body: serde_json::Value = serde_json::from_str(&hub.wait_for(1)[0].body).unwrap();
        assert_eq!(body["user_agent"], expected.as_str());
        let line = relay.log_lines(1).remove(0);
        assert!(line.contains("outcome=delivered"), "{line}");
    }
}

/// `RELAY_SEND_LOGOUT_AT "yes"`: the body carries the signout's time, however late it is sent.
#[test]
fn logout_at_rides_along_on_request() {
    let relay = Relay::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let base = format!("http://127.0.0.1:{port}/api/v1/");
    let before = dacs_signout::testing::unix_secs(std::time::SystemTime::now());
    let out = Cgi::get("DACS_USERNAME=amy@uni.example")
        .example(&relay.directives(&base, "RELAY_SEND_LOGOUT_AT \"yes\""))
        .cookie(JAR)
        .env("COMMONS_PROFILES_API_TOKEN", TOKEN)
        .run();
    out.status(200);
    relay.log_lines(1);
    std::thread::sleep(Duration::from_millis(1100));
    let hub = Hub::on(std::net::TcpListener::bind(("127.0.0.1", port)).unwrap(), Behaviour::Ok);
    let drained = relay.drainer_with(&base, "RELAY_SEND_LOGOUT_AT \"yes\"").wait_with_output();
    assert!(drained.unwrap().status.success());
    let body: serde_json::Value = serde_json::from_str(&hub.wait_for(1)[0].body).unwrap();
    let at = body["logout_at"].as_u64().expect("logout_at");
    assert!(at >= before && at <= before + 1, "the signout's time, not the delivery's: {at}");
    // Off by default: the byte-exact Knowledge Commons body.
    let hub = Hub::start(Behaviour::Ok);
    let relay = Relay::new();
    Cgi::get("DACS_USERNAME=amy@uni.example")
        .example(&relay.directives(&hub.base(), ""))
        .cookie(JAR)
        .env("COMMONS_PROFILES_API_TOKEN", TOKEN)
        .run();
    assert!(!hub.wait_for(1)[0].body.contains("logout_at"));
}

/// The real hub answers 500 for a username holding `/`, after it has logged the user out
/// everywhere: a retry would do it again. Dead at once, with the reason.
#[test]
fn a_username_the_hub_cannot_take_is_dead_lettered_at_once() {
    let hub = Hub::start(Behaviour::ServerError);
    let relay = Relay::new();
    let out = Cgi::get("")
        .example(&relay.directives(&hub.base(), ""))
        .cookie("DACS:EX::FEDROOT:a/b=c")
        .env("COMMONS_PROFILES_API_TOKEN", TOKEN)
        .run();
    out.status(200);
    let line = relay.log_lines(1).remove(0);
    assert!(line.contains("outcome=dead status=500 attempt=1"), "{line}");
    assert_eq!(relay.counts(), [0, 0, 1]);
    let why = std::fs::read_dir(relay.spool().join("dead"))
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "why"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .unwrap();
    assert!(why.contains("username with '/'"), "{why}");
}

/// Where a record goes, and with which token, is the drainer's configuration: a record naming
/// a hub the configuration does not have is dead-lettered, and nothing is sent anywhere.
#[test]
fn a_record_naming_another_hub_is_not_sent() {
    let ours = Hub::start(Behaviour::Ok);
    let theirs = Hub::start(Behaviour::Ok);
    let relay = Relay::new();
    fill(&relay.spool(), &theirs.base(), 1);
    let report = relay.drain(&ours.base());
    assert!(report.contains("delivered=0") && report.contains("dead=1"), "{report}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(theirs.received().is_empty() && ours.received().is_empty());
    let log = relay.log_lines(1).join("\n");
    assert!(log.contains("is not one this configuration sends to"), "{log}");
}

/// A spool that another user could change is not used, and nothing is written under it: not a
/// record, and not the log, even when someone planted `relay.log` as a link to a file of the
/// web server's user. The signals still go out once, and the request's log line says so.
#[test]
fn a_refused_spool_gets_nothing_written_under_it() {
    use std::os::unix::fs::PermissionsExt;
    let hub = Hub::start(Behaviour::Ok);
    let relay = Relay::new();
    let spool = relay.spool();
    std::fs::create_dir(&spool).unwrap();
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o777)).unwrap();
    let victim = relay.dir.write("victim", "precious\n");
    std::os::unix::fs::symlink(&victim, spool.join("relay.log")).unwrap();
    let out = relay.signout(&hub.base(), "");
    out.status(200).common_headers();
    assert!(out.log.contains("relay=\"best-effort:2 (spool"), "{}", out.log);
    assert!(out.log.contains("must belong to this user"), "{}", out.log);
    assert_eq!(hub.wait_for(2).len(), 2, "sent once each, without durability");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let mut left: Vec<String> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["relay.log"], "only the planted link");
}

/// `RELAY_SPOOL_MAX`: over it the signals are not spooled (nor sent), the signout is served,
/// and the request's log line says what was lost.
#[test]
fn a_full_spool_loses_the_signal_loudly_and_serves_the_signout() {
    let hub = Hub::start(Behaviour::Hang);
    let relay = Relay::new();
    fill(&relay.spool(), &hub.base(), 2);
    let out = relay.signout(&hub.base(), "RELAY_SPOOL_MAX \"3\"");
    out.status(200).common_headers();
    assert_eq!(out.expired().len(), 3, "the signout itself");
    assert!(out.log.contains("relay=\"lost:2 (the spool holds 2 signals"), "{}", out.log);
    std::thread::sleep(Duration::from_millis(300));
    assert!(hub.received().is_empty());
    assert_eq!(relay.counts(), [2, 0, 0]);
}

/// `relay` with no hub configured says so, and creates nothing (a drain run once as root
/// used to create the spool as root:root 0700, locking the web server out).
#[test]
fn relay_without_a_hub_says_so_and_creates_nothing() {
    let dir = TempDir::new("no-hub");
    let spool = dir.path().join("spool");
    let plain = dir
        .write("dacs.conf", &conf(&format!("{EXAMPLE}\nRELAY_SPOOL_DIR \"{}\"", spool.display())));
    let out = Command::new(BIN)
        .env_clear()
        .arg("relay")
        .env("DACS_SIGNOUT_CONF", &plain)
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no hub") && text.contains("nothing to relay"), "{text}");
    assert!(!spool.exists());
    // With a hub, a spool nobody created yet is still not created by a drainer.
    let with_hub = dir.write(
        "hub.conf",
        &conf(&format!(
            "{EXAMPLE}\nIDMS_BASE_API_URL \"http://127.0.0.1:9/\"\nRELAY_SPOOL_DIR \"{}\"",
            spool.display()
        )),
    );
    let out = Command::new(BIN)
        .env_clear()
        .arg("relay")
        .env("DACS_SIGNOUT_CONF", &with_hub)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("no spool yet"));
    assert!(!spool.exists());
}

/// The delivery child has two attempts' worth of time in all (`2 × RELAY_TIMEOUT_SECS`),
/// however many signals one request made: against a hub that never answers, eight signals
/// would otherwise hold it for eight timeouts. What it leaves waits in the spool.
#[test]
fn the_delivery_child_stops_at_its_deadline() {
    let hub = Hub::start(Behaviour::Hang);
    let relay = Relay::new();
    let jar: Vec<String> = (0..8).map(|i| format!("DACS:EX::FEDROOT:u{i}=c")).collect();
    let started = Instant::now();
    let out = Cgi::get("")
        .example(&relay.directives(&hub.base(), ""))
        .cookie(&jar.join("; "))
        .env("COMMONS_PROFILES_API_TOKEN", TOKEN)
        .run();
    assert!(out.log.contains("relay=spooled:8"), "{}", out.log);
    let lines = relay.log_lines(2);
    std::thread::sleep(Duration::from_secs(4).saturating_sub(started.elapsed()));
    let lines_later = relay.log_lines(2);
    assert_eq!(lines_later.len(), lines.len().max(2), "no attempt after the deadline");
    assert!(lines_later.len() <= 2, "{lines_later:?}");
    let [waiting, claimed, dead] = relay.counts();
    assert_eq!((waiting, claimed, dead), (8, 0, 0), "all still to be delivered by the drain");
}
