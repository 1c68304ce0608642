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
        let _ = io::copy(&mut body.take(MAX_DISCARD), &mut io::sink());
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
