//! A FastCGI client, as a web server is one: what the guard's tests send it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

fn record(kind: u8, id: u16, content: &[u8]) -> Vec<u8> {
    let mut out = vec![1, kind];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(content.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(content);
    out
}

fn pairs(params: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in params {
        for length in [name.len(), value.len()] {
            if length < 0x80 {
                out.push(length as u8);
            } else {
                out.extend_from_slice(&((length as u32) | 0x8000_0000).to_be_bytes());
            }
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

pub const RESPONDER: u16 = 1;
pub const AUTHORIZER: u16 = 2;

/// The guard's answer: its CGI-style status, headers and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The cookie names expired, in order.
    pub fn expired(&self) -> Vec<&str> {
        self.all("Set-Cookie").into_iter().map(|v| v.split_once('=').unwrap().0).collect()
    }
}

/// One request, as Apache's `mod_authnz_fcgi` sends an authorizer's (no STDIN) or a responder's
/// (an empty STDIN), on a connection of its own.
#[track_caller]
pub fn ask(socket: &Path, role: u16, params: &[(&str, &str)]) -> Answer {
    let mut stream = UnixStream::connect(socket).expect("the guard listens");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut request = record(1, 1, &[(role >> 8) as u8, role as u8, 0, 0, 0, 0, 0, 0]);
    let body = pairs(params);
    for chunk in body.chunks(60_000) {
        request.extend_from_slice(&record(4, 1, chunk));
    }
    request.extend_from_slice(&record(4, 1, &[]));
    if role == RESPONDER {
        request.extend_from_slice(&record(5, 1, &[]));
    }
    stream.write_all(&request).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse(&raw)
}

/// The STDOUT records of an answer, until END_REQUEST.
#[track_caller]
pub fn parse(raw: &[u8]) -> Answer {
    let mut stdout = Vec::new();
    let mut rest = raw;
    let mut ended = false;
    while rest.len() >= 8 {
        let kind = rest[1];
        let length = usize::from(u16::from_be_bytes([rest[4], rest[5]]));
        let padding = usize::from(rest[6]);
        let content = &rest[8..8 + length];
        match kind {
            6 => stdout.extend_from_slice(content),
            3 => ended = true,
            _ => {}
        }
        rest = &rest[8 + length + padding..];
    }
    assert!(ended, "no END_REQUEST in {raw:?}");
    let text = String::from_utf8(stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a header block");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().strip_prefix("Status: ").unwrap()[..3].parse().unwrap();
    let headers = lines
        .map(|l| l.split_once(": ").map(|(n, v)| (n.to_owned(), v.to_owned())).unwrap())
        .collect();
    Answer { status, headers, body: body.to_owned() }
}
