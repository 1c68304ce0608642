//! The demo's HTTP/1.1: one request read whole within limits, and answers written.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The longest line of a request head (the request line or one header). Linux refuses to start
/// a program with an environment string over 128 KiB (`MAX_ARG_STRLEN`), so any line under this
/// fits in one CGI variable; it is well over the program's own 64 KiB Cookie limit.
const MAX_LINE: usize = 120 * 1024;
/// The largest request head, all lines together.
const MAX_HEAD: usize = 256 * 1024;
/// The largest body the demo takes; the program itself refuses more than 64 KiB (a 413).
const MAX_BODY: u64 = 1 << 20;
/// How long a client may take to send each part of its request.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A request as received: the target and header values are bytes, as the client sent them.
pub struct HttpRequest {
    pub method: String,
    pub path: Vec<u8>,
    pub query: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// Every value of the header `name`, in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// The header `name`, its values joined as one.
    pub fn header(&self, name: &str) -> Option<Vec<u8>> {
        let values: Vec<&[u8]> = self.values(name).collect();
        (!values.is_empty()).then(|| values.join(separator(name)))
    }
}

/// What joins the values of a header given more than once (RFC 3875 §4.1.18): `; ` between
/// Cookie headers (RFC 9113 §8.2.3), `, ` between others (RFC 9110 §5.3).
pub fn separator(header: &str) -> &'static [u8] {
    if header.eq_ignore_ascii_case("Cookie") { b"; " } else { b", " }
}

/// Why a request gets no page: the demo answers it itself, or there is nobody to answer.
pub enum Refusal {
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
pub fn read_request(
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

/// The demo's own answer: `status` and a sentence saying why, as plain text.
pub fn plain(status: &str, text: &str) -> Vec<u8> {
    http(
        status,
        &["Content-Type: text/plain; charset=utf-8".into()],
        format!("{text}\n").as_bytes(),
    )
}

pub fn http(status: &str, headers: &[String], body: &[u8]) -> Vec<u8> {
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
