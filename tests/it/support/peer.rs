//! HTTP peers on loopback: fake receivers that answer as they are told (redirecting, hanging,
//! 500 then 200, 200 with garbage, ...) and record what they got; and a tiny CGI gateway that
//! runs one of the project's programs per request, so that it can be called over HTTP. HTTP/1.1,
//! one request per connection. Every peer stops when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A request as a peer read it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// `HTTP/1.1`
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// A query parameter, form-decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query().as_bytes())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// How a peer answers a request.
#[derive(Debug, Clone)]
pub enum Reply {
    Answer {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Reads the request and never answers (until the peer is dropped).
    Hang,
}

impl Reply {
    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Answer { status, headers: Vec::new(), body: body.to_owned() }
    }

    /// The answer of this project's receiver, and of the guide's.
    pub fn ok() -> Reply {
        Reply::status(200, r#"{"status":"success","message":"User logged out"}"#)
    }
}

type Behaviour = Arc<dyn Fn(usize, &Received) -> Reply + Send + Sync>;

pub struct Peer {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
}

impl Peer {
    /// A peer whose `n`th request (from 0) gets `behaviour(n, request)`.
    pub fn start(behaviour: impl Fn(usize, &Received) -> Reply + Send + Sync + 'static) -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        Peer::on(listener, Arc::new(behaviour), port)
    }

    fn on(listener: TcpListener, behaviour: Behaviour, port: u16) -> Peer {
        listener.set_nonblocking(true).unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicUsize::new(0));
        let (log, stopping) = (Arc::clone(&received), Arc::clone(&stop));
        thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (log, stopping, behaviour, count) = (
                            Arc::clone(&log),
                            Arc::clone(&stopping),
                            Arc::clone(&behaviour),
                            Arc::clone(&count),
                        );
                        thread::spawn(move || {
                            let Some(request) = read_request(&stream) else { return };
                            let n = {
                                let mut log = log.lock().unwrap();
                                log.push(request.clone());
                                count.fetch_add(1, Ordering::SeqCst)
                            };
                            match behaviour(n, &request) {
                                Reply::Hang => {
                                    while !stopping.load(Ordering::Relaxed) {
                                        thread::sleep(Duration::from_millis(20));
                                    }
                                }
                                Reply::Answer { status, headers, body } => {
                                    write_response(&stream, status, &headers, body.as_bytes())
                                }
                            }
                        });
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Peer { port, received, stop }
    }

    /// Answers every request with `reply`.
    pub fn always(reply: Reply) -> Peer {
        Peer::start(move |_, _| reply.clone())
    }

    /// 500 for the first `n` requests, then 200.
    pub fn failing_first(n: usize) -> Peer {
        Peer::start(move |i, _| {
            if i < n { Reply::status(500, r#"{"error":"try later"}"#) } else { Reply::ok() }
        })
    }

    /// Answers 200 after `ms` milliseconds.
    pub fn slow(ms: u64) -> Peer {
        Peer::start(move |_, _| {
            thread::sleep(Duration::from_millis(ms));
            Reply::ok()
        })
    }

    pub fn redirecting() -> Peer {
        Peer::always(Reply::Answer {
            status: 302,
            headers: vec![("Location".into(), "/elsewhere".into())],
            body: String::new(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (bounded) until `n` requests have arrived.
    #[track_caller]
    pub fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        while self.received.lock().unwrap().len() < n {
            assert!(
                Instant::now() < deadline,
                "the peer on port {} got {} of {n} requests",
                self.port,
                self.received().len()
            );
            thread::sleep(Duration::from_millis(5));
        }
        self.received()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Reads one request (bounded: 10 s, 1 MiB); `None` when the client sent no whole request.
pub fn read_request(stream: &TcpStream) -> Option<Received> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let version = parts.next().unwrap_or("").to_owned();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((n, v)) = line.trim_end().split_once(':') {
            headers.push((n.trim().to_owned(), v.trim().to_owned()));
        }
    }
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
        .min(1 << 20);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Received { method, target, version, headers, body, at: Instant::now() })
}

fn write_response(mut stream: &TcpStream, status: u16, headers: &[(String, String)], body: &[u8]) {
    let mut head = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
        head.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// One of the project's CGI programs behind a tiny HTTP gateway on loopback, mounted at
/// `mount` (`SCRIPT_NAME`; the rest of the path is `PATH_INFO`), with `env` besides the CGI
/// variables. Each request runs the program once, as the test's user.
pub struct Gateway {
    peer: Peer,
    pub mount: String,
    logs: Arc<Mutex<String>>,
}

impl Gateway {
    pub fn start(program: &'static str, mount: &str, env: Vec<(String, String)>) -> Gateway {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mount_owned = mount.trim_end_matches('/').to_owned();
        let env = Arc::new(env);
        let logs = Arc::new(Mutex::new(String::new()));
        let behaviour: Behaviour = {
            let (mount, logs) = (mount_owned.clone(), Arc::clone(&logs));
            Arc::new(move |_, request: &Received| {
                run_cgi(program, &mount, port, &env, request, &logs)
            })
        };
        Gateway { peer: Peer::on(listener, behaviour, port), mount: mount_owned, logs }
    }

    /// What the program wrote to stderr (its log lines), every request's.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub fn port(&self) -> u16 {
        self.peer.port
    }

    /// `http://127.0.0.1:PORT/MOUNT/tail`
    pub fn url(&self, tail: &str) -> String {
        self.peer.url(&format!("{}{tail}", self.mount))
    }

    pub fn received(&self) -> Vec<Received> {
        self.peer.received()
    }
}

fn run_cgi(
    program: &str,
    mount: &str,
    port: u16,
    env: &[(String, String)],
    request: &Received,
    logs: &Mutex<String>,
) -> Reply {
    let path = request.path();
    let Some(path_info) = path.strip_prefix(mount) else {
        return Reply::status(404, "{}");
    };
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", &request.method)
        .env("SCRIPT_NAME", mount)
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", request.query())
        .env("SERVER_NAME", "127.0.0.1")
        .env("SERVER_PORT", port.to_string())
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in &request.headers {
        let var = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
        match var.as_str() {
            "HTTP_CONTENT_TYPE" => command.env("CONTENT_TYPE", value),
            "HTTP_CONTENT_LENGTH" => command.env("CONTENT_LENGTH", value),
            _ => command.env(var, value),
        };
    }
    command.envs(env.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let mut child = command.spawn().expect("the program runs");
    let _ = child.stdin.take().unwrap().write_all(&request.body);
    let out = child.wait_with_output().unwrap();
    logs.lock().unwrap().push_str(&String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return Reply::status(502, "{\"error\":\"no CGI header block\"}");
    };
    let mut status = 200;
    let mut headers = Vec::new();
    for line in head.split("\r\n") {
        let Some((name, value)) = line.split_once(": ") else { continue };
        if name == "Status" {
            status = value[..3].parse().unwrap_or(502);
        } else {
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    Reply::Answer { status, headers, body: body.to_owned() }
}
