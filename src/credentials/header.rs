//! The `Cookie` request header, read as bytes.

/// The names of the `name=value` pairs of a `Cookie` header, trimmed, in order. Segments
/// without `=` and empty names are skipped; values are never looked at.
///
/// ```
/// use dacs_signout::credentials::header::names;
/// let got: Vec<&[u8]> = names(b"a=1; DACS:F::J:u=\"q;x\"; ;junk; =v;b=").collect();
/// assert_eq!(got, [&b"a"[..], b"DACS:F::J:u", b"b"]);
/// let joined: Vec<&[u8]> = names(b"a=1; DACS:F::J:u=x, DACS:F::J:v=y").collect();
/// assert_eq!(joined, [&b"a"[..], b"DACS:F::J:u", b"DACS:F::J:v"]);
/// ```
///
/// A quoted value holding `;` splits as browsers and servers split it; the stray tail (`x"`
/// above) has no `=` and is skipped like any other malformed pair. A `,` separates pairs
/// too: a server or proxy that received two `Cookie` header lines joins them with `", "`
/// (RFC 9110 §5.3), and no credential name holds a comma.
pub fn names(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    // The same as `header.split(|&b| b == b';' || b == b',')` and a search for `=` in each pair, with
    // memchr: a header is mostly cookie values (up to 64 KiB of them), which are skipped with
    // one vectorised search each instead of a byte-at-a-time loop.
    let mut rest = Some(header);
    std::iter::from_fn(move || {
        loop {
            let text = rest?;
            let (pair, tail) = match memchr::memchr2(b';', b',', text) {
                Some(end) => (&text[..end], Some(&text[end + 1..])),
                None => (text, None),
            };
            rest = tail;
            let Some(eq) = memchr::memchr(b'=', pair) else { continue };
            let name = pair[..eq].trim_ascii();
            if !name.is_empty() {
                return Some(name);
            }
        }
    })
}

/// The `name=value` pairs of a `Cookie` header, as [`names`] splits them, with their values
/// (trimmed): what a fingerprint is made of.
///
/// ```
/// use dacs_signout::credentials::header::pairs;
/// let got: Vec<(&[u8], &[u8])> = pairs(b"a=1; DACS:F::J:u= v ;junk").collect();
/// assert_eq!(got, [(&b"a"[..], &b"1"[..]), (b"DACS:F::J:u", b"v")]);
/// ```
pub fn pairs(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    header.split(|&b| b == b';' || b == b',').filter_map(|pair| {
        let eq = memchr::memchr(b'=', pair)?;
        let name = pair[..eq].trim_ascii();
        (!name.is_empty()).then(|| (name, pair[eq + 1..].trim_ascii()))
    })
}
