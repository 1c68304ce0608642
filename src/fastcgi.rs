//! FastCGI 1.0 records (the application side): what a web server sends the guard, and what the
//! guard answers. Written here rather than taken from a crate: the one crate that serves the
//! authorizer role (`tokio-fastcgi`) brings an async runtime into a synchronous program and has
//! no limits; the protocol the guard needs is a few record types (README, "Dependencies").
//! Pure over buffers: the guard's connection loop does the I/O, and [`Conversation`] decides
//! what each record it reads amounts to.

use std::io::{self, Read};

use crate::cgi::Env;

/// The most `PARAMS` one request may carry (a large cookie jar fits).
pub const MAX_PARAMS: usize = 256 * 1024;
/// The most `STDIN` read and dropped (a responder's request body: Apache's error document
/// passes the original POST body on).
pub const MAX_STDIN: usize = 16 * 1024 * 1024;

pub const VERSION: u8 = 1;

pub const BEGIN_REQUEST: u8 = 1;
pub const ABORT_REQUEST: u8 = 2;
pub const END_REQUEST: u8 = 3;
pub const PARAMS: u8 = 4;
pub const STDIN: u8 = 5;
pub const STDOUT: u8 = 6;
pub const GET_VALUES: u8 = 9;
pub const GET_VALUES_RESULT: u8 = 10;
pub const UNKNOWN_TYPE: u8 = 11;

pub const RESPONDER: u16 = 1;
pub const AUTHORIZER: u16 = 2;

pub const FLAG_KEEP_CONN: u8 = 1;

pub const REQUEST_COMPLETE: u8 = 0;
pub const CANT_MPX_CONN: u8 = 1;
pub const UNKNOWN_ROLE: u8 = 3;

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub kind: u8,
    pub id: u16,
    pub content: Vec<u8>,
}

/// Reads one record; `Ok(None)` at a clean end of stream (between records).
pub fn read_record(input: &mut dyn Read) -> io::Result<Option<Record>> {
    let mut header = [0u8; 8];
    let mut got = 0;
    while got < header.len() {
        match input.read(&mut header[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "a record cut short")),
            n => got += n,
        }
    }
    if header[0] != VERSION {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("FastCGI version {}", header[0]),
        ));
    }
    let id = u16::from_be_bytes([header[2], header[3]]);
    let length = usize::from(u16::from_be_bytes([header[4], header[5]]));
    let padding = usize::from(header[6]);
    let mut content = vec![0; length + padding];
    input.read_exact(&mut content)?;
    content.truncate(length);
    Ok(Some(Record { kind: header[1], id, content }))
}

/// A record's bytes (content at most 65,535 bytes; padded to a multiple of 8).
pub fn record(kind: u8, id: u16, content: &[u8]) -> Vec<u8> {
    debug_assert!(content.len() <= usize::from(u16::MAX));
    let padding = (8 - content.len() % 8) % 8;
    let mut out = Vec::with_capacity(8 + content.len() + padding);
    out.extend_from_slice(&[VERSION, kind]);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(content.len() as u16).to_be_bytes());
    out.extend_from_slice(&[padding as u8, 0]);
    out.extend_from_slice(content);
    out.resize(out.len() + padding, 0);
    out
}

/// `BEGIN_REQUEST`'s content: the role and the flags.
pub fn begin(content: &[u8]) -> Option<(u16, u8)> {
    let role = u16::from_be_bytes([*content.first()?, *content.get(1)?]);
    Some((role, *content.get(2)?))
}

/// The whole answer to request `id`: the CGI-style `response` as `STDOUT` records, the empty
/// `STDOUT` that ends the stream, and `END_REQUEST`.
pub fn answer(id: u16, response: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(response.len() + 64);
    for chunk in response.chunks(usize::from(u16::MAX) & !7) {
        out.extend_from_slice(&record(STDOUT, id, chunk));
    }
    out.extend_from_slice(&record(STDOUT, id, &[]));
    out.extend_from_slice(&end_request(id, 0, REQUEST_COMPLETE));
    out
}

pub fn end_request(id: u16, app_status: u32, protocol_status: u8) -> Vec<u8> {
    let mut content = app_status.to_be_bytes().to_vec();
    content.extend_from_slice(&[protocol_status, 0, 0, 0]);
    record(END_REQUEST, id, &content)
}

/// Name-value pairs (`PARAMS`, `GET_VALUES`): each length one byte below 128, else four with
/// the high bit set. `None` when the pairs are cut short.
pub fn pairs(mut bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    fn length(bytes: &mut &[u8]) -> Option<usize> {
        let first = *bytes.first()?;
        if first < 0x80 {
            *bytes = &bytes[1..];
            return Some(usize::from(first));
        }
        let four: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
        *bytes = &bytes[4..];
        Some((u32::from_be_bytes(four) & 0x7fff_ffff) as usize)
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let name_length = length(&mut bytes)?;
        let value_length = length(&mut bytes)?;
        let name = bytes.get(..name_length)?.to_vec();
        bytes = &bytes[name_length..];
        let value = bytes.get(..value_length)?.to_vec();
        bytes = &bytes[value_length..];
        out.push((name, value));
    }
    Some(out)
}

/// Encodes name-value pairs (the guard's `GET_VALUES_RESULT`; tests, as a server would).
pub fn encode_pairs(pairs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in pairs {
        for length in [name.len(), value.len()] {
            if length < 0x80 {
                out.push(length as u8);
            } else {
                out.extend_from_slice(&((length as u32) | 0x8000_0000).to_be_bytes());
            }
        }
        out.extend_from_slice(name);
        out.extend_from_slice(value);
    }
    out
}

/// A complete request: its id, role and parameters; whether the connection stays open after.
#[derive(Debug)]
pub struct Request {
    pub id: u16,
    pub role: u16,
    pub keep: bool,
    pub env: Env,
}

/// What one record amounts to on a connection.
#[derive(Debug)]
pub enum Step {
    /// Nothing yet.
    Wait,
    /// Bytes to send back at once (management answers, refusals of a role or a second
    /// request).
    Reply(Vec<u8>),
    /// A request is complete: answer it, and end the connection unless `keep`.
    Serve(Request),
    /// `ABORT_REQUEST`: its end is sent; `close` when the connection ends with it.
    Aborted { reply: Vec<u8>, close: bool },
}

/// The request being read on a connection.
struct Active {
    id: u16,
    role: u16,
    keep: bool,
    params: Vec<u8>,
    /// The parameters are complete; a responder then waits for the end of `STDIN`.
    env: Option<Env>,
    stdin: usize,
}

fn invalid(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// One connection's requests, one after another (none of the servers multiplexes), each
/// complete as soon as it can be answered (an authorizer right after its parameters: Apache
/// sends it no `STDIN`). An `Err` ends the connection: the peer speaks no FastCGI, or goes
/// over a limit.
#[derive(Default)]
pub struct Conversation {
    active: Option<Active>,
}

impl Conversation {
    pub fn take(&mut self, record: Record) -> io::Result<Step> {
        let Record { kind, id, content } = record;
        match kind {
            GET_VALUES => {
                let values = encode_pairs(&[
                    (b"FCGI_MAX_CONNS", b"64"),
                    (b"FCGI_MAX_REQS", b"64"),
                    (b"FCGI_MPXS_CONNS", b"0"),
                ]);
                Ok(Step::Reply(self::record(GET_VALUES_RESULT, 0, &values)))
            }
            BEGIN_REQUEST => {
                if self.active.is_some() {
                    return Ok(Step::Reply(end_request(id, 0, CANT_MPX_CONN)));
                }
                let (role, flags) =
                    begin(&content).ok_or_else(|| invalid("a short BEGIN_REQUEST"))?;
                if role != RESPONDER && role != AUTHORIZER {
                    return Ok(Step::Reply(end_request(id, 0, UNKNOWN_ROLE)));
                }
                let keep = flags & FLAG_KEEP_CONN != 0;
                self.active =
                    Some(Active { id, role, keep, params: Vec::new(), env: None, stdin: 0 });
                Ok(Step::Wait)
            }
            ABORT_REQUEST if self.active.as_ref().is_some_and(|a| a.id == id) => {
                let keep = self.active.take().is_some_and(|a| a.keep);
                Ok(Step::Aborted { reply: end_request(id, 0, REQUEST_COMPLETE), close: !keep })
            }
            PARAMS | STDIN => {
                let Some(request) = self.active.as_mut().filter(|a| a.id == id) else {
                    return Ok(Step::Wait);
                };
                let ready = if kind == PARAMS && request.env.is_none() {
                    if content.is_empty() {
                        let pairs =
                            pairs(&request.params).ok_or_else(|| invalid("malformed PARAMS"))?;
                        request.env = Some(Env::from_byte_pairs(pairs));
                        request.role == AUTHORIZER
                    } else {
                        if request.params.len() + content.len() > MAX_PARAMS {
                            return Err(invalid("PARAMS over 256 KiB"));
                        }
                        request.params.extend_from_slice(&content);
                        false
                    }
                } else if kind == STDIN && request.env.is_some() {
                    request.stdin += content.len();
                    if request.stdin > MAX_STDIN {
                        return Err(invalid("STDIN over 16 MiB"));
                    }
                    content.is_empty() && request.role == RESPONDER
                } else {
                    false
                };
                if !ready {
                    return Ok(Step::Wait);
                }
                let Active { id, role, keep, env, .. } = self.active.take().expect("being read");
                let env = env.expect("complete parameters");
                Ok(Step::Serve(Request { id, role, keep, env }))
            }
            // A record for a request this connection is not serving, or a management record
            // this program does not know.
            other if id == 0 => {
                let mut content = [0u8; 8];
                content[0] = other;
                Ok(Step::Reply(self::record(UNKNOWN_TYPE, 0, &content)))
            }
            _ => Ok(Step::Wait),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_padding() {
        let bytes = record(PARAMS, 7, b"hello");
        assert_eq!(bytes.len(), 16);
        let back = read_record(&mut &bytes[..]).unwrap().unwrap();
        assert_eq!(back, Record { kind: PARAMS, id: 7, content: b"hello".to_vec() });
        assert_eq!(read_record(&mut &b""[..]).unwrap(), None);
        assert!(read_record(&mut &bytes[..5]).is_err(), "a header cut short");
        assert!(read_record(&mut &bytes[..10]).is_err(), "content cut short");
        let mut bad = bytes.clone();
        bad[0] = 2;
        assert!(read_record(&mut &bad[..]).is_err(), "another version");
    }

    #[test]
    fn pairs_both_length_forms() {
        let long = vec![b'v'; 300];
        let encoded = encode_pairs(&[(b"HTTP_COOKIE", &long), (b"A", b"")]);
        let decoded = pairs(&encoded).unwrap();
        assert_eq!(decoded, [(b"HTTP_COOKIE".to_vec(), long), (b"A".to_vec(), vec![])]);
        assert_eq!(pairs(&encoded[..encoded.len() - 1]), None, "a name cut short");
        assert_eq!(pairs(&[0x80, 0, 0]), None);
        assert_eq!(pairs(&[5, 0, b'a']), None);
    }

    #[test]
    fn an_answer_is_stdout_then_its_end() {
        let big = vec![b'x'; 70_000];
        let bytes = answer(1, &big);
        let mut input = &bytes[..];
        let mut stdout = Vec::new();
        let mut kinds = Vec::new();
        while let Some(r) = read_record(&mut input).unwrap() {
            kinds.push(r.kind);
            if r.kind == STDOUT {
                stdout.extend_from_slice(&r.content);
            }
        }
        assert_eq!(stdout, big);
        assert_eq!(kinds, [STDOUT, STDOUT, STDOUT, END_REQUEST]);
        assert_eq!(begin(&[0, 2, 1, 0, 0, 0, 0, 0]), Some((AUTHORIZER, FLAG_KEEP_CONN)));
    }
}
