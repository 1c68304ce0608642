//! Headless Chromium driven through chromedriver's WebDriver HTTP API, with std's
//! `TcpStream` (the client in `servers.rs`) and `serde_json` only.
//!
//! [`Browser::start`] runs `chromedriver --port=FREE` in a process group of its own, waits
//! (bounded) until `/status` says ready, and opens a session on Debian's `chromium` with a
//! fresh, empty profile and background networking off. `Drop` deletes the session (which
//! ends Chromium), stops chromedriver by process id (SIGTERM, then SIGKILL to its group) and
//! removes the profile.

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::servers::{self, Request};

const CHROMEDRIVER: (&str, &str) = ("/usr/bin/chromedriver", "chromium-driver");
const CHROMIUM: (&str, &str) = ("/usr/bin/chromium", "chromium");

/// How long chromedriver may take to be ready.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long one WebDriver command may take (a navigation waits for the page).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long [`Browser::wait_for`] polls.
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Chromium's flags: headless, no sandbox (tests run as root), no network of its own.
const FLAGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1000,700",
];

/// The key of a web element reference in WebDriver JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// One cookie of the browser's jar (DevTools protocol `Storage.getCookies`).
#[derive(Clone, Debug, PartialEq)]
pub struct Cookie {
    pub name: String,
    pub value: String,
    pub domain: String,
    pub path: String,
    pub http_only: bool,
}

impl Cookie {
    fn from_json(v: &Value) -> Option<Cookie> {
        let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Cookie {
            name: text("name")?,
            value: text("value").unwrap_or_default(),
            domain: text("domain").unwrap_or_default(),
            path: text("path").unwrap_or_default(),
            http_only: v.get("httpOnly").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

/// Panics, saying what to install, when Chromium or chromedriver is missing.
#[track_caller]
pub fn require() {
    for (program, package) in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(program).exists(),
            "browser: {program} is missing: install Debian's {package} package \
             (./scripts/test does it: apt-get install {package})"
        );
    }
}

/// A chromedriver process with one open session.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    dir: PathBuf,
    /// What the session reported, e.g. `browserVersion`.
    pub capabilities: Value,
}

impl Browser {
    /// Starts chromedriver and a Chromium session; panics (with chromedriver's log) if it cannot.
    #[track_caller]
    pub fn start() -> Browser {
        require();
        Browser::try_start().unwrap_or_else(|e| panic!("the browser did not start: {e}"))
    }

    fn try_start() -> io::Result<Browser> {
        let dir = servers::make_root("chromium")?;
        let profile = dir.join("profile");
        fs::create_dir(&profile)?;
        let port = servers::free_port()?;
        let log = fs::File::create(dir.join("chromedriver.log"))?;
        let driver = Command::new(CHROMEDRIVER.0)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()?;
        let mut browser =
            Browser { driver, port, session: String::new(), dir, capabilities: Value::Null };
        browser.wait_ready()?;
        let mut args: Vec<String> = FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let options = json!({ "binary": CHROMIUM.0, "args": args });
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome", "goog:chromeOptions": options } } });
        let value = browser.call("POST", "/session", Some(capabilities))?;
        browser.session = value["sessionId"]
            .as_str()
            .ok_or_else(|| io::Error::other(format!("no sessionId in {value}")))?
            .to_owned();
        browser.capabilities = value["capabilities"].clone();
        Ok(browser)
    }

    /// `(Chromium, chromedriver)` versions as the session reports them.
    pub fn versions(&self) -> (String, String) {
        let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
        let driver = self.capabilities["chrome"]["chromedriverVersion"].as_str().unwrap_or("?");
        (
            text(&self.capabilities["browserVersion"]),
            driver.split(' ').next().unwrap_or("?").to_owned(),
        )
    }

    #[track_caller]
    pub fn goto(&self, url: &str) {
        self.must(
            self.session_call("POST", "/url", Some(json!({ "url": url }))),
            &format!("go to {url}"),
        );
    }

    #[track_caller]
    pub fn current_url(&self) -> String {
        let v = self.must(self.session_call("GET", "/url", None), "read the URL");
        v.as_str().unwrap_or_default().to_owned()
    }

    #[track_caller]
    pub fn page_source(&self) -> String {
        let v = self.must(self.session_call("GET", "/source", None), "read the page");
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Finds the element and clicks it.
    #[track_caller]
    pub fn click(&self, selector: &str) {
        let body = json!({ "using": "css selector", "value": selector });
        let v = self
            .must(self.session_call("POST", "/element", Some(body)), &format!("find {selector}"));
        let id = v[ELEMENT_KEY].as_str().unwrap_or_else(|| panic!("no element {selector}: {v}"));
        let path = format!("/element/{id}/click");
        self.must(self.session_call("POST", &path, Some(json!({}))), &format!("click {selector}"));
    }

    /// Every cookie in the profile's jar, whatever the current page, through the DevTools
    /// protocol (`Storage.getCookies`); HttpOnly ones included.
    #[track_caller]
    pub fn jar(&self) -> Vec<Cookie> {
        let body = json!({ "cmd": "Storage.getCookies", "params": {} });
        let v = self.must(
            self.session_call("POST", "/goog/cdp/execute", Some(body)),
            "read the cookie jar",
        );
        v["cookies"]
            .as_array()
            .map(|a| a.iter().filter_map(Cookie::from_json).collect())
            .unwrap_or_default()
    }

    /// Adds a cookie to the jar for the current page's host (WebDriver "Add Cookie"): a
    /// host-only cookie with `Path=/`, as a credential copied out of another browser.
    #[track_caller]
    pub fn add_cookie(&self, name: &str, value: &str) {
        let body = json!({ "cookie": { "name": name, "value": value, "path": "/" } });
        self.must(self.session_call("POST", "/cookie", Some(body)), &format!("add cookie {name}"));
    }

    /// Saves a PNG screenshot of the viewport.
    #[track_caller]
    pub fn screenshot(&self, path: &Path) {
        let v = self.must(self.session_call("GET", "/screenshot", None), "take a screenshot");
        let png = decode_base64(v.as_str().unwrap_or_default()).expect("screenshot in base64");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is not a PNG");
        fs::write(path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Polls `check` every 50 ms until it returns `Some` (bounded); panics saying `what`
    /// was awaited and where the browser is.
    #[track_caller]
    pub fn wait_for<T>(&self, what: &str, mut check: impl FnMut(&Browser) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT_TIMEOUT;
        loop {
            if let Some(found) = check(self) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "browser: waited in vain for {what}; at {}",
                self.current_url()
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the browser is on a URL that starts with `prefix`; returns that URL.
    #[track_caller]
    pub fn wait_for_url(&self, prefix: &str) -> String {
        self.wait_for(&format!("a URL starting {prefix}"), |b| {
            Some(b.current_url()).filter(|u| u.starts_with(prefix))
        })
    }

    #[track_caller]
    fn must(&self, result: io::Result<Value>, what: &str) -> Value {
        result.unwrap_or_else(|e| {
            panic!("browser: could not {what}: {e}\nchromedriver log:\n{}", self.driver_log())
        })
    }

    /// The end of chromedriver's own log, for a failure message.
    fn driver_log(&self) -> String {
        let log = fs::read_to_string(self.dir.join("chromedriver.log")).unwrap_or_default();
        log.lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.call("GET", "/status", None).is_ok_and(|v| v["ready"].as_bool() == Some(true)) {
                return Ok(());
            }
            if let Some(status) = self.driver.try_wait()? {
                return Err(io::Error::other(format!(
                    "chromedriver exited: {status}\n{}",
                    self.driver_log()
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "chromedriver not ready"));
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    fn session_call(&self, method: &str, path: &str, body: Option<Value>) -> io::Result<Value> {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    /// One WebDriver command; its `value`, or the WebDriver error as an `io::Error`.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> io::Result<Value> {
        let mut request = Request::new(method, path).timeout(COMMAND_TIMEOUT).until_close(false);
        if let Some(body) = body {
            request = request
                .header("Content-Type", "application/json; charset=utf-8")
                .body(body.to_string().as_bytes());
        }
        let response = servers::send(self.port, &request)?;
        let json: Value = serde_json::from_slice(&response.body).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{method} {path}: {e}: {}", response.text()),
            )
        })?;
        let value = json.get("value").cloned().unwrap_or(Value::Null);
        if response.status != 200 {
            let message = format!(
                "{method} {path}: HTTP {}: {} {}",
                response.status, value["error"], value["message"]
            );
            return Err(io::Error::other(message));
        }
        Ok(value)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.call("DELETE", &format!("/session/{}", self.session), None);
        }
        servers::stop_process_group(&mut self.driver, Duration::from_secs(5));
        if thread::panicking() || std::env::var_os("KEEP_SERVER_ROOT").is_some() {
            eprintln!("browser: kept {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Decodes standard base64 (RFC 4648, `+/`, padding optional, line breaks ignored); `None`
/// on any other byte. A few lines here rather than another dependency.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    fn sextet(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0);
    for &c in text.as_bytes().iter().take_while(|&&c| c != b'=') {
        if c == b'\r' || c == b'\n' {
            continue;
        }
        acc = (acc << 6) | sextet(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}
