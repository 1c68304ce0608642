//! The demo's network half (SPEC §11–§14): a guard (`dacs_guard`, asked over FastCGI as
//! nginx's `auth_request` or Apache's `mod_authnz_fcgi` ask it) in front of the protected page,
//! the receiver (`dacs_logout_receiver`, a CGI program) called as the Profiles hub calls it,
//! both on an SQLite registry in the demo's directory, and a hub of its own (`hub.rs`).

use std::ffi::OsString;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::cgi::{self, Answer};
use super::http::HttpRequest;
use super::hub::Hub;
use crate::fastcgi::{self, AUTHORIZER, BEGIN_REQUEST, END_REQUEST, PARAMS, STDOUT};

/// The variables that carry the demo's secrets to the programs.
pub const KEY_VAR: &str = "DACS_REGISTRY_KEY";
pub const TOKEN_VAR: &str = "DACS_RECEIVER_TOKEN";

/// The directives the demo adds to its configuration: the registry, the spool beside it.
pub fn directives(dir: &Path) -> String {
    format!(
        "    REGISTRY \"sqlite:{0}/registry.db\"\n    RELAY_SPOOL_DIR \"{0}/spool\"\n",
        dir.display()
    )
}

/// The running guard, the receiver's program and the hub, with the secrets they share.
pub struct Network {
    socket: PathBuf,
    receiver: PathBuf,
    pub hub: Hub,
    /// The fingerprint key (also given to the signout, which revokes what it removes).
    pub key: String,
    /// The bearer token the demo's "hub" presents to the receiver.
    token: String,
}

impl Network {
    /// Starts the guard next to this executable on a socket in `dir`, and configures the hub
    /// (its receivers on this site, 127.0.0.1:`port`); `Err` says why the network half is off
    /// (the programs are not built, the guard did not start).
    pub fn start(conf: &Path, dir: &Path, port: u16) -> Result<Network, String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find itself: {e}"))?;
        let sibling = |name: &str| {
            let path = exe.with_file_name(name);
            match path.is_file() {
                true => Ok(path),
                false => Err(format!(
                    "{} is not built (cargo build --release builds every program)",
                    path.display()
                )),
            }
        };
        let (guard, receiver) = (sibling("dacs_guard")?, sibling("dacs_logout_receiver")?);
        let hub = Hub::new(sibling("dacs_logout_hub")?, dir, port)?;
        let key = random_hex().map_err(|e| format!("no random key: {e}"))?;
        let token = random_hex().map_err(|e| format!("no random token: {e}"))?;
        let socket = dir.join("guard.sock");
        let mut command = Command::new(&guard);
        command
            .env_clear()
            .env("DACS_SIGNOUT_CONF", conf)
            .env(KEY_VAR, &key)
            .arg("--listen")
            .arg(format!("unix:{}", socket.display()))
            .args(["--workers", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The guard goes when the demo goes, however it goes (Ctrl-C, a kill).
        #[allow(unsafe_code)]
        // SAFETY: between fork and exec only prctl(PR_SET_PDEATHSIG) runs, which is
        // async-signal-safe and touches no memory of the parent's.
        unsafe {
            command.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::TERM,
                ))
                .map_err(io::Error::from)
            });
        }
        let mut child = command.spawn().map_err(|e| format!("{}: {e}", guard.display()))?;
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr);
        let mut first = String::new();
        let _ = lines.read_line(&mut first);
        if !first.contains("listening on") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("dacs_guard did not start: {}", first.trim()));
        }
        crate::log::to_stderr(format_args!("{}", first.trim_end()));
        // The guard's later lines (refusals, errors) go to the demo's stderr.
        std::thread::spawn(move || {
            let _ = io::copy(&mut lines, &mut io::stderr());
            let _ = child.wait();
        });
        Ok(Network { socket, receiver, hub, key, token })
    }

    /// Asks the guard about `request`, as a web server's authorizer call does.
    pub fn authorize(&self, request: &HttpRequest, port: u16) -> io::Result<Answer> {
        let mut stream = UnixStream::connect(&self.socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let cookie = request.header("Cookie").unwrap_or_default();
        let port = port.to_string();
        let params = fastcgi::encode_pairs(&[
            (b"REQUEST_METHOD", request.method.as_bytes()),
            (b"REQUEST_URI", &request.path),
            (b"SERVER_NAME", b"127.0.0.1"),
            (b"SERVER_PORT", port.as_bytes()),
            (b"REMOTE_ADDR", b"127.0.0.1"),
            (b"HTTP_COOKIE", &cookie),
        ]);
        let mut out = fastcgi::record(BEGIN_REQUEST, 1, &[0, AUTHORIZER as u8, 0, 0, 0, 0, 0, 0]);
        for chunk in params.chunks(60_000) {
            out.extend_from_slice(&fastcgi::record(PARAMS, 1, chunk));
        }
        out.extend_from_slice(&fastcgi::record(PARAMS, 1, &[]));
        stream.write_all(&out)?;
        let mut response = Vec::new();
        while let Some(record) = fastcgi::read_record(&mut stream as &mut dyn Read)? {
            match record.kind {
                STDOUT => response.extend_from_slice(&record.content),
                END_REQUEST => break,
                _ => {}
            }
        }
        Answer::parse(&response).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidData, "the guard's answer has no header")
        })
    }

    /// The hub's call to the receiver, as Profiles makes it (`POST ?username=` with its bearer
    /// token and an empty body): the receiver's answer, as HTTP.
    pub fn hub_says_signed_out(&self, user: &str, conf: &Path, port: u16) -> Vec<u8> {
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("username", user)
            .finish();
        let hub = HttpRequest {
            method: "POST".into(),
            path: b"/api/logout/".to_vec(),
            query: query.into_bytes(),
            headers: vec![
                ("Content-Type".into(), b"application/json".to_vec()),
                ("User-Agent".into(), b"python-requests/2.32 (the demo, as the hub)".to_vec()),
                ("Authorization".into(), format!("Bearer {}", self.token).into_bytes()),
            ],
            body: Vec::new(),
        };
        self.receive(&hub, conf, port)
    }

    /// The receiver's mount, `/api/logout/`: `request` (the demo's button's, or the hub's
    /// over HTTP) to `dacs_logout_receiver` as a CGI, with its token variable, the fingerprint
    /// key and the configuration.
    pub fn receive(&self, request: &HttpRequest, conf: &Path, port: u16) -> Vec<u8> {
        let mut env = cgi::environment(request, port, "/api/logout/");
        if let Some(authorization) = request.header("Authorization") {
            // Passed by a server told to (Apache's `CGIPassAuth On`).
            use std::os::unix::ffi::OsStrExt;
            let value = std::ffi::OsStr::from_bytes(&authorization).to_owned();
            env.push((OsString::from("HTTP_AUTHORIZATION"), value));
        }
        env.extend([
            (TOKEN_VAR.into(), self.token.clone().into()),
            (KEY_VAR.into(), self.key.clone().into()),
            ("DACS_SIGNOUT_CONF".into(), conf.into()),
        ]);
        cgi::run(&self.receiver, &env, &request.body)
    }

    /// The receivers' token (the demo's hub presents it to its receiver).
    pub fn receiver_token(&self) -> &str {
        &self.token
    }
}

/// 32 random hex digits, from the kernel.
pub fn random_hex() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
