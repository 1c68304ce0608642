//! `dacs_signout demo`: a tiny HTTP server on 127.0.0.1 with a demo portal that sets DACS
//! credentials and links to this very program, run as a real CGI child process. It exists so
//! that a newcomer can see a signout without setting up a web server; it is not for production.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use std::path::{Path, PathBuf};

use crate::cgi::Env;
use crate::config::DEMO;
use crate::render::html::escape;

const USERS: &[&str] = &["alice", "bob@example.org"];

pub fn run(env: &Env, port: u16, stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    // The demo's own configuration, whatever `/etc/dacs-signout/dacs.conf` says (its portal
    // signs in to federation DEMO), unless DACS_SIGNOUT_CONF names another.
    let conf = match env.os("DACS_SIGNOUT_CONF") {
        Some(path) => PathBuf::from(path),
        None => match write_demo_conf() {
            Ok(path) => path,
            Err(e) => {
                let _ = writeln!(stderr, "dacs_signout demo: cannot write its configuration: {e}");
                return 1;
            }
        },
    };
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(stderr, "dacs_signout demo: cannot listen on 127.0.0.1:{port}: {e}");
            return 1;
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(port);
    let _ = writeln!(stdout, "dacs_signout demo: open http://127.0.0.1:{port}/ (Ctrl-C stops it)");
    let _ = writeln!(stdout, "dacs_signout demo: configuration {}", conf.display());
    let _ = stdout.flush();
    let _ = stderr.flush();
    // A thread per connection: browsers open speculative connections that send nothing.
    let conf: &'static Path = Box::leak(conf.into_boxed_path());
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            if let Err(e) = handle(stream, port, conf) {
                eprintln!("dacs_signout demo: {e}");
            }
        });
    }
    0
}

struct HttpRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &TcpStream) -> std::io::Result<HttpRequest> {
    let mut reader = BufReader::new(stream.take(1 << 20));
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("/").to_owned();
    let (path, query) = target
        .split_once('?')
        .map_or((target.clone(), String::new()), |(p, q)| (p.to_owned(), q.to_owned()));
    let mut headers = Vec::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.trim_end().split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut request = HttpRequest { method, path, query, headers, body: Vec::new() };
    let length: u64 = request.header("Content-Length").and_then(|v| v.parse().ok()).unwrap_or(0);
    reader.take(length.min(1 << 16)).read_to_end(&mut request.body)?;
    Ok(request)
}

/// `config::DEMO` in a fresh directory of its own under the system's temporary directory.
fn write_demo_conf() -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for n in 0.. {
        let dir = base.join(format!("dacs-signout-demo-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                let path = dir.join("dacs.conf");
                std::fs::write(&path, DEMO)?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("an unbounded range")
}

fn handle(mut stream: TcpStream, port: u16, conf: &Path) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let request = read_request(&stream)?;
    let response = match request.path.as_str() {
        "/" => portal(&request, port),
        "/signin" => signin(&request),
        "/cgi-bin/dacs_signout" => cgi(&request, port, conf)?,
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    };
    stream.write_all(&response)
}

fn http(status: &str, headers: &[String], body: &[u8]) -> Vec<u8> {
    let mut out =
        format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

fn portal(request: &HttpRequest, port: u16) -> Vec<u8> {
    let cookies = request.header("Cookie").unwrap_or("");
    let names: Vec<String> = crate::credentials::header::names(cookies.as_bytes())
        .map(|n| format!("<li><code>{}</code></li>", escape(&String::from_utf8_lossy(n))))
        .collect();
    let signin: String = USERS
        .iter()
        .map(|u| {
            format!("<a class=\"signin\" href=\"/signin?user={0}\">Sign in as {0}</a> ", escape(u))
        })
        .collect();
    let signout = "/cgi-bin/dacs_signout";
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Demo portal</title></head><body>\n\
         <h1>Demo portal (federation DEMO)</h1>\n<p>This page runs on http://127.0.0.1:{port}/ and links to the real \
         <code>dacs_signout</code> binary, run as a CGI program.</p>\n<p>{signin}</p>\n\
         <h2>Cookies this browser sent</h2>\n<ul id=\"cookies\">{}</ul>\n\
         <p><a id=\"signout\" href=\"{signout}?DACS_SIGNOUT_HANDLER=/\">Sign out</a> (and come back here) · \
         <a href=\"{signout}\">Sign out (built-in page)</a> · \
         <a href=\"{signout}?DACS_USERNAME=alice\">Sign out alice only</a> · \
         <a href=\"{signout}?FORMAT=JSON\">JSON</a> · <a href=\"{signout}?FORMAT=XMLDTD\">XML</a></p>\n\
         <form method=\"post\" action=\"{signout}\"><input type=\"hidden\" name=\"FORMAT\" value=\"HTML\">\
         <button id=\"post-signout\">Sign out (POST)</button></form>\n</body></html>\n",
        names.join("")
    );
    http(
        "200 OK",
        &["Content-Type: text/html; charset=utf-8".into(), "Cache-Control: no-store".into()],
        body.as_bytes(),
    )
}

fn signin(request: &HttpRequest) -> Vec<u8> {
    let user = request.query.strip_prefix("user=").unwrap_or("");
    let user = percent_encoding::percent_decode_str(user).decode_utf8_lossy();
    if !USERS.contains(&user.as_ref()) {
        return http("400 Bad Request", &[], b"unknown demo user\n");
    }
    let headers = [
        format!(
            "Set-Cookie: DACS:DEMO::DEMO:{user}=demo-credential-not-a-secret; Path=/; HttpOnly"
        ),
        "Set-Cookie: theme=dark; Path=/".to_owned(),
        "Location: /".to_owned(),
    ];
    http("303 See Other", &headers, b"")
}

/// Runs this executable as a CGI child (RFC 3875) and turns its output into an HTTP response.
fn cgi(request: &HttpRequest, port: u16, conf: &Path) -> std::io::Result<Vec<u8>> {
    let mut command = Command::new(std::env::current_exe()?);
    command.env_clear().stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let vars = [
        ("GATEWAY_INTERFACE", "CGI/1.1".to_owned()),
        ("SERVER_PROTOCOL", "HTTP/1.1".to_owned()),
        ("SERVER_NAME", "127.0.0.1".to_owned()),
        ("SERVER_PORT", port.to_string()),
        ("SCRIPT_NAME", request.path.clone()),
        ("REMOTE_ADDR", "127.0.0.1".to_owned()),
        ("REQUEST_METHOD", request.method.clone()),
        ("QUERY_STRING", request.query.clone()),
        ("CONTENT_LENGTH", request.body.len().to_string()),
    ];
    command.envs(vars);
    for (header, var) in [
        ("Content-Type", "CONTENT_TYPE"),
        ("Cookie", "HTTP_COOKIE"),
        ("User-Agent", "HTTP_USER_AGENT"),
        ("Sec-Fetch-Site", "HTTP_SEC_FETCH_SITE"),
        ("Sec-Fetch-Mode", "HTTP_SEC_FETCH_MODE"),
        ("Sec-Purpose", "HTTP_SEC_PURPOSE"),
    ] {
        if let Some(value) = request.header(header) {
            command.env(var, value);
        }
    }
    command.env("DACS_SIGNOUT_CONF", conf);
    let mut child = command.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&request.body)?;
    }
    let output = child.wait_with_output()?;
    let text = output.stdout;
    let split = text.windows(4).position(|w| w == b"\r\n\r\n").map_or(text.len(), |i| i + 4);
    let (head, body) = text.split_at(split);
    let mut status = "200 OK".to_owned();
    let mut headers = Vec::new();
    for line in String::from_utf8_lossy(head).lines().filter(|l| !l.is_empty()) {
        match line.strip_prefix("Status: ") {
            Some(s) => status = s.to_owned(),
            None => headers.push(line.to_owned()),
        }
    }
    Ok(http(&status, &headers, body))
}
