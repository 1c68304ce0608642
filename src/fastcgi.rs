//! FastCGI 1.0 records (the application side): what a web server sends the guard, and what the
//! guard answers. Written here rather than taken from a crate: the one crate that serves the
//! authorizer role (`tokio-fastcgi`) brings an async runtime into a synchronous program and has
//! no limits; the protocol the guard needs is a few record types (README, "Dependencies").
//! Pure over buffers: the guard's connection loop does the I/O.

use std::io::{self, Read};

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
