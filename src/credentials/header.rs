//! The `Cookie` request header, read as bytes.

/// The names of the `name=value` pairs of a `Cookie` header, trimmed, in order. Segments
/// without `=` and empty names are skipped; values are never looked at.
///
/// ```
/// use dacs_signout::credentials::header::names;
/// let got: Vec<&[u8]> = names(b"a=1; DACS:F::J:u=\"q;x\"; ;junk; =v;b=").collect();
/// assert_eq!(got, [&b"a"[..], b"DACS:F::J:u", b"b"]);
/// ```
///
/// A quoted value holding `;` splits as browsers and servers split it; the stray tail (`x"`
/// above) has no `=` and is skipped like any other malformed pair.
pub fn names(header: &[u8]) -> impl Iterator<Item = &[u8]> {
    header.split(|&b| b == b';').filter_map(|pair| {
        let eq = pair.iter().position(|&b| b == b'=')?;
        let name = pair[..eq].trim_ascii();
        (!name.is_empty()).then_some(name)
    })
}
