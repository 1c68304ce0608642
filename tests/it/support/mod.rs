//! Runs the built `dacs_signout` binary as a CGI program: a clean environment, the CGI
//! variables, stdin; then status, every header line, body, log line and exit code.

#![allow(dead_code)] // each test module uses a different part of the helper

pub mod browser;
pub mod fastcgi;
pub mod hub;
pub mod peer;
pub mod redis;
pub mod servers;
pub mod site;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub const BIN: &str = env!("CARGO_BIN_EXE_dacs_signout");
pub const CLI: &str = env!("CARGO_BIN_EXE_dacs_signout_cli");
pub const RECEIVER: &str = env!("CARGO_BIN_EXE_dacs_logout_receiver");
pub const GUARD: &str = env!("CARGO_BIN_EXE_dacs_guard");
pub const HUB: &str = env!("CARGO_BIN_EXE_dacs_logout_hub");

/// `target/test-artifacts/`: what the tests leave for people to look at (screenshots, timings).
pub fn artifacts_dir() -> PathBuf {
    let target =
        Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("CARGO_TARGET_TMPDIR is target/tmp");
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Prints an observation and appends it to `target/test-artifacts/observations.txt`.
pub fn observe(subject: &str, what: &str, value: impl std::fmt::Display) {
    let line = format!("[{subject}] {what}: {value}\n");
    print!("{line}");
    let path = artifacts_dir().join("observations.txt");
    if let Ok(mut file) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
        // One write per line: tests running in parallel append to the same file.
        let _ = file.write_all(line.as_bytes());
    }
}

/// A directory removed on drop (std only, like walkdir's own helper).
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh directory. Never one that exists: with nextest each test is a process, and with
    /// pid numbers reused quickly (pid_max is often 32768) a name made of the pid alone could be
    /// another live test's directory.
    pub fn new(label: &str) -> TempDir {
        TempDir(fresh_dir(&format!("dacs-signout-{label}")))
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Creates `/tmp/PREFIX-PID-N-NANOS`, mode 0755 (servers' users reach into it); a name that
/// exists is skipped, never reused or removed.
pub fn fresh_dir(prefix: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("{prefix}-{}-{n}-{nanos}", std::process::id()));
        match std::fs::create_dir(&path) {
            Ok(()) => {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
                return path;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }
}

/// A `dacs.conf` with the given directives in its `Default` section.
pub fn conf(directives: &str) -> String {
    format!("<Configuration>\n<Default>\n{directives}\n</Default>\n</Configuration>\n")
}

/// The example federation most tests use.
pub const EXAMPLE: &str =
    "FEDERATION_NAME \"EX\"\nFEDERATION_DOMAIN \"example.org\"\nJURISDICTION_NAME \"FEDROOT\"";

pub struct Cgi {
    program: &'static str,
    env: Vec<(String, Vec<u8>)>,
    args: Vec<String>,
    stdin: Vec<u8>,
    _dir: Option<TempDir>,
}

#[derive(Debug)]
pub struct Output {
    pub status: u16,
    /// Every header line after `Status`, in order.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub log: String,
    pub exit: i32,
}

impl Cgi {
    fn new(method: &str, query: &str) -> Cgi {
        let mut cgi =
            Cgi { program: BIN, env: Vec::new(), args: Vec::new(), stdin: Vec::new(), _dir: None };
        cgi = cgi
            .env("GATEWAY_INTERFACE", "CGI/1.1")
            .env("REQUEST_METHOD", method)
            .env("QUERY_STRING", query)
            .env("SERVER_NAME", "portal.example.org")
            .env("SERVER_PORT", "443")
            .env("HTTPS", "on")
            .env("SCRIPT_NAME", "/cgi-bin/dacs/dacs_signout")
            .env("REMOTE_ADDR", "192.0.2.7");
        cgi
    }

    pub fn get(query: &str) -> Cgi {
        Cgi::new("GET", query)
    }

    pub fn head(query: &str) -> Cgi {
        Cgi::new("HEAD", query)
    }

    pub fn method(method: &str, query: &str) -> Cgi {
        Cgi::new(method, query)
    }

    /// A form POST: body, `CONTENT_TYPE` and `CONTENT_LENGTH`.
    pub fn post(query: &str, body: &str) -> Cgi {
        Cgi::new("POST", query)
            .env("CONTENT_TYPE", "application/x-www-form-urlencoded")
            .env("CONTENT_LENGTH", &body.len().to_string())
            .stdin(body.as_bytes())
    }

    /// The same request to another of the project's programs (e.g. [`RECEIVER`]).
    pub fn program(mut self, program: &'static str) -> Cgi {
        self.program = program;
        self
    }

    pub fn env(self, name: &str, value: &str) -> Cgi {
        self.env_bytes(name, value.as_bytes())
    }

    pub fn env_bytes(mut self, name: &str, value: &[u8]) -> Cgi {
        self.env.retain(|(n, _)| n != name);
        self.env.push((name.to_owned(), value.to_vec()));
        self
    }

    pub fn unset(mut self, name: &str) -> Cgi {
        self.env.retain(|(n, _)| n != name);
        self
    }

    pub fn stdin(mut self, bytes: &[u8]) -> Cgi {
        self.stdin = bytes.to_vec();
        self
    }

    pub fn arg(mut self, arg: &str) -> Cgi {
        self.args.push(arg.to_owned());
        self
    }

    pub fn cookie(self, header: &str) -> Cgi {
        self.env("HTTP_COOKIE", header)
    }

    /// Sets the `Cookie` header unless the test already did.
    pub fn cookie_if_unset(self, header: &str) -> Cgi {
        if self.env.iter().any(|(n, _)| n == "HTTP_COOKIE") { self } else { self.cookie(header) }
    }

    /// Writes `text` as the configuration file and points `DACS_SIGNOUT_CONF` at it.
    pub fn config(mut self, text: &str) -> Cgi {
        let dir = TempDir::new("conf");
        let path = dir.write("dacs.conf", text);
        self._dir = Some(dir);
        self.env("DACS_SIGNOUT_CONF", path.to_str().unwrap())
    }

    /// The example federation plus `extra` directives.
    pub fn example(self, extra: &str) -> Cgi {
        self.config(&conf(&format!("{EXAMPLE}\n{extra}")))
    }

    #[track_caller]
    pub fn run(self) -> Output {
        use std::os::unix::ffi::OsStrExt;
        let program = self.program;
        let mut command = Command::new(program);
        command
            .env_clear()
            .args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in &self.env {
            command.env(name, std::ffi::OsStr::from_bytes(value));
        }
        let mut child = command.spawn().expect("the binary runs");
        // The program may stop reading early (e.g. a 413): a broken pipe here is fine.
        let _ = child.stdin.take().unwrap().write_all(&self.stdin);
        let out = child.wait_with_output().unwrap();
        let output = parse(
            &out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code().unwrap_or(-1),
        );
        // Every XML and JSON answer any test produces is checked against the shipped schemas.
        // (the signout's: the other programs answer in JSON of their own).
        match output.header("Content-Type").filter(|_| program == BIN) {
            Some(t) if t.starts_with("text/xml") && !output.body.is_empty() => {
                validate_xml(&output.body)
            }
            Some("application/json") if !output.body.is_empty() => validate_json(&output.body),
            _ => {}
        }
        output
    }
}

impl Cgi {
    /// Runs the request in this process, through the library, with the configuration path the
    /// programs fall back to replaced by `default_conf` (the real one, `/etc/dacs-signout/
    /// dacs.conf`, may exist on the test machine).
    #[track_caller]
    pub fn run_with_default_conf(self, default_conf: &Path) -> Output {
        use std::os::unix::ffi::OsStringExt;
        let env = dacs_signout::Env::from_os(self.env.iter().map(|(name, value)| {
            (std::ffi::OsString::from(name), std::ffi::OsString::from_vec(value.clone()))
        }));
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let streams = dacs_signout::Streams {
            stdin: &mut &self.stdin[..],
            stdout: &mut stdout,
            stderr: &mut stderr,
        };
        let context =
            dacs_signout::Context { clock: &dacs_signout::testing::SystemClock, default_conf };
        let exit = dacs_signout::testing::run_in(&env, &self.args, streams, context);
        parse(&stdout, String::from_utf8_lossy(&stderr).into_owned(), exit)
    }
}

#[track_caller]
fn parse(stdout: &[u8], log: String, exit: i32) -> Output {
    let text = String::from_utf8(stdout.to_vec()).expect("UTF-8 output");
    let (head, body) = text.split_once("\r\n\r\n").expect("a CGI header block");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.strip_prefix("Status: ").expect("Status first")[..3].parse().unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(": ").expect("Name: value");
            assert!(!v.contains(['\r', '\n']));
            (n.to_owned(), v.to_owned())
        })
        .collect();
    Output { status, headers, body: body.to_owned(), log, exit }
}

impl Output {
    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        let mut values = self.all(name);
        let first = values.next();
        assert!(values.next().is_none(), "{name} appears more than once");
        first
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn set_cookies(&self) -> Vec<&str> {
        self.all("Set-Cookie").collect()
    }

    /// The cookie names expired, in order.
    pub fn expired(&self) -> Vec<&str> {
        self.all("Set-Cookie").map(|v| v.split_once('=').unwrap().0).collect()
    }

    #[track_caller]
    pub fn status(&self, code: u16) -> &Self {
        assert_eq!(self.status, code, "status; body:\n{}\nlog: {}", self.body, self.log);
        self
    }

    /// The headers every response has (§7).
    #[track_caller]
    pub fn common_headers(&self) -> &Self {
        assert_eq!(self.header("Cache-Control"), Some("no-store"));
        assert_eq!(self.header("X-Content-Type-Options"), Some("nosniff"));
        if self.header("Content-Type").is_some_and(|t| t.starts_with("text/html")) {
            let csp = self.header("Content-Security-Policy").expect("HTML has a CSP");
            assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"));
        }
        assert_eq!(self.exit, if self.status < 400 { 0 } else { 1 }, "exit status");
        assert_eq!(self.log.lines().count(), 1, "one log line: {}", self.log);
        assert!(self.log.contains(&format!("status={}", self.status)), "{}", self.log);
        self
    }
}

/// Validates an XML answer against the shipped DTD and XSD with xmllint.
#[track_caller]
pub fn validate_xml(document: &str) {
    let dir = TempDir::new("xml");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("dtd");
    let file = dir.write("answer.xml", document);
    for args in [
        vec![
            "--noout".to_owned(),
            "--dtdvalid".into(),
            root.join("dacs_current_credentials.dtd").display().to_string(),
        ],
        vec![
            "--noout".to_owned(),
            "--schema".into(),
            root.join("dacs_current_credentials.xsd").display().to_string(),
        ],
    ] {
        let out = Command::new("xmllint")
            .args(&args)
            .arg(&file)
            .output()
            .expect("xmllint is installed (libxml2-utils)");
        assert!(
            out.status.success(),
            "xmllint {args:?}:\n{}\n{document}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Validates a JSON answer against the shipped JSON schema (Python's jsonschema).
#[track_caller]
pub fn validate_json(document: &str) {
    let schema =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("dtd/dacs_current_credentials.schema.json");
    let script = "import json,sys,jsonschema\n\
                  s=json.load(open(sys.argv[1]))\n\
                  jsonschema.Draft202012Validator.check_schema(s)\n\
                  jsonschema.Draft202012Validator(s).validate(json.load(sys.stdin))";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(schema)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child.stdin.take().unwrap().write_all(document.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "JSON schema:\n{}\n{document}",
        String::from_utf8_lossy(&out.stderr)
    );
}
