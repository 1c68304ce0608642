//! The XML subset of `dacs.conf`: `<Configuration>` holding `<Default>` and
//! `<Jurisdiction uri="...">` sections whose text is directive lines `NAME "value"`.

use quick_xml::Reader;
use quick_xml::events::Event;

use super::ConfigError;

/// Every directive this program interprets (§3); others are listed by `--check-config`.
pub const KNOWN_DIRECTIVES: &[&str] = &[
    "FEDERATION_NAME",
    "FEDERATION_DOMAIN",
    "JURISDICTION_NAME",
    "COOKIE_PATH",
    "COOKIE_NO_DOMAIN",
    "SECURE_MODE",
    "NAME_COMPARE",
    "COOKIE_SYNTAX",
    "SIGNOUT_HANDLER",
    "SIGNOUT_HANDLER_ALLOW",
    "SIGNOUT_CROSS_SITE",
    "CLEAR_SITE_DATA",
    "IDMS_BASE_API_URL",
    "IDMS_API_TOKEN_ENV",
    "RELAY_USERNAME_MAP",
    "RELAY_TIMEOUT_SECS",
    "RELAY_SPOOL_DIR",
    "RELAY_LOG",
    "RELAY_MAX_AGE_SECS",
    "RELAY_IDENTITY",
    "RELAY_MAX_SIGNALS",
    "RELAY_SEND_LOGOUT_AT",
    "RELAY_SPOOL_MAX",
];

/// One `NAME "value"` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    pub value: String,
    pub line: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// `None` for `Default`.
    pub uri: Option<String>,
    pub line: usize,
    pub directives: Vec<Directive>,
}

impl Section {
    /// The last occurrence of a directive: a repeated directive's last value wins.
    pub fn last(&self, name: &str) -> Option<&Directive> {
        self.directives.iter().rev().find(|d| d.name == name)
    }

    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Directive> + 'a {
        self.directives.iter().filter(move |d| d.name == name)
    }
}

/// Line numbers from byte offsets, counted forward only once.
struct Lines<'a> {
    text: &'a str,
    offset: usize,
    line: usize,
}

impl Lines<'_> {
    fn at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        if offset >= self.offset {
            self.line +=
                self.text.as_bytes()[self.offset..offset].iter().filter(|&&b| b == b'\n').count();
        } else {
            self.line = 1 + self.text.as_bytes()[..offset].iter().filter(|&&b| b == b'\n').count();
        }
        self.offset = offset;
        self.line
    }
}

/// The `Default` section and the `Jurisdiction` sections of a configuration text.
pub fn sections(text: &str) -> Result<(Section, Vec<Section>), ConfigError> {
    let mut reader = Reader::from_str(text);
    let mut lines = Lines { text, offset: 0, line: 1 };
    let mut default: Option<Section> = None;
    let mut jurisdictions = Vec::new();
    let mut in_configuration = false;
    let mut seen_configuration = false;
    // The open section, its text so far and the line that text starts on.
    let mut open: Option<(Section, String, usize)> = None;

    loop {
        let start = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| {
            ConfigError::at(
                lines.at(reader.error_position() as usize),
                format!("not well-formed XML: {e}"),
            )
        })?;
        let line = lines.at(start);
        // Inside a section, text, CDATA and entity references are the directive lines.
        if let Some((_, buffer, _)) = open.as_mut() {
            let decoded = match &event {
                Event::Text(t) => {
                    Some(t.decode().map_err(|e| ConfigError::at(line, e.to_string()))?)
                }
                Event::CData(t) => {
                    Some(t.decode().map_err(|e| ConfigError::at(line, e.to_string()))?)
                }
                Event::GeneralRef(r) => {
                    let c = resolve(r)
                        .ok_or_else(|| ConfigError::at(line, "unknown entity reference"))?;
                    buffer.push(c);
                    continue;
                }
                _ => None,
            };
            if let Some(text) = decoded {
                buffer.push_str(&text);
                continue;
            }
        }
        match event {
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) | Event::Comment(_) => {}
            Event::Text(t) => {
                if !t.iter().all(u8::is_ascii_whitespace) {
                    return Err(ConfigError::at(
                        line,
                        "text outside a Default or Jurisdiction section",
                    ));
                }
            }
            Event::CData(_) | Event::GeneralRef(_) => {
                return Err(ConfigError::at(
                    line,
                    "text outside a Default or Jurisdiction section",
                ));
            }
            Event::Start(e) | Event::Empty(e) if open.is_some() => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                return Err(ConfigError::at(
                    line,
                    format!("unexpected element <{name}> inside a section"),
                ));
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                match (in_configuration, e.name().as_ref()) {
                    (false, b"Configuration") if !seen_configuration => {
                        seen_configuration = true;
                        in_configuration = !is_empty;
                    }
                    (true, b"Default") if default.is_none() => {
                        let section = Section { uri: None, line, directives: Vec::new() };
                        if is_empty {
                            default = Some(section);
                        } else {
                            open = Some((
                                section,
                                String::new(),
                                lines.at(reader.buffer_position() as usize),
                            ));
                        }
                    }
                    (true, b"Default") => {
                        return Err(ConfigError::at(line, "a second Default section"));
                    }
                    (true, b"Jurisdiction") => {
                        let uri = e
                            .try_get_attribute("uri")
                            .ok()
                            .flatten()
                            .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                            .filter(|v| !v.is_empty())
                            .ok_or_else(|| {
                                ConfigError::at(
                                    line,
                                    "a Jurisdiction section needs a uri attribute",
                                )
                            })?;
                        let section = Section { uri: Some(uri), line, directives: Vec::new() };
                        if is_empty {
                            jurisdictions.push(section);
                        } else {
                            open = Some((
                                section,
                                String::new(),
                                lines.at(reader.buffer_position() as usize),
                            ));
                        }
                    }
                    (_, name) => {
                        let name = String::from_utf8_lossy(name);
                        return Err(ConfigError::at(line, format!("unexpected element <{name}>")));
                    }
                }
            }
            Event::End(_) => match open.take() {
                Some((mut section, text, first_line)) => {
                    section.directives = directives(&text, first_line)?;
                    if section.uri.is_some() {
                        jurisdictions.push(section);
                    } else {
                        default = Some(section);
                    }
                }
                None => in_configuration = false,
            },
        }
    }
    if !seen_configuration {
        return Err(ConfigError::general("no <Configuration> element"));
    }
    if in_configuration || open.is_some() {
        return Err(ConfigError::general("the file ends inside an element"));
    }
    Ok((default.unwrap_or_default(), jurisdictions))
}

fn resolve(r: &quick_xml::events::BytesRef) -> Option<char> {
    if r.is_char_ref() {
        return r.resolve_char_ref().ok().flatten();
    }
    match r.as_ref() {
        b"lt" => Some('<'),
        b"gt" => Some('>'),
        b"amp" => Some('&'),
        b"quot" => Some('"'),
        b"apos" => Some('\''),
        _ => None,
    }
}

/// The directive lines of a section's text.
fn directives(text: &str, first_line: usize) -> Result<Vec<Directive>, ConfigError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if let Some(d) = directive(raw, first_line + i)? {
            out.push(d);
        }
    }
    Ok(out)
}

/// One line: blank, a `#` comment, or `NAME "value"` with `\"` and `\\` escapes.
pub fn directive(raw: &str, line: usize) -> Result<Option<Directive>, ConfigError> {
    let text = raw.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let name_end =
        text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len());
    let (name, rest) = text.split_at(name_end);
    if name.is_empty() {
        return Err(ConfigError::at(line, "expected a directive: NAME \"value\""));
    }
    let value = rest.trim_start();
    if value.is_empty() {
        return Err(ConfigError::at(line, format!("{name} has no value")));
    }
    if value.len() == rest.len() || !value.starts_with('"') {
        return Err(ConfigError::at(
            line,
            format!(
                "{name}: only a double-quoted literal value is supported (DACS expressions are not)"
            ),
        ));
    }
    let mut chars = value[1..].char_indices();
    let mut out = String::new();
    let tail = loop {
        match chars.next() {
            None => {
                return Err(ConfigError::at(
                    line,
                    format!("{name}: the quoted value is not closed"),
                ));
            }
            Some((i, '"')) => break &value[1 + i + 1..],
            Some((_, '\\')) => match chars.next() {
                Some((_, c @ ('"' | '\\'))) => out.push(c),
                _ => {
                    return Err(ConfigError::at(
                        line,
                        format!("{name}: only \\\" and \\\\ escapes are supported"),
                    ));
                }
            },
            Some((_, c)) => out.push(c),
        }
    };
    let tail = tail.trim();
    if !tail.is_empty() && !tail.starts_with('#') {
        return Err(ConfigError::at(line, format!("{name}: unexpected text after the value")));
    }
    Ok(Some(Directive { name: name.to_owned(), value: out, line }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_lines() {
        let d = directive(r#"  FEDERATION_NAME "EX" # the federation"#, 3).unwrap().unwrap();
        assert_eq!((d.name.as_str(), d.value.as_str(), d.line), ("FEDERATION_NAME", "EX", 3));
        let d = directive(r#"SIGNOUT_HANDLER "message say \"bye\" \\o/""#, 1).unwrap().unwrap();
        assert_eq!(d.value, r#"message say "bye" \o/"#);
        assert_eq!(directive("   # comment", 1).unwrap(), None);
        for bad in [
            r#"X ${Conf::A}"#,
            r#"X "open"#,
            r#"X "a" b"#,
            r#"X"#,
            r#""v""#,
            r#"X "\n""#,
            r#"X"a""#,
        ] {
            let e = directive(bad, 7).unwrap_err();
            assert_eq!(e.line, Some(7), "{bad}");
        }
    }

    #[test]
    fn sections_and_line_numbers() {
        let text = "<?xml version=\"1.0\"?>\n<!-- dacs.conf -->\n<Configuration xmlns=\"http://dss.ca/dacs/v1.4\">\n<Default>\nFEDERATION_NAME \"EX\"\n\nA_B &quot;x&amp;y&quot;\n</Default>\n<Jurisdiction uri=\"ex.org/x\">\nJURISDICTION_NAME \"J\"\n</Jurisdiction>\n<Jurisdiction uri=\"ex.org/y\"/>\n</Configuration>\n";
        let (default, juris) = sections(text).unwrap();
        assert_eq!(default.directives[0].line, 5);
        assert_eq!(default.directives[1].value, "x&y");
        assert_eq!(default.directives[1].line, 7);
        assert_eq!(juris.len(), 2);
        assert_eq!(juris[0].directives[0].line, 10);
    }

    #[test]
    fn structural_errors_name_a_line() {
        let e = sections("<Configuration>\n<Default>\nX \"1\"\n<Bad/>\n</Default></Configuration>")
            .unwrap_err();
        assert_eq!(e.line, Some(4));
        let e = sections("<Configuration>\n<Default>\nX \"1\"\nY oops\n</Default></Configuration>")
            .unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(
            sections("<Configuration>\n<Jurisdiction>\n</Jurisdiction></Configuration>").is_err()
        );
        assert!(sections("<Configuration><Default>").is_err());
        assert!(sections("").is_err());
        assert!(sections("<Other/>").is_err());
    }
}
