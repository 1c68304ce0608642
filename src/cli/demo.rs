//! `dacs_signout demo`: a tiny HTTP server on 127.0.0.1 with a demo portal that sets DACS
//! credentials and links to this very program, run as a real CGI child process. It exists so
//! that a newcomer can see a signout without setting up a web server; it is not for production.
//!
//! It hands the program what a real server would: the whole body (up to 1 MiB, its own cap),
//! the query and every header as raw bytes, so that the program's own answers (a 413 over
//! 64 KiB of body, a 400 for a Cookie header over 64 KiB or a query that is not clean UTF-8)
//! are the ones seen. Every request gets an answer; what the demo refuses itself (a malformed
//! request, a head over its limits) is a 4xx whose body says why.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use std::path::{Path, PathBuf};

use crate::cgi::Env;
use crate::config::DEMO;
use crate::render::html::escape;

const USERS: &[&str] = &["alice", "bob@example.org"];

/// The longest line of a request head (the request line or one header). Linux refuses to start
/// a program with an environment string over 128 KiB (`MAX_ARG_STRLEN`), so any line under this
/// fits in one CGI variable; it is well over the program's own 64 KiB Cookie limit.
const MAX_LINE: usize = 120 * 1024;
/// The largest request head, all lines together.
const MAX_HEAD: usize = 256 * 1024;
/// The largest body the demo takes; the program itself refuses more than 64 KiB (a 413).
const MAX_BODY: u64 = 1 << 20;
/// How much the demo reads and drops after answering, so that a client still sending (a body
/// refused with a 413, a head over the limit) reads the answer instead of a connection reset.
const MAX_DRAIN: u64 = 16 << 20;
/// How long a client may take to send each part of its request.
const TIMEOUT: Duration = Duration::from_secs(5);

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
            if let Err(e) = handle(&stream, port, conf) {
                eprintln!("dacs_signout demo: {e}");
            }
        });
    }
    0
}

/// A request as received: the target and header values are bytes, as the client sent them.
struct HttpRequest {
    method: String,
    path: Vec<u8>,
    query: Vec<u8>,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl HttpRequest {
    /// Every value of the header `name`, in order.
    fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The header `name`, its values joined as one.
    fn header(&self, name: &str) -> Option<Vec<u8>> {
        let values: Vec<&[u8]> = self.values(name).collect();
        (!values.is_empty()).then(|| values.join(separator(name)))
    }
}

/// What joins the values of a header given more than once (RFC 3875 §4.1.18): `; ` between
/// Cookie headers (RFC 9113 §8.2.3), `, ` between others (RFC 9110 §5.3).
fn separator(header: &str) -> &'static [u8] {
    if header.eq_ignore_ascii_case("Cookie") { b"; " } else { b", " }
}

/// Why a request gets no page: the demo answers it itself, or there is nobody to answer.
enum Refusal {
    /// The connection closed or stayed silent before a request began.
    Nothing,
    /// An HTTP status line's status and a sentence for the body.
    Answer(&'static str, String),
}

fn bad_request(why: impl Into<String>) -> Refusal {
    Refusal::Answer("400 Bad Request", why.into())
}

/// The request head's lines, as bytes, within `MAX_LINE` each and `MAX_HEAD` in all.
struct HeadReader<'a, R> {
    reader: &'a mut R,
    used: usize,
}

impl<R: BufRead> HeadReader<'_, R> {
    /// The next line without its ending (CRLF, or a bare LF); `None` when the connection closed
    /// or went silent before the request's first byte.
    fn line(&mut self) -> Result<Option<Vec<u8>>, Refusal> {
        let room = MAX_LINE.min(MAX_HEAD - self.used);
        let mut line = Vec::new();
        let read = self.reader.by_ref().take(room as u64).read_until(b'\n', &mut line);
        let nothing_yet = self.used == 0 && line.is_empty();
        self.used += line.len();
        match read {
            Err(_) if nothing_yet => return Ok(None),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(Refusal::Answer(
                    "408 Request Timeout",
                    format!("the request head stopped arriving for {} seconds", TIMEOUT.as_secs()),
                ));
            }
            Err(e) => return Err(bad_request(format!("the request head could not be read: {e}"))),
            Ok(_) if nothing_yet => return Ok(None),
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') {
            return Err(if line.len() < room {
                bad_request("the request head ended before its blank line")
            } else if room == MAX_LINE {
                bad_request(format!(
                    "a line of the request head is longer than {} KiB (the request line with \
                     its query, or one header)",
                    MAX_LINE >> 10
                ))
            } else {
                bad_request(format!("the request head is larger than {} KiB", MAX_HEAD >> 10))
            });
        }
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        Ok(Some(line))
    }
}

/// Reads one request: its head as bytes, then exactly `Content-Length` bytes of body.
fn read_request(
    reader: &mut BufReader<&TcpStream>,
    stream: &TcpStream,
) -> Result<HttpRequest, Refusal> {
    let mut head = HeadReader { reader, used: 0 };
    // A client may send empty lines before the request line (RFC 9112 §2.2).
    let mut first = head.line()?.ok_or(Refusal::Nothing)?;
    for _ in 0..4 {
        if !first.is_empty() {
            break;
        }
        first = head.line()?.ok_or(Refusal::Nothing)?;
    }
    let (method, target, version) = request_line(&first).ok_or_else(|| {
        bad_request(
            "a malformed request line: the demo takes `METHOD /path[?query] HTTP/1.x`, \
             separated by single spaces, with no control characters",
        )
    })?;
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (target[..q].to_vec(), target[q + 1..].to_vec()),
        None => (target.to_vec(), Vec::new()),
    };
    let mut headers = Vec::new();
    loop {
        let line = head.line()?.ok_or_else(|| bad_request("the request head ended early"))?;
        if line.is_empty() {
            break;
        }
        headers.push(header_line(&line)?);
    }
    let mut request = HttpRequest { method, path, query, headers, body: Vec::new() };

    if request.values("Transfer-Encoding").next().is_some() {
        return Err(Refusal::Answer(
            "411 Length Required",
            "the demo reads a body sent with Content-Length only, not with Transfer-Encoding"
                .into(),
        ));
    }
    let length = content_length(&request)?;
    if length > MAX_BODY {
        return Err(Refusal::Answer(
            "413 Content Too Large",
            format!(
                "the demo takes bodies up to {} MiB (the program itself refuses more than \
                 64 KiB)",
                MAX_BODY >> 20
            ),
        ));
    }
    if length > 0 {
        let expects_continue =
            request.values("Expect").any(|v| v.eq_ignore_ascii_case(b"100-continue"))
                && version == "HTTP/1.1";
        if expects_continue {
            let mut stream = stream;
            let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let read = head.reader.by_ref().take(length).read_to_end(&mut request.body);
        match read {
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(Refusal::Answer(
                    "408 Request Timeout",
                    format!(
                        "the body stopped arriving for {} seconds ({} of {length} bytes read)",
                        TIMEOUT.as_secs(),
                        request.body.len()
                    ),
                ));
            }
            Err(e) => return Err(bad_request(format!("the body could not be read: {e}"))),
            Ok(_) if (request.body.len() as u64) < length => {
                return Err(bad_request(format!(
                    "the body is shorter than its Content-Length ({} of {length} bytes)",
                    request.body.len()
                )));
            }
            Ok(_) => {}
        }
    }
    Ok(request)
}

/// The body's length: a number, the same in every Content-Length header; 0 without one.
fn content_length(request: &HttpRequest) -> Result<u64, Refusal> {
    let mut lengths = request.values("Content-Length");
    let Some(first) = lengths.next() else { return Ok(0) };
    let number = std::str::from_utf8(first)
        .ok()
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()));
    let Some(number) = number else {
        return Err(bad_request("Content-Length is not a number"));
    };
    if lengths.any(|other| other != first) {
        return Err(bad_request("the request has two different Content-Length headers"));
    }
    // A number too large for u64 is certainly over the cap.
    Ok(number.parse().unwrap_or(u64::MAX))
}

/// `METHOD SP /target SP HTTP/1.x`: the method, the target (origin-form, any bytes but
/// controls and spaces) and the version.
fn request_line(line: &[u8]) -> Option<(String, &[u8], &'static str)> {
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || method.is_empty() || !method.iter().copied().all(is_tchar) {
        return None;
    }
    if target.first() != Some(&b'/') || target.iter().any(|b| b.is_ascii_control()) {
        return None;
    }
    let version = match version {
        b"HTTP/1.1" => "HTTP/1.1",
        b"HTTP/1.0" => "HTTP/1.0",
        _ => return None,
    };
    Some((String::from_utf8_lossy(method).into_owned(), target, version))
}

/// `name: value`: a token, a colon, the value with the spaces around it removed.
fn header_line(line: &[u8]) -> Result<(String, Vec<u8>), Refusal> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(bad_request("a header line starts with a space (obsolete line folding)"));
    }
    let colon = line.iter().position(|&b| b == b':');
    let Some(colon) = colon.filter(|&c| c > 0 && line[..c].iter().copied().all(is_tchar)) else {
        return Err(bad_request("a malformed header line: the demo takes `Name: value`"));
    };
    let is_space = |b: &u8| matches!(b, b' ' | b'\t');
    let value = &line[colon + 1..];
    let start = value.iter().position(|b| !is_space(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !is_space(b)).map_or(start, |e| e + 1);
    let value = &value[start..end];
    // A NUL cannot go into an environment variable, nor any control into a field (RFC 9110
    // §5.5); bytes over 0x7f can, and go to the program as they are.
    if value.iter().any(|&b| b != b'\t' && b.is_ascii_control()) {
        return Err(bad_request("a header value holds a control character"));
    }
    // A token is ASCII.
    Ok((String::from_utf8_lossy(&line[..colon]).into_owned(), value.to_vec()))
}

/// A character of an HTTP token (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `config::DEMO` in a fresh directory of its own under the system's temporary directory.
fn write_demo_conf() -> io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for n in 0.. {
        let dir = base.join(format!("dacs-signout-demo-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                let path = dir.join("dacs.conf");
                std::fs::write(&path, DEMO)?;
                return Ok(path);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    unreachable!("an unbounded range")
}

fn handle(stream: &TcpStream, port: u16, conf: &Path) -> io::Result<()> {
    stream.set_read_timeout(Some(TIMEOUT))?;
    let mut reader = BufReader::new(stream);
    let response = match read_request(&mut reader, stream) {
        Ok(request) => match request.path.as_slice() {
            b"/" => portal(&request, port),
            b"/signin" => signin(&request),
            b"/cgi-bin/dacs_signout" => cgi(&request, port, conf),
            _ => plain("404 Not Found", "the demo serves /, /signin and /cgi-bin/dacs_signout"),
        },
        Err(Refusal::Nothing) => return Ok(()),
        Err(Refusal::Answer(status, why)) => plain(status, &format!("{status}: {why}")),
    };
    let mut writer = stream;
    writer.write_all(&response)?;
    // Close gracefully: say we are done, then read what the client still sends (a refused
    // body, the rest of an oversized head) so that closing does not reset the connection
    // before the client has read the answer.
    let _ = stream.shutdown(Shutdown::Write);
    let _ = io::copy(&mut reader.take(MAX_DRAIN), &mut io::sink());
    Ok(())
}

/// The demo's own answer: `status` and a sentence saying why, as plain text.
fn plain(status: &str, text: &str) -> Vec<u8> {
    http(
        status,
        &["Content-Type: text/plain; charset=utf-8".into()],
        format!("{text}\n").as_bytes(),
    )
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
    let cookies = request.header("Cookie").unwrap_or_default();
    let names: Vec<String> = crate::credentials::header::names(&cookies)
        .map(|n| format!("<li><code>{}</code></li>", escape(&String::from_utf8_lossy(n))))
        .collect();
    let signin: String = USERS
        .iter()
        .map(|u| {
            format!("<a class=\"signin\" href=\"/signin?user={0}\">Sign in as {0}</a> ", escape(u))
        })
        .collect();
    let notice = signed_out_notice(&request.query);
    let signout = "/cgi-bin/dacs_signout";
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Demo portal</title></head><body>\n\
         <h1>Demo portal (federation DEMO)</h1>\n{notice}<p>This page runs on http://127.0.0.1:{port}/ and links to the real \
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

/// The portal is the signout handler of "Sign out (and come back here)": the program sends
/// the browser back with `DACS_VERSION`, `DACS_FEDERATION` and `DACS_JURISDICTION`. Their
/// presence means a signout happened; say so.
fn signed_out_notice(query: &[u8]) -> String {
    let (mut federation, mut jurisdiction) = (None, None);
    for (name, value) in url::form_urlencoded::parse(query) {
        match name.as_ref() {
            "DACS_FEDERATION" => federation = Some(value),
            "DACS_JURISDICTION" => jurisdiction = Some(value),
            _ => {}
        }
    }
    let Some(federation) = federation else { return String::new() };
    let jurisdiction =
        jurisdiction.map(|j| format!(" (jurisdiction {})", escape(&j))).unwrap_or_default();
    format!(
        "<p id=\"notice\" role=\"status\"><strong>Signed out of federation {}{jurisdiction} \u{2014} \
         the credentials listed below are what your browser still sends.</strong></p>\n",
        escape(&federation)
    )
}

fn signin(request: &HttpRequest) -> Vec<u8> {
    let user = request.query.strip_prefix(b"user=").unwrap_or_default();
    let user = percent_encoding::percent_decode(user).decode_utf8_lossy();
    if !USERS.contains(&user.as_ref()) {
        return plain("400 Bad Request", "unknown demo user");
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

/// The CGI variable for a header, as Apache and nginx name it (RFC 3875 §4.1.18), or `None`
/// for one a real server does not pass: `Authorization` (Apache withholds it), `Proxy`
/// (httpoxy), a name with anything but letters, digits and `-` (both servers drop them), and
/// the two the body's variables stand for.
fn cgi_variable(header: &str) -> Option<String> {
    let withheld = ["Authorization", "Proxy", "Content-Length", "Content-Type"];
    if withheld.iter().any(|w| header.eq_ignore_ascii_case(w))
        || !header.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return None;
    }
    Some(format!("HTTP_{}", header.to_ascii_uppercase().replace('-', "_")))
}

/// Runs this executable as a CGI child (RFC 3875) and turns its output into an HTTP response.
/// The query and the headers go as the bytes the client sent (an environment variable may
/// hold any byte but NUL): the program decides what it accepts.
fn cgi(request: &HttpRequest, port: u16, conf: &Path) -> Vec<u8> {
    let mut command = match std::env::current_exe() {
        Ok(exe) => Command::new(exe),
        Err(e) => return failed("cannot find its own executable", &e),
    };
    command.env_clear().stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit());
    let vars = [
        ("GATEWAY_INTERFACE", "CGI/1.1".to_owned()),
        ("SERVER_PROTOCOL", "HTTP/1.1".to_owned()),
        ("SERVER_NAME", "127.0.0.1".to_owned()),
        ("SERVER_PORT", port.to_string()),
        ("SCRIPT_NAME", "/cgi-bin/dacs_signout".to_owned()),
        ("REMOTE_ADDR", "127.0.0.1".to_owned()),
        ("REQUEST_METHOD", request.method.clone()),
        ("CONTENT_LENGTH", request.body.len().to_string()),
    ];
    command.envs(vars);
    command.env("QUERY_STRING", OsStr::from_bytes(&request.query));
    if let Some(value) = request.header("Content-Type") {
        command.env("CONTENT_TYPE", OsStr::from_bytes(&value));
    }
    // Every header, as a real server passes them: among them Cookie, User-Agent, the Fetch
    // Metadata (Sec-Fetch-Site, -Mode, -Dest, -User) and the prefetch markers (Sec-Purpose,
    // Purpose, X-Moz, X-Purpose) that the program reads. No REMOTE_USER: the demo
    // authenticates nobody.
    let mut vars: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (name, value) in &request.headers {
        let Some(var) = cgi_variable(name) else { continue };
        let joined = vars.entry(var).or_default();
        if !joined.is_empty() {
            joined.extend_from_slice(separator(name));
        }
        joined.extend_from_slice(value);
    }
    for (var, value) in &vars {
        command.env(var, OsStr::from_bytes(value));
    }
    command.env("DACS_SIGNOUT_CONF", conf);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return failed("cannot start the program", &e),
    };
    let stdin = child.stdin.take();
    // The body goes in from a thread of its own while the output is read: a program that
    // answers without reading all of it (a 413, a 415) closes its stdin, and that is not an
    // error of the demo's.
    let output = std::thread::scope(|scope| {
        if let Some(mut stdin) = stdin {
            scope.spawn(move || {
                let _ = stdin.write_all(&request.body);
            });
        }
        child.wait_with_output()
    });
    let text = match output {
        Ok(output) => output.stdout,
        Err(e) => return failed("cannot read the program's output", &e),
    };
    let Some(split) = text.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4) else {
        return plain(
            "502 Bad Gateway",
            "502 Bad Gateway: the program's output has no CGI header (see the demo's stderr)",
        );
    };
    let (head, body) = text.split_at(split);
    let mut status = "200 OK".to_owned();
    let mut headers = Vec::new();
    for line in String::from_utf8_lossy(head).lines().filter(|l| !l.is_empty()) {
        match line.strip_prefix("Status: ") {
            Some(s) => status = s.to_owned(),
            None => headers.push(line.to_owned()),
        }
    }
    http(&status, &headers, body)
}

/// A 500 for a CGI child that could not be run.
fn failed(what: &str, error: &io::Error) -> Vec<u8> {
    eprintln!("dacs_signout demo: {what}: {error}");
    plain(
        "500 Internal Server Error",
        &format!("500 Internal Server Error: the demo {what}: {error}"),
    )
}
