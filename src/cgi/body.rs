//! A request body: exactly `CONTENT_LENGTH` bytes, at most 64 KiB.

use std::io::{self, Read};

use super::env::Env;
use crate::error::Error;

/// The largest request body read (§2).
pub const MAX_BODY: usize = 64 * 1024;
/// How much of an oversized body is read and dropped before the 413.
const MAX_DISCARD: u64 = 16 * 1024 * 1024;

/// The body, exactly `CONTENT_LENGTH` bytes (none when it is absent or empty); over
/// [`MAX_BODY`] a 413, shorter than announced a 400.
pub fn read_body(env: &Env, body: &mut dyn Read) -> Result<Vec<u8>, Error> {
    let length = match env.text("CONTENT_LENGTH")?.map(str::trim) {
        None | Some("") => return Ok(Vec::new()),
        Some(text) if text.bytes().all(|b| b.is_ascii_digit()) => text,
        Some(_) => return Err(Error::bad_request("CONTENT_LENGTH is not a number")),
    };
    // Any number too large for usize is certainly over the cap.
    let length = length.parse::<usize>().unwrap_or(usize::MAX);
    if length > MAX_BODY {
        // Read (and drop) what the client sends before answering: a CGI program that exits
        // with its stdin unread makes Apache's mod_cgid drop the connection ("Empty reply from
        // server") instead of sending the 413.
        let _ = io::copy(&mut body.take((length as u64).min(MAX_DISCARD)), &mut io::sink());
        return Err(Error::too_large("the request body is larger than 64 KiB"));
    }
    let mut buffer = Vec::with_capacity(length);
    body.take(length as u64).read_to_end(&mut buffer).map_err(|e| {
        Error::bad_request("the request body could not be read").with_detail(e.to_string())
    })?;
    if buffer.len() < length {
        return Err(Error::bad_request("the request body is shorter than CONTENT_LENGTH")
            .with_detail(format!("read {} of {} bytes", buffer.len(), length)));
    }
    Ok(buffer)
}

/// A CGI program's stdin that counts what was read of it, so that the rest of the body can be
/// read and dropped before the answer: a program that answers early (a 401 before the body is
/// looked at, a 405) and exits with its stdin unread makes Apache's mod_cgid reset the
/// connection (Linux resets a unix socket closed with unread data) instead of sending the
/// answer.
pub struct Stdin<'a> {
    inner: &'a mut dyn Read,
    read: u64,
}

impl<'a> Stdin<'a> {
    pub fn new(inner: &'a mut dyn Read) -> Stdin<'a> {
        Stdin { inner, read: 0 }
    }

    /// Reads and drops what is left of the `CONTENT_LENGTH` bytes announced: never more than
    /// announced (a server that keeps stdin open does not hang it), and no more than 16 MiB
    /// read in all. A length that is not all digits announces nothing.
    pub fn discard_rest(&mut self, env: &Env) {
        let announced = env
            .soft("CONTENT_LENGTH")
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .map_or(0, |t| t.parse::<u64>().unwrap_or(u64::MAX));
        let left = announced.min(MAX_DISCARD).saturating_sub(self.read);
        if left > 0 {
            let _ = io::copy(&mut (&mut *self.inner).take(left), &mut io::sink());
        }
    }
}

impl Read for Stdin<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(length: &str) -> Env {
        Env::from_pairs([("CONTENT_LENGTH", length)])
    }

    #[test]
    fn the_rest_of_the_body_is_read_and_no_more() {
        let data = b"0123456789abcdef".to_vec();
        // Nothing read: the ten bytes announced are dropped, the rest stays.
        let mut source = &data[..];
        Stdin::new(&mut source).discard_rest(&env("10"));
        assert_eq!(source, b"abcdef");
        // Four read by the program: six more dropped.
        let mut source = &data[..];
        let mut stdin = Stdin::new(&mut source);
        let mut four = [0u8; 4];
        stdin.read_exact(&mut four).unwrap();
        stdin.discard_rest(&env("10"));
        assert_eq!(source, b"abcdef");
        // All read, none announced, or a length that is no number: nothing more is read.
        for length in ["4", "", "x", "+10", "-1"] {
            let mut source = &data[..];
            let mut stdin = Stdin::new(&mut source);
            stdin.read_exact(&mut four).unwrap();
            stdin.discard_rest(&env(length));
            assert_eq!(source, &data[4..], "{length:?}");
        }
        // Oversized: `read_body` drops at most what was announced, and `discard_rest` then
        // nothing more than the 16 MiB cap in all.
        let big = vec![b'x'; (MAX_BODY + 100) * 2];
        let mut source = &big[..];
        let mut stdin = Stdin::new(&mut source);
        let announced = (MAX_BODY + 100).to_string();
        assert!(read_body(&env(&announced), &mut stdin).is_err());
        stdin.discard_rest(&env(&announced));
        assert_eq!(source.len(), MAX_BODY + 100, "exactly the announced length was read");
        let mut source = &big[..];
        let mut stdin = Stdin::new(&mut source);
        stdin.read = MAX_DISCARD - 10;
        stdin.discard_rest(&env(&u64::MAX.to_string()));
        assert_eq!(source.len(), big.len() - 10, "16 MiB read in all");
    }
}
