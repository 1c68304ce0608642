//! Real web servers running the built program as CGI: Apache httpd 2.4 with mod_cgid or
//! mod_cgi, lighttpd with mod_cgi, nginx with fcgiwrap; and a tiny HTTP/1.1 client.
//!
//! Each [`Server`] runs the configuration shipped in `examples/` with its `@NAME@`
//! placeholders filled in, in a scratch directory of its own (`@ROOT@`):
//!
//! ```text
//! ROOT/htdocs/                 static pages (Setup::page)
//! ROOT/cgi-bin/dacs_signout    a copy of the built program (@BIN@)
//! ROOT/cgi-bin/dacs_signout_cli  and of its command line, beside it (the relay's delivery)
//! ROOT/cgi-bin/dacs_logout_receiver
//!                              a copy of the receiver (@RECEIVER_BIN@, Setup::receiver_token)
//! ROOT/bin/dacs_guard          a copy of the guard (Setup::guard), run beside the server on
//!                              127.0.0.1:@GUARD_PORT@ (Apache) or @GUARD_SOCKET@ (the others)
//! ROOT/etc/dacs.conf           Setup::conf (@CONF@, the program's DACS_SIGNOUT_CONF)
//! ROOT/var/                    writable by the CGI user: the relay spool goes here, and the
//!                              SQLite registry in ROOT/var/registry/ (the CGI user's, 0700)
//! ROOT/logs/ ROOT/run/ ROOT/tmp/
//! ```
//!
//! The programs are copied because, started as root, every server runs them as `www-data`,
//! which cannot reach into a build directory under a private home. Started by another user,
//! the servers (and the programs) run as that user. The guard runs as the same user as the
//! receiver CGI (`www-data`, through `setpriv`, when the tests run as root): the SQLite
//! registry opens only for the user who owns its directory.
//!
//! A setup can instead take everything from an installation (`tests/it/install.rs`): the
//! examples from another directory ([`Setup::examples`]), a program and a `dacs.conf` used
//! where they are ([`Setup::program`], [`Setup::conf_file`]), and the server's directories made
//! by the README's own commands ([`Setup::make_dirs`]).
//!
//! Servers run in the foreground, each in a process group of its own, and are stopped by
//! process id in `Drop`: SIGTERM to the server, then SIGKILL to whatever is left in its group;
//! the guard last, the same way.
//! Nothing listens on anything but 127.0.0.1, and no port is fixed. A missing server is a test
//! failure that says what to install (`./scripts/test` installs them), never a skip.

use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The URL path the program is mounted at, in every example.
pub const CGI_PATH: &str = "/cgi-bin/dacs_signout";

/// The URL path the receiver is mounted at, in every example (the Knowledge Commons guide's).
pub const RECEIVER_PATH: &str = "/api/logout/";

/// The guard's fingerprint key in the tests (`DACS_REGISTRY_KEY`).
pub const GUARD_KEY: &str = "a-fingerprint-key-for-the-server-tests-0123456789";

/// What stands in for mod_auth_dacs under Apache (mod_lua): it authenticates a request from
/// its first credential of federation `EX` and sets `REMOTE_USER` to `EX::JUR:USER`, as
/// mod_auth_dacs does; without one it answers 401, as DACS refuses an anonymous user.
pub const DACS_STANDIN_LUA: &str = r#"require "apache2"
function as_dacs(r)
  local cookies = r.headers_in["Cookie"] or ""
  for name in cookies:gmatch("DACS:EX::([^=;,%s]+)=") do
    if name:sub(1, 1) ~= ":" then
      r.user = "EX::" .. name
      return apache2.OK
    end
  end
  return 401
end
"#;

/// Test-only Apache configuration appended by [`Setup::dacs_standin`]: the stand-in in the
/// example's `/protected/` (its `AuthType DACS` stays the example's).
const DACS_STANDIN_CONFIG: &str = r#"
# --- test fixture, not part of the mount: mod_auth_dacs's stand-in ---------
LoadModule lua_module /usr/lib/apache2/modules/mod_lua.so
<Location "/protected/">
    LuaHookCheckUserID "@ROOT@/etc/dacs-standin.lua" as_dacs
</Location>
"#;

/// How long a server may take to answer its first request.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopped process may take to exit before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long to wait for a line in a log.
const LOG_TIMEOUT: Duration = Duration::from_secs(5);

/// The user the servers drop to when started as root.
const CGI_USER: &str = "www-data";

/// The environment every server starts with, plus `Setup::hub_token`.
const BASE_ENV: &[(&str, &str)] = &[
    ("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
    ("LANG", "C.UTF-8"),
];

/// The web servers (and CGI gateways) the examples configure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// Apache 2.4, event MPM, mod_cgid (what Debian's `a2enmod cgi` enables).
    ApacheCgid,
    /// Apache 2.4, prefork MPM, mod_cgi.
    ApacheCgi,
    /// lighttpd 1.4 with mod_cgi.
    Lighttpd,
    /// nginx with fcgiwrap on a unix socket.
    Nginx,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::ApacheCgid => "apache-cgid",
            ServerKind::ApacheCgi => "apache-cgi",
            ServerKind::Lighttpd => "lighttpd",
            ServerKind::Nginx => "nginx-fcgiwrap",
        }
    }

    /// (program, Debian package) for each program this server needs.
    fn programs(self) -> &'static [(&'static str, &'static str)] {
        match self {
            ServerKind::ApacheCgid | ServerKind::ApacheCgi => &[("/usr/sbin/apache2", "apache2")],
            ServerKind::Lighttpd => &[("/usr/sbin/lighttpd", "lighttpd")],
            ServerKind::Nginx => {
                &[("/usr/sbin/nginx", "nginx"), ("/usr/sbin/fcgiwrap", "fcgiwrap")]
            }
        }
    }

    /// The template in `examples/`.
    pub fn template(self) -> &'static str {
        match self {
            ServerKind::ApacheCgid | ServerKind::ApacheCgi => "apache/httpd.conf",
            ServerKind::Lighttpd => "lighttpd/lighttpd.conf",
            ServerKind::Nginx => "nginx/nginx.conf",
        }
    }

    /// The line of the template that passes the receiver's token when uncommented (nginx:
    /// none, fcgiwrap hands the program its own environment).
    pub fn receiver_token_line(self) -> Option<&'static str> {
        match self {
            ServerKind::ApacheCgid | ServerKind::ApacheCgi => Some("PassEnv DACS_RECEIVER_TOKEN"),
            ServerKind::Lighttpd => Some("\"DACS_RECEIVER_TOKEN\" => env.DACS_RECEIVER_TOKEN,"),
            ServerKind::Nginx => None,
        }
    }

    /// Where the guard listens in this server's example: TCP for Apache (mod_authnz_fcgi
    /// speaks nothing else), a unix socket for the others.
    pub fn guard_on_tcp(self) -> bool {
        matches!(self, ServerKind::ApacheCgid | ServerKind::ApacheCgi)
    }

    /// The line of the template that passes the hub's token when uncommented (nginx: none,
    /// fcgiwrap hands the program its own environment).
    fn token_line(self) -> Option<&'static str> {
        match self {
            ServerKind::ApacheCgid | ServerKind::ApacheCgi => {
                Some("PassEnv COMMONS_PROFILES_API_TOKEN")
            }
            ServerKind::Lighttpd => {
                Some("\"COMMONS_PROFILES_API_TOKEN\" => env.COMMONS_PROFILES_API_TOKEN,")
            }
            ServerKind::Nginx => None,
        }
    }

    /// The log file (in `ROOT/logs/`) that receives the program's stderr.
    pub fn program_log(self) -> &'static str {
        match self {
            ServerKind::Lighttpd => "cgi-stderr.log",
            _ => "error.log",
        }
    }

    /// Panics, saying what to install, when a program this server needs is missing.
    #[track_caller]
    pub fn require(self) {
        for (program, package) in self.programs() {
            assert!(
                Path::new(program).exists(),
                "{}: {program} is missing: install Debian's {package} package \
                 (./scripts/test does it: apt-get install {package})",
                self.name()
            );
        }
    }
}

/// What `@CONF@` holds.
#[derive(Clone, Debug)]
enum Conf {
    /// This text, readable by the program.
    Text(String),
    /// No file at all.
    Missing,
    /// This text, in a file the program's user cannot read.
    Unreadable(String),
}

/// What to start: built with [`ServerKind::setup`], started with [`Setup::start`].
#[derive(Clone, Debug)]
pub struct Setup {
    kind: ServerKind,
    conf: Conf,
    pages: Vec<(String, String)>,
    /// Files under ROOT (test fixtures beside the server's own: a Lua hook, a password file).
    files: Vec<(String, String)>,
    /// Other programs of the project, copied to `ROOT/cgi-bin/NAME` (mode 0755).
    programs: Vec<(String, PathBuf)>,
    hub_token: Option<String>,
    /// Uncomment the example's line that passes the token on (set by `hub_token` too).
    pass_token: bool,
    /// The receiver's token: the receiver is copied, the server gets the token in its
    /// environment, and the example's line that passes it on is uncommented.
    receiver_token: Option<String>,
    /// Run the guard beside the server.
    guard: bool,
    appended: String,
    /// A mount snippet for nginx's `server {}` block (see [`Setup::mount`]).
    in_server: String,
    /// Where the templates are (`examples_dir()` unless given).
    examples: Option<PathBuf>,
    /// `@BIN@` used where it is, instead of a copy of the built program.
    program: Option<PathBuf>,
    /// `@CONF@` used where it is, instead of `ROOT/etc/dacs.conf` written from `conf`.
    conf_file: Option<PathBuf>,
    /// Shell lines (with `$ROOT` set) that make the server's directories, instead of the
    /// harness's own.
    make_dirs: Option<Vec<String>>,
    /// A shell line run before the server, in the shell that then becomes it (as Debian's
    /// apache2ctl sources /etc/apache2/envvars).
    preamble: Option<String>,
}

impl ServerKind {
    pub fn setup(self) -> Setup {
        Setup {
            kind: self,
            conf: Conf::Missing,
            pages: vec![(
                "index.html".into(),
                "<!DOCTYPE html><title>test</title><p>static\n".into(),
            )],
            hub_token: None,
            pass_token: false,
            receiver_token: None,
            guard: false,
            appended: String::new(),
            in_server: String::new(),
            files: Vec::new(),
            programs: Vec::new(),
            examples: None,
            program: None,
            conf_file: None,
            make_dirs: None,
            preamble: None,
        }
    }
}

impl Setup {
    /// The program's `dacs.conf`; `@ROOT@` and `@PORT@` in it are replaced.
    pub fn conf(mut self, text: &str) -> Setup {
        self.conf = Conf::Text(text.to_owned());
        self
    }

    /// `DACS_SIGNOUT_CONF` names a file that does not exist.
    pub fn conf_missing(mut self) -> Setup {
        self.conf = Conf::Missing;
        self
    }

    /// `DACS_SIGNOUT_CONF` names a file the program's user cannot read.
    pub fn conf_unreadable(mut self, text: &str) -> Setup {
        self.conf = Conf::Unreadable(text.to_owned());
        self
    }

    /// A static page in the document root; `@PORT@` in it is replaced.
    pub fn page(mut self, path: &str, text: &str) -> Setup {
        self.pages.retain(|(p, _)| p != path);
        self.pages.push((path.to_owned(), text.to_owned()));
        self
    }

    /// A file at `ROOT/path`; `@ROOT@` and `@PORT@` in it are replaced.
    pub fn file(mut self, path: &str, text: &str) -> Setup {
        self.files.push((path.to_owned(), text.to_owned()));
        self
    }

    /// Another of the project's programs (e.g. [`super::HUB`]) at `ROOT/cgi-bin/NAME`, for a
    /// mount in [`Setup::append_config`].
    pub fn cgi_program(mut self, name: &str, from: &str) -> Setup {
        self.programs.push((name.to_owned(), PathBuf::from(from)));
        self
    }

    /// Gives the server the hub's bearer token in its environment and uncomments the example's
    /// line that passes it on to the program: exactly what the example tells an operator to do.
    pub fn hub_token(mut self, token: &str) -> Setup {
        self.hub_token = Some(token.to_owned());
        self.pass_token = true;
        self
    }

    /// Mounts the receiver for real: a copy of it as `@RECEIVER_BIN@`, the token in the
    /// server's environment as `DACS_RECEIVER_TOKEN` (the default `RECEIVER_TOKEN_ENV`), and
    /// the example's line that passes it on uncommented, as the example tells an operator.
    pub fn receiver_token(mut self, token: &str) -> Setup {
        self.receiver_token = Some(token.to_owned());
        self
    }

    /// Runs `dacs_guard` beside the server, where the example expects it (as the CGI user,
    /// with `DACS_SIGNOUT_CONF` = `@CONF@` and `DACS_REGISTRY_KEY` = [`GUARD_KEY`]), started
    /// before the server and stopped after it.
    pub fn guard(mut self) -> Setup {
        self.guard = true;
        self
    }

    /// Under Apache, mod_auth_dacs's stand-in (mod_lua, [`DACS_STANDIN_LUA`]) in the
    /// example's `/protected/`: a test fixture, appended. Other servers have no mod_auth_dacs:
    /// nothing.
    pub fn dacs_standin(self) -> Setup {
        if !self.kind.guard_on_tcp() {
            return self;
        }
        self.file("etc/dacs-standin.lua", DACS_STANDIN_LUA).append_config(DACS_STANDIN_CONFIG)
    }

    /// Uncomments the example's line that passes the token on, and nothing else: the server's
    /// environment gets the token some other way (a [`Setup::preamble`]).
    pub fn pass_token(mut self) -> Setup {
        self.pass_token = true;
        self
    }

    /// The templates from this directory (e.g. the examples an installation put in
    /// `PREFIX/share/doc/dacs-signout/examples`).
    pub fn examples(mut self, dir: &Path) -> Setup {
        self.examples = Some(dir.to_owned());
        self
    }

    /// This program as `@BIN@`, run where it is (its directories must let the CGI user in).
    pub fn program(mut self, path: &Path) -> Setup {
        self.program = Some(path.to_owned());
        self
    }

    /// This file as `@CONF@`, used where it is and as it is.
    pub fn conf_file(mut self, path: &Path) -> Setup {
        self.conf_file = Some(path.to_owned());
        self
    }

    /// The server's directories made by these shell lines alone (run as the test's user, with
    /// `ROOT` in the environment), e.g. the README's `install -d` lines; the harness makes
    /// none of its own.
    pub fn make_dirs(mut self, lines: &[String]) -> Setup {
        self.make_dirs = Some(lines.to_vec());
        self
    }

    /// A shell line run (by `/bin/sh`, as the test's user) just before the server, which then
    /// replaces that shell: what the server's environment gets from it, the server has.
    pub fn preamble(mut self, line: &str) -> Setup {
        self.preamble = Some(line.to_owned());
        self
    }

    /// Configuration appended after the example, for test fixtures that are not part of the
    /// mount (the browser test's sign-in page). Placeholders are replaced in it too.
    pub fn append_config(mut self, text: &str) -> Setup {
        self.appended.push_str(text);
        self
    }

    /// A mount snippet from `examples/` (e.g. the hub's), placed where the snippet says it
    /// goes: appended to the configuration (Apache, lighttpd), or inside the `server {}` block
    /// (nginx), as its `include` would put it. Placeholders are replaced in it too.
    pub fn mount(mut self, text: &str) -> Setup {
        match self.kind {
            ServerKind::Nginx => self.in_server.push_str(text),
            _ => self.appended.push_str(text),
        }
        self
    }

    /// Starts the server and waits (bounded) until it answers; panics with its logs if it
    /// cannot.
    #[track_caller]
    pub fn start(self) -> Server {
        self.kind.require();
        // A port taken between asking for it and binding it: try another, twice.
        let mut last = None;
        for _ in 0..3 {
            match Server::start(&self) {
                Ok(server) => return server,
                Err(e) if e.to_string().contains("in use") => last = Some(e),
                Err(e) => panic!("{} did not start: {e}", self.kind.name()),
            }
        }
        panic!("{} did not start: {}", self.kind.name(), last.expect("an error"))
    }
}

/// A running server; dropping it stops it and removes its directory (kept when the test
/// failed, or with `KEEP_SERVER_ROOT` set).
#[derive(Debug)]
pub struct Server {
    pub kind: ServerKind,
    pub port: u16,
    root: PathBuf,
    /// `@BIN@`, `@CONF@` and where the templates are.
    bin: PathBuf,
    conf: PathBuf,
    examples: PathBuf,
    /// `@RECEIVER_BIN@`, and the guard's program.
    receiver_bin: PathBuf,
    guard_bin: PathBuf,
    /// `@GUARD_PORT@` (on 127.0.0.1) and `@GUARD_SOCKET@`: filled in whether or not a guard
    /// runs.
    pub guard_port: u16,
    pub guard_socket: PathBuf,
    /// The server, and for nginx then fcgiwrap; stopped in this order, then the guard.
    processes: Vec<(&'static str, Child)>,
}

impl Server {
    fn start(setup: &Setup) -> io::Result<Server> {
        let root = make_root(setup.kind.name())?;
        let port = free_port()?;
        let bin = setup.program.clone().unwrap_or_else(|| root.join("cgi-bin/dacs_signout"));
        let conf = setup.conf_file.clone().unwrap_or_else(|| root.join("etc/dacs.conf"));
        let examples = setup.examples.clone().unwrap_or_else(examples_dir);
        // An installed program's fellow programs are beside it (scripts/install).
        let beside = |name: &str| setup.program.as_ref().map(|p| p.with_file_name(name));
        let receiver_bin = beside("dacs_logout_receiver")
            .unwrap_or_else(|| root.join("cgi-bin/dacs_logout_receiver"));
        let guard_bin = beside("dacs_guard").unwrap_or_else(|| root.join("bin/dacs_guard"));
        let guard_port = free_port()?;
        let guard_socket = root.join("run/dacs-guard.sock");
        let mut server = Server {
            kind: setup.kind,
            port,
            root,
            bin,
            conf,
            examples,
            receiver_bin,
            guard_bin,
            guard_port,
            guard_socket,
            processes: Vec::new(),
        };
        server.prepare(setup)?;
        let started = Instant::now();
        server.spawn(setup)?;
        server.wait_ready(started)?;
        Ok(server)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `@CONF@`: the program's `DACS_SIGNOUT_CONF`.
    pub fn conf_path(&self) -> PathBuf {
        self.conf.clone()
    }

    /// A directory the program can write to.
    pub fn var_dir(&self) -> PathBuf {
        self.root.join("var")
    }

    /// `http://HOST:PORT/PATH`, e.g. `url("localhost", "/")`.
    pub fn url(&self, host: &str, path: &str) -> String {
        format!("http://{host}:{}{path}", self.port)
    }

    /// `http://127.0.0.1:PORT`, the origin the test client talks to.
    pub fn origin(&self) -> String {
        self.url("127.0.0.1", "")
    }

    pub fn send(&self, request: &Request) -> io::Result<Response> {
        send(self.port, request)
    }

    /// Sends a request; a failure to get an answer fails the test, with the server's logs.
    #[track_caller]
    pub fn ask(&self, request: &Request) -> Response {
        self.send(request).unwrap_or_else(|e| {
            panic!("{} {}: {e}\n{}", request.method, request.target, self.all_logs())
        })
    }

    /// The contents of one of the server's log files (empty if missing).
    pub fn log(&self, name: &str) -> String {
        fs::read_to_string(self.root.join("logs").join(name)).unwrap_or_default()
    }

    /// The program's log line holding `needle`, waiting (bounded) for it: the program writes
    /// it after the response, and the server copies it to its log after that.
    #[track_caller]
    pub fn program_log_line(&self, needle: &str) -> String {
        self.log_line_of("dacs_signout:", needle)
    }

    /// The receiver's log line holding `needle` (bounded wait), as [`Server::program_log_line`].
    #[track_caller]
    pub fn receiver_log_line(&self, needle: &str) -> String {
        self.log_line_of("dacs_logout_receiver:", needle)
    }

    #[track_caller]
    fn log_line_of(&self, program: &str, needle: &str) -> String {
        let deadline = Instant::now() + LOG_TIMEOUT;
        loop {
            let log = self.log(self.kind.program_log());
            if let Some(line) = log.lines().find(|l| l.contains(program) && l.contains(needle)) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "{}: no program log line with {needle:?}\n{}",
                self.kind.name(),
                self.all_logs()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every log file, for a failure message.
    pub fn all_logs(&self) -> String {
        let mut out = String::new();
        let mut paths: Vec<PathBuf> = fs::read_dir(self.root.join("logs"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        paths.sort();
        for path in paths {
            let text = fs::read_to_string(&path).unwrap_or_default();
            let _ = writeln!(out, "==> {} <==\n{}", path.display(), tail(&text, 4000));
        }
        out
    }

    /// Writes the program's configuration as `conf` says.
    fn write_conf(&self, conf: &Conf, vars: &[(&str, String)]) -> io::Result<()> {
        let path = self.conf_path();
        let _ = fs::remove_file(&path);
        match conf {
            Conf::Missing => Ok(()),
            Conf::Text(text) => write_mode(&path, &fill(text, vars), 0o644),
            Conf::Unreadable(text) => write_mode(&path, &fill(text, vars), 0o000),
        }
    }

    /// Makes the conf file unreadable (or missing) while the server runs.
    pub fn break_conf(&self, unreadable: bool) {
        let conf =
            if unreadable { Conf::Unreadable("<Configuration/>".into()) } else { Conf::Missing };
        self.write_conf(&conf, &[]).expect("rewrite dacs.conf");
    }

    fn prepare(&self, setup: &Setup) -> io::Result<()> {
        if let Some(lines) = &setup.make_dirs {
            self.run_lines(lines)?;
        } else {
            for dir in ["htdocs", "cgi-bin", "etc"] {
                make_dir(&self.root.join(dir))?;
            }
            // lighttpd opens its logs after dropping privileges, fcgiwrap creates its socket as
            // the CGI user, and the program writes to var/.
            for dir in ["logs", "run", "tmp", "var"] {
                let path = self.root.join(dir);
                make_dir(&path)?;
                give_to_cgi_user(&path)?;
            }
            // The registry opens only in a directory of its own user's that nobody else may
            // write: the receiver's and the guard's.
            let registry = self.root.join("var/registry");
            fs::create_dir(&registry)?;
            fs::set_permissions(&registry, fs::Permissions::from_mode(0o700))?;
            give_to_cgi_user(&registry)?;
        }
        let vars = self.vars();
        let pages = setup.pages.iter().map(|(name, text)| (Path::new("htdocs").join(name), text));
        let files = setup.files.iter().map(|(name, text)| (PathBuf::from(name), text));
        for (name, text) in pages.chain(files) {
            let path = self.root.join(name);
            fs::create_dir_all(path.parent().expect("a page has a directory"))?;
            fs::write(&path, fill(text, &vars))?;
        }
        if setup.conf_file.is_none() {
            self.write_conf(&setup.conf, &vars)?;
        }
        for (name, from) in &setup.programs {
            let to = self.root.join("cgi-bin").join(name);
            fs::copy(from, &to)?;
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755))?;
        }
        if setup.program.is_some() {
            return Ok(());
        }
        copy_program(super::BIN, &self.bin)?;
        // Its command line and the relay's delivery child, beside it as scripts/install puts it.
        copy_program(super::CLI, &self.bin.with_file_name("dacs_signout_cli"))?;
        if setup.receiver_token.is_some() {
            copy_program(super::RECEIVER, &self.receiver_bin)?;
        }
        if setup.guard {
            make_dir(&self.root.join("bin"))?;
            copy_program(super::GUARD, &self.guard_bin)?;
        }
        Ok(())
    }

    /// Runs shell lines with `ROOT` set, stopping at the first that fails.
    fn run_lines(&self, lines: &[String]) -> io::Result<()> {
        let script = format!("set -eu\n{}\n", lines.join("\n"));
        let out = Command::new("/bin/sh")
            .args(["-c", &script])
            .env("ROOT", &self.root)
            .stdin(Stdio::null())
            .output()?;
        if out.status.success() {
            return Ok(());
        }
        Err(io::Error::other(format!(
            "{script}failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )))
    }

    fn vars(&self) -> Vec<(&'static str, String)> {
        let module = if self.kind == ServerKind::ApacheCgi { "cgi" } else { "cgid" };
        vec![
            ("@PORT@", self.port.to_string()),
            ("@ROOT@", self.root.display().to_string()),
            ("@BIN@", self.bin.display().to_string()),
            ("@CONF@", self.conf_path().display().to_string()),
            ("@CGI_MODULE@", module.to_owned()),
            ("@RECEIVER_BIN@", self.receiver_bin.display().to_string()),
            ("@GUARD_PORT@", self.guard_port.to_string()),
            ("@GUARD_SOCKET@", self.guard_socket.display().to_string()),
        ]
    }

    /// Renders an example into ROOT, as the setup asks.
    fn render(&self, setup: &Setup, template: &str) -> io::Result<PathBuf> {
        let mut text = fs::read_to_string(self.examples.join(template))?;
        if template == self.kind.template() {
            if let (true, Some(line)) = (setup.pass_token, self.kind.token_line()) {
                text = uncomment(&text, line)?;
            }
            if let (Some(_), Some(line)) = (&setup.receiver_token, self.kind.receiver_token_line())
            {
                text = uncomment(&text, line)?;
            }
            text.push_str(&setup.appended);
            if !setup.in_server.is_empty() {
                // The example's server block is its last: it closes with the http block.
                let end = text.rfind("\n    }\n}").ok_or_else(|| {
                    io::Error::other(format!("{template}: no end of a server block"))
                })?;
                text.insert_str(end + 1, &setup.in_server);
            }
        }
        let rendered = render(&text, &self.vars())?;
        let path = self.root.join(Path::new(template).file_name().expect("a file name"));
        fs::write(&path, rendered)?;
        Ok(path)
    }

    fn spawn(&mut self, setup: &Setup) -> io::Result<()> {
        let mut env: Vec<(String, String)> = Vec::new();
        if let Some(token) = &setup.hub_token {
            env.push(("COMMONS_PROFILES_API_TOKEN".into(), token.clone()));
        }
        if let Some(token) = &setup.receiver_token {
            env.push(("DACS_RECEIVER_TOKEN".into(), token.clone()));
        }
        if setup.guard {
            self.spawn_guard()?;
        }
        let conf = self.render(setup, self.kind.template())?;
        match self.kind {
            ServerKind::ApacheCgid | ServerKind::ApacheCgi => {
                let mut cmd = Command::new("/usr/sbin/apache2");
                cmd.arg("-f").arg(&conf).arg("-DFOREGROUND");
                self.spawn_logged("apache2", cmd, &env, setup.preamble.as_deref())?;
            }
            ServerKind::Lighttpd => {
                let mut cmd = Command::new("/usr/sbin/lighttpd");
                cmd.arg("-D").arg("-f").arg(&conf);
                self.spawn_logged("lighttpd", cmd, &env, setup.preamble.as_deref())?;
            }
            ServerKind::Nginx => {
                let script = self.render(setup, "nginx/fcgiwrap.sh")?;
                let mut cmd = Command::new("/bin/sh");
                cmd.arg(&script);
                self.spawn_logged("fcgiwrap", cmd, &env, setup.preamble.as_deref())?;
                self.wait_for_socket(&self.root.join("run/fcgiwrap.sock"))?;
                let mut cmd = Command::new("/usr/sbin/nginx");
                cmd.arg("-p").arg(format!("{}/", self.root.display())).arg("-c").arg(&conf);
                cmd.args(["-g", "daemon off;"]);
                self.spawn_logged("nginx", cmd, &[], None)?;
                // Stopped first: nginx, then fcgiwrap.
                self.processes.rotate_right(1);
            }
        }
        Ok(())
    }

    /// Starts the guard where the example expects it, as the CGI user, and waits (bounded)
    /// until it accepts connections.
    fn spawn_guard(&mut self) -> io::Result<()> {
        let listen = if self.kind.guard_on_tcp() {
            format!("tcp:127.0.0.1:{}", self.guard_port)
        } else {
            format!("unix:{}", self.guard_socket.display())
        };
        let mut cmd = if running_as_root() {
            let mut cmd = Command::new("setpriv");
            cmd.args([
                &format!("--reuid={CGI_USER}"),
                &format!("--regid={CGI_USER}"),
                "--init-groups",
                "--",
            ]);
            cmd.arg(&self.guard_bin);
            cmd
        } else {
            Command::new(&self.guard_bin)
        };
        cmd.args(["--listen", &listen, "--workers", "4"]);
        let env = [
            ("DACS_SIGNOUT_CONF".to_owned(), self.conf_path().display().to_string()),
            ("DACS_REGISTRY_KEY".to_owned(), GUARD_KEY.to_owned()),
        ];
        self.spawn_logged("dacs_guard", cmd, &env, None)?;
        let (tcp, port, socket) =
            (self.kind.guard_on_tcp(), self.guard_port, self.guard_socket.clone());
        self.wait_until("the guard does not accept connections", Instant::now(), move |_| {
            if tcp {
                TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).is_ok()
            } else {
                std::os::unix::net::UnixStream::connect(&socket).is_ok()
            }
        })
    }

    /// The guard's own output (its start, its errors, its counters when it stops).
    pub fn guard_log(&self) -> String {
        self.log("dacs_guard.out")
    }

    /// Spawns `cmd` with a clean environment, in its own process group, with its output in
    /// `logs/NAME.out`.
    fn spawn_logged(
        &mut self,
        name: &'static str,
        cmd: Command,
        env: &[(String, String)],
        preamble: Option<&str>,
    ) -> io::Result<()> {
        let mut cmd = match preamble {
            None => cmd,
            // `sh -c 'PREAMBLE; exec "$0" "$@"' PROGRAM ARGS...`: the shell becomes the server
            // (same process id, same group).
            Some(line) => {
                let mut shell = Command::new("/bin/sh");
                shell.arg("-c").arg(format!("{line}\nexec \"$0\" \"$@\""));
                shell.arg(cmd.get_program()).args(cmd.get_args());
                shell
            }
        };
        let out = fs::File::create(self.root.join("logs").join(format!("{name}.out")))?;
        cmd.env_clear()
            .envs(BASE_ENV.iter().copied())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        self.processes.push((name, cmd.spawn()?));
        Ok(())
    }

    fn check_alive(&mut self) -> io::Result<()> {
        for (name, child) in &mut self.processes {
            if let Some(status) = child.try_wait()? {
                return Err(io::Error::other(format!("{name} exited early: {status}")));
            }
        }
        Ok(())
    }

    fn wait_for_socket(&mut self, path: &Path) -> io::Result<()> {
        self.wait_until("no fcgiwrap socket", Instant::now(), |_| {
            std::os::unix::net::UnixStream::connect(path).is_ok()
        })
    }

    fn wait_ready(&mut self, started: Instant) -> io::Result<()> {
        self.wait_until("the server did not answer", started, |server| {
            server.send(&Request::get("/").timeout(Duration::from_secs(2))).is_ok()
        })
    }

    /// Polls `ready` until it holds, a process died, or [`START_TIMEOUT`] has passed.
    fn wait_until(
        &mut self,
        what: &str,
        started: Instant,
        ready: impl Fn(&Server) -> bool,
    ) -> io::Result<()> {
        loop {
            if ready(self) {
                return Ok(());
            }
            let failure = match self.check_alive() {
                Err(e) => e,
                Ok(()) if started.elapsed() > START_TIMEOUT => {
                    io::Error::new(io::ErrorKind::TimedOut, what)
                }
                Ok(()) => {
                    thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            return Err(io::Error::new(
                failure.kind(),
                format!(
                    "{} on port {}: {failure}\n{}",
                    self.kind.name(),
                    self.port,
                    self.all_logs()
                ),
            ));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The servers first, then the guard they ask.
        for last in [false, true] {
            for (name, child) in &mut self.processes {
                if (*name == "dacs_guard") == last {
                    stop_process_group(child, STOP_GRACE);
                }
            }
        }
        if thread::panicking() || std::env::var_os("KEEP_SERVER_ROOT").is_some() {
            eprintln!("{}: kept {}", self.kind.name(), self.root.display());
        } else {
            let _ = fs::remove_dir_all(&self.root);
        }
    }
}

/// Stops a child started with `process_group(0)`: SIGTERM to it, at most `grace` to exit, then
/// SIGKILL to whatever is left in its group (preforked helpers, CGI programs), then to it. The
/// group is killed before the child is reaped: until then its process id, which names the
/// group, cannot be given to another process.
pub fn stop_process_group(child: &mut Child, grace: Duration) {
    let pid = child.id();
    signal("TERM", &pid.to_string());
    let deadline = Instant::now() + grace;
    while !exited(pid) && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    signal("KILL", &format!("-{pid}"));
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether a child has exited (a zombie not yet reaped, or gone), from `/proc/PID/stat`.
fn exited(pid: u32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // "PID (COMM) STATE ...": the state follows the last `)`.
    stat.rsplit_once(')').is_none_or(|(_, rest)| rest.trim_start().starts_with(['Z', 'X']))
}

/// `kill -s SIG -- TARGET` with the shell's builtin (no procps needed); errors ignored.
fn signal(sig: &str, target: &str) {
    let _ = Command::new("/bin/sh")
        .args(["-c", "kill -s \"$1\" -- \"$2\" 2>/dev/null", "kill", sig, target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The directory holding the server configuration templates.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Replaces each placeholder; fails when an `@NAME@` placeholder is left.
pub fn render(template: &str, vars: &[(&str, String)]) -> io::Result<String> {
    let text = fill(template, vars);
    for (i, line) in text.lines().enumerate() {
        let parts: Vec<&str> = line.split('@').collect();
        for word in parts.iter().take(parts.len().saturating_sub(1)).skip(1) {
            if !word.is_empty() && word.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
                let message = format!("line {}: placeholder @{word}@ left", i + 1);
                return Err(io::Error::new(io::ErrorKind::InvalidData, message));
            }
        }
    }
    Ok(text)
}

fn fill(template: &str, vars: &[(&str, String)]) -> String {
    vars.iter().fold(template.to_owned(), |text, (name, value)| text.replace(name, value))
}

/// Uncomments the one line that is `#` + `line` (after indentation).
pub fn uncomment(text: &str, line: &str) -> io::Result<String> {
    let commented = format!("#{line}");
    let hits = text.lines().filter(|l| l.trim_start() == commented).count();
    if hits != 1 {
        let message = format!("the example has {hits} lines `{commented}`, not one");
        return Err(io::Error::new(io::ErrorKind::InvalidData, message));
    }
    let mut out: String = text
        .lines()
        .map(|l| if l.trim_start() == commented { l.replacen('#', "", 1) } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n");
    out.push('\n');
    Ok(out)
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A fresh directory `/tmp/dacs-NAME-...`, mode 0755 (the servers' users must reach in).
pub fn make_root(name: &str) -> io::Result<PathBuf> {
    Ok(super::fresh_dir(&format!("dacs-{name}")))
}

fn make_dir(path: &Path) -> io::Result<()> {
    fs::create_dir(path)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
}

/// A copy of a built program, executable by everyone (the CGI user runs it).
fn copy_program(from: &str, to: &Path) -> io::Result<()> {
    fs::copy(from, to)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755))
}

fn write_mode(path: &Path, text: &str, mode: u32) -> io::Result<()> {
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// Started as root, the servers run the program as www-data: what it writes must be its own.
fn give_to_cgi_user(path: &Path) -> io::Result<()> {
    if !running_as_root() {
        return Ok(());
    }
    let (uid, gid) = user_ids(CGI_USER).ok_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("no user {CGI_USER} in /etc/passwd"))
    })?;
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
}

pub fn running_as_root() -> bool {
    // "Uid:\treal\teffective\t..." in /proc/self/status.
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))?
                .split_whitespace()
                .nth(2)
                .map(|e| e == "0")
        })
        .unwrap_or(false)
}

/// (uid, gid) of a user, from /etc/passwd.
fn user_ids(user: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    let fields: Vec<&str> =
        passwd.lines().map(|line| line.split(':').collect::<Vec<_>>()).find(|f| f[0] == user)?;
    Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?))
}

fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

// --- a tiny HTTP/1.1 client ------------------------------------------------------------------

/// One request, sent with `Connection: close`.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// The request target, e.g. `/cgi-bin/dacs_signout?FORMAT=JSON`.
    pub target: String,
    /// The `Host` header; `127.0.0.1:PORT` when `None`.
    pub host: Option<String>,
    /// Further header lines, in order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Connect, write and read timeout, each.
    pub timeout: Duration,
    /// Keep reading after a complete response until the server closes the connection (to time
    /// that), rather than stop at the response's end (chromedriver keeps it open).
    pub until_close: bool,
}

impl Request {
    pub fn new(method: &str, target: &str) -> Request {
        Request {
            method: method.to_owned(),
            target: target.to_owned(),
            host: None,
            headers: Vec::new(),
            body: Vec::new(),
            timeout: Duration::from_secs(15),
            until_close: true,
        }
    }

    pub fn get(target: &str) -> Request {
        Request::new("GET", target)
    }

    /// The real Profiles hub's call to a receiver, as its code sends it (python-requests):
    /// `POST ?username=U` with `Content-Type: application/json`, an empty body
    /// (`Content-Length: 0`) and the bearer token.
    pub fn profiles_logout(user: &str, token: &str) -> Request {
        Request::new("POST", &format!("{RECEIVER_PATH}?username={user}"))
            .header("User-Agent", "python-requests/2.34.2")
            .header("Accept-Encoding", "gzip, deflate")
            .header("Accept", "*/*")
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/json")
    }

    /// A POST of an `application/x-www-form-urlencoded` body.
    pub fn post_form(target: &str, body: &str) -> Request {
        Request::new("POST", target)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.as_bytes())
    }

    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn cookie(self, value: &str) -> Request {
        self.header("Cookie", value)
    }

    pub fn host(mut self, host: &str) -> Request {
        self.host = Some(host.to_owned());
        self
    }

    /// Sets the body; `Content-Length` is added when sending.
    pub fn body(mut self, body: &[u8]) -> Request {
        self.body = body.to_vec();
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = timeout;
        self
    }

    pub fn until_close(mut self, until_close: bool) -> Request {
        self.until_close = until_close;
        self
    }

    /// The bytes sent for this request to `port`.
    pub fn to_bytes(&self, port: u16) -> Vec<u8> {
        let host = self.host.clone().unwrap_or_else(|| format!("127.0.0.1:{port}"));
        let mut head = format!("{} {} HTTP/1.1\r\nHost: {host}\r\n", self.method, self.target);
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        if !self.body.is_empty() || self.method == "POST" {
            let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        }
        head.push_str("Connection: close\r\n\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// A response, with every header line kept in order.
#[derive(Clone, Debug, Default)]
pub struct Response {
    pub status: u16,
    /// The header lines (name as sent, value), in order; repeated names stay separate.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// The length of the whole message (head and body as sent) in bytes.
    pub message_len: usize,
    /// From connecting until the whole message had arrived.
    pub complete_after: Duration,
    /// From connecting until the server closed the connection.
    pub closed_after: Duration,
}

impl Response {
    /// The first header of that name (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_named(name).into_iter().next()
    }

    /// Every header of that name, in order.
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The names of the cookies set, in order, byte for byte.
    pub fn cookie_names(&self) -> Vec<&str> {
        self.headers_named("Set-Cookie")
            .into_iter()
            .map(|c| c.split_once('=').map_or(c, |(n, _)| n))
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request to 127.0.0.1:`port` and reads the answer (until the server closes the
/// connection, unless `until_close` is off).
pub fn send(port: u16, request: &Request) -> io::Result<Response> {
    let head = request.method == "HEAD";
    let started = Instant::now();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, request.timeout)?;
    stream.set_read_timeout(Some(request.timeout))?;
    stream.set_write_timeout(Some(request.timeout))?;
    stream.write_all(&request.to_bytes(port))?;
    let mut raw = Vec::new();
    let mut complete_after = None;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A server may reset the connection after its answer; keep what arrived.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset && !raw.is_empty() => 0,
            Err(e) => return Err(e),
        };
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if complete_after.is_none() && framed_len(&raw, head).is_some() {
            complete_after = Some(started.elapsed());
            if !request.until_close {
                break;
            }
        }
    }
    let closed_after = started.elapsed();
    let mut response = parse_response(&raw, head)?;
    response.complete_after = complete_after.unwrap_or(closed_after);
    response.closed_after = closed_after;
    Ok(response)
}

/// Parses a complete HTTP/1.x response (status line, headers, body with `Content-Length`,
/// chunked, or until the end).
pub fn parse_response(raw: &[u8], head_request: bool) -> io::Result<Response> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("headers not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| bad("bad header line"))?;
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let mut response = Response { status, headers, ..Response::default() };
    let rest = &raw[end + 4..];
    let (body, body_len) = if head_request || matches!(status, 100..=199 | 204 | 304) {
        (Vec::new(), 0)
    } else if response
        .header("Transfer-Encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else if let Some(length) = response.header("Content-Length") {
        let length: usize = length.parse().map_err(|_| bad("bad Content-Length"))?;
        (rest.get(..length).ok_or_else(|| bad("short body"))?.to_vec(), length)
    } else {
        (rest.to_vec(), rest.len())
    };
    response.body = body;
    response.message_len = end + 4 + body_len;
    Ok(response)
}

/// The length of the response at the start of `raw` if it is complete and delimited by its own
/// framing (not by the end of the connection).
pub fn framed_len(raw: &[u8], head_request: bool) -> Option<usize> {
    let response = parse_response(raw, head_request).ok()?;
    let bodyless = head_request || matches!(response.status, 100..=199 | 204 | 304);
    let framed = bodyless
        || response.header("Content-Length").is_some()
        || response.header("Transfer-Encoding").is_some();
    framed.then_some(response.message_len)
}

/// (body, bytes consumed including the last chunk and trailers).
fn dechunk(data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + find(&data[at..], b"\r\n")?;
        let size_text = std::str::from_utf8(&data[at..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // Trailer lines, then an empty line.
            let trailers = &data[at..];
            let end =
                if trailers.starts_with(b"\r\n") { 2 } else { find(trailers, b"\r\n\r\n")? + 4 };
            return Some((body, at + end));
        }
        body.extend_from_slice(data.get(at..at + size)?);
        at += size + 2;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
