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
    "SIGNOUT_CLIENT",
    "REGISTRY",
    "REGISTRY_KEY_ENV",
    "REGISTRY_PASSWORD_ENV",
    "REGISTRY_TTL_SECS",
    "RECEIVER_TOKEN_ENV",
    "RECEIVER_USERNAME_MAP",
    "IDLE_TIMEOUT_SECS",
    "GUARD_ON_STORE_ERROR",
    "GUARD_REFUSAL_STATUS",
    "HUB_SENDER",
    "HUB_RECEIVER",
    "HUB_SPOOL_DIR",
    "HUB_SPOOL_MAX",
    "HUB_INSTANCE",
    "HUB_LOG",
    "HUB_CONNECT_TIMEOUT_SECS",
    "HUB_TIMEOUT_SECS",
    "HUB_WORKERS",
    "HUB_MAX_AGE_SECS",
    "HUB_RETRY_SECS",
    "HUB_SENDER_RATE",
    "HUB_RECEIPT_SECS",
];

/// Directives of DACS itself (`dacs.conf(5)`) that this program does not read: never taken for
/// a typo of one of its own. Any other unknown name one or two edits from a known directive is
/// reported as a likely typo.
pub const DACS_DIRECTIVES: &[&str] = &[
    "ACCEPT_ALIEN_CREDENTIALS",
    "ACS_ACCESS_TOKEN_ENABLE",
    "ACS_ERROR_HANDLER",
    "ACS_POST_BUFFER_LIMIT",
    "AUTH_CREDENTIALS_ADMIN_LIFETIME_SECS",
    "AUTH_CREDENTIALS_DEFAULT_LIFETIME_SECS",
    "AUTH_ERROR_HANDLER",
    "AUTH_FAIL",
    "AUTH_FAIL_DELAY_SECS",
    "AUTH_SINGLE_COOKIE",
    "AUTH_SUCCESS",
    "AUTH_SUCCESS_HANDLER",
    "COMPAT_MODE",
    "COOKIE_HTTPONLY",
    "CSS_PATH",
    "DTD_BASE_URL",
    "EVAL",
    "HTTP_PROG",
    "LOG_FILE",
    "LOG_FILTER",
    "LOG_LEVEL",
    "LOG_SENSITIVE",
    "PERMIT_CHAINING",
    "SIGNOUT_HANDLER",
    "SSL_PROG",
    "SSL_PROG_ARGS",
    "STATUS_LINE",
    "TEMP_DIRECTORY",
    "TRACE_LEVEL",
    "UNAUTH_ROLES",
    "VERIFY_IP",
    "VFS",
    "XSD_BASE_URL",
];

/// One `NAME "value"` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub name: String,
    /// The literal's text; for an expression, the value as written.
    pub value: String,
    pub line: usize,
    /// The value is not one double-quoted literal: a DACS expression (`${Conf::X}`, `EVAL`'s
    /// assignments, ...). A directive this program reads must be a literal; any other
    /// directive is left alone, whatever its value.
    pub expression: bool,
}

/// An element this program does not use (`<Auth>`, `<Roles>`, `<Transfer>`, ...): skipped
/// with everything in it, and listed by `--check-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub element: String,
    /// Its `id` attribute, as DACS's clauses have.
    pub id: Option<String>,
    pub line: usize,
}

/// A configuration text's sections and what was skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub default: Section,
    pub jurisdictions: Vec<Section>,
    pub skipped: Vec<Skipped>,
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

/// The section being read: its text since the last element inside it, and the line that text
/// starts on.
struct Open {
    section: Section,
    text: String,
    first_line: usize,
}

/// The `Default` section and the `Jurisdiction` sections of a configuration text, and every
/// element skipped. A text that is not well-formed XML stops at its first error; directive
/// lines that do not parse are all reported.
pub fn sections(text: &str) -> Result<Parsed, Vec<ConfigError>> {
    let mut reader = Reader::from_str(text);
    let mut lines = Lines { text, offset: 0, line: 1 };
    let mut parsed = Parsed::default();
    let mut default: Option<Section> = None;
    let mut problems = Vec::new();
    let mut in_configuration = false;
    let mut seen_configuration = false;
    let mut open: Option<Open> = None;

    loop {
        let start = reader.buffer_position() as usize;
        let event = match reader.read_event() {
            Ok(event) => event,
            Err(e) => {
                let line = lines.at(reader.error_position() as usize);
                problems.push(ConfigError::at(line, format!("not well-formed XML: {e}")));
                return Err(problems);
            }
        };
        let line = lines.at(start);
        // Inside a section, text, CDATA and entity references are the directive lines.
        if let Some(open) = open.as_mut() {
            let decoded = match &event {
                Event::Text(t) => {
                    Some(t.decode().map_err(|e| vec![ConfigError::at(line, e.to_string())])?)
                }
                Event::CData(t) => {
                    Some(t.decode().map_err(|e| vec![ConfigError::at(line, e.to_string())])?)
                }
                Event::GeneralRef(r) => {
                    match resolve(r) {
                        Some(c) => open.text.push(c),
                        None => problems.push(ConfigError::at(line, "unknown entity reference")),
                    }
                    continue;
                }
                _ => None,
            };
            if let Some(text) = decoded {
                open.text.push_str(&text);
                continue;
            }
        }
        match event {
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::DocType(_) | Event::Comment(_) => {}
            Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) if in_configuration => {
                problems
                    .push(ConfigError::at(line, "text outside a Default or Jurisdiction section"));
            }
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                problems.push(ConfigError::at(line, "text outside the <Configuration> element"));
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                let is_empty = matches!(event, Event::Empty(_));
                let name = e.name().as_ref().to_vec();
                match (in_configuration, open.is_some(), name.as_slice()) {
                    (false, _, b"Configuration") if !seen_configuration => {
                        seen_configuration = true;
                        in_configuration = !is_empty;
                    }
                    (false, _, other) => {
                        let other = String::from_utf8_lossy(other);
                        problems.push(ConfigError::at(
                            line,
                            format!(
                                "expected <Configuration> as the root element, found <{other}>"
                            ),
                        ));
                        return Err(problems);
                    }
                    (true, false, b"Default") if default.is_none() => {
                        let section = Section { uri: None, line, directives: Vec::new() };
                        if is_empty {
                            default = Some(section);
                        } else {
                            let first_line = lines.at(reader.buffer_position() as usize);
                            open = Some(Open { section, text: String::new(), first_line });
                        }
                    }
                    (true, false, b"Default") => {
                        problems.push(ConfigError::at(line, "a second Default section"));
                        skip(&mut reader, &name, is_empty, line, &mut problems)?;
                    }
                    (true, false, b"Jurisdiction") => {
                        let uri = e
                            .try_get_attribute("uri")
                            .ok()
                            .flatten()
                            .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                            .filter(|v| !v.is_empty());
                        let Some(uri) = uri else {
                            problems.push(ConfigError::at(
                                line,
                                "a Jurisdiction section needs a uri attribute",
                            ));
                            skip(&mut reader, &name, is_empty, line, &mut problems)?;
                            continue;
                        };
                        let section = Section { uri: Some(uri), line, directives: Vec::new() };
                        if is_empty {
                            parsed.jurisdictions.push(section);
                        } else {
                            let first_line = lines.at(reader.buffer_position() as usize);
                            open = Some(Open { section, text: String::new(), first_line });
                        }
                    }
                    // Anything else (DACS's <Auth>, <Roles>, <Transfer> clauses, in a section
                    // or beside them): skipped whole, and listed.
                    (true, _, other) => {
                        if let Some(open) = open.as_mut() {
                            // The section's text so far, before the element.
                            open.section.directives.extend(directives(
                                &open.text,
                                open.first_line,
                                &mut problems,
                            ));
                            open.text.clear();
                        }
                        let id = e
                            .try_get_attribute("id")
                            .ok()
                            .flatten()
                            .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()));
                        parsed.skipped.push(Skipped {
                            element: String::from_utf8_lossy(other).into_owned(),
                            id,
                            line,
                        });
                        skip(&mut reader, &name, is_empty, line, &mut problems)?;
                        if let Some(open) = open.as_mut() {
                            open.first_line = lines.at(reader.buffer_position() as usize);
                        }
                    }
                }
            }
            Event::End(_) => match open.take() {
                Some(Open { mut section, text, first_line }) => {
                    section.directives.extend(directives(&text, first_line, &mut problems));
                    if section.uri.is_some() {
                        parsed.jurisdictions.push(section);
                    } else {
                        default = Some(section);
                    }
                }
                None => in_configuration = false,
            },
        }
    }
    if !seen_configuration {
        problems.push(ConfigError::general("no <Configuration> element"));
    } else if in_configuration || open.is_some() {
        problems.push(ConfigError::general("the file ends inside an element"));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    parsed.default = default.unwrap_or_default();
    Ok(parsed)
}

/// Skips an element and everything in it.
fn skip(
    reader: &mut Reader<&[u8]>,
    name: &[u8],
    is_empty: bool,
    line: usize,
    problems: &mut Vec<ConfigError>,
) -> Result<(), Vec<ConfigError>> {
    if is_empty {
        return Ok(());
    }
    match reader.read_to_end(quick_xml::name::QName(name)) {
        Ok(_) => Ok(()),
        Err(e) => {
            let element = String::from_utf8_lossy(name);
            problems.push(ConfigError::at(line, format!("<{element}> is not closed: {e}")));
            Err(std::mem::take(problems))
        }
    }
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

/// The directive lines of a section's text; a line that does not parse is a problem.
fn directives(text: &str, first_line: usize, problems: &mut Vec<ConfigError>) -> Vec<Directive> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        match directive(raw, first_line + i) {
            Ok(Some(d)) => out.push(d),
            Ok(None) => {}
            Err(e) => problems.push(e),
        }
    }
    out
}

/// One line: blank, a `#` comment, or `NAME value`. A value that is one double-quoted literal
/// (with `\"` and `\\` escapes, then perhaps a comment) is read; any other value is kept as
/// written, as an expression (see [`Directive::expression`]).
pub fn directive(raw: &str, line: usize) -> Result<Option<Directive>, ConfigError> {
    let text = raw.trim();
    if text.is_empty() || text.starts_with('#') {
        return Ok(None);
    }
    let name_end =
        text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len());
    let (name, rest) = text.split_at(name_end);
    if name.is_empty() {
        return Err(ConfigError::at(
            line,
            format!("expected a directive (NAME \"value\"), found {text:?}"),
        ));
    }
    let value = rest.trim_start();
    if value.is_empty() {
        return Err(ConfigError::at(line, format!("{name} has no value")));
    }
    if value.len() == rest.len() {
        return Err(ConfigError::at(
            line,
            format!("{name}: a space must separate the name and the value"),
        ));
    }
    let directive = |value: String, expression| {
        Some(Directive { name: name.to_owned(), value, line, expression })
    };
    Ok(match literal(value) {
        Some(text) => directive(text, false),
        None => directive(value.to_owned(), true),
    })
}

/// `"text"` with `\"` and `\\` escapes, optionally followed by a `#` comment.
fn literal(value: &str) -> Option<String> {
    let mut chars = value.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    let tail = loop {
        match chars.next()? {
            (i, '"') => break &value[1 + i + 1..],
            (_, '\\') => match chars.next()? {
                (_, c @ ('"' | '\\')) => out.push(c),
                _ => return None,
            },
            (_, c) => out.push(c),
        }
    };
    let tail = tail.trim();
    (tail.is_empty() || tail.starts_with('#')).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_lines() {
        let d = directive(r#"  FEDERATION_NAME "EX" # the federation"#, 3).unwrap().unwrap();
        assert_eq!((d.name.as_str(), d.value.as_str(), d.line), ("FEDERATION_NAME", "EX", 3));
        assert!(!d.expression);
        let d = directive(r#"SIGNOUT_HANDLER "message say \"bye\" \\o/""#, 1).unwrap().unwrap();
        assert_eq!(d.value, r#"message say "bye" \o/"#);
        assert_eq!(directive("   # comment", 1).unwrap(), None);
        // Not one literal: kept as written, an expression.
        for expression in
            [r#"X ${Conf::A}"#, r#"X "open"#, r#"X "a" b"#, r#"X "\n""#, r#"EVAL ${Conf::X} = "y""#]
        {
            let d = directive(expression, 7).unwrap().unwrap();
            assert!(d.expression, "{expression}");
            assert_eq!(d.value, expression.split_once(' ').unwrap().1, "{expression}");
        }
        for bad in [r#"X"#, r#""v""#, r#"X"a""#, "-x \"1\""] {
            let e = directive(bad, 7).unwrap_err();
            assert_eq!(e.line, Some(7), "{bad}");
        }
    }

    #[test]
    fn sections_and_line_numbers() {
        let text = "<?xml version=\"1.0\"?>\n<!-- dacs.conf -->\n<Configuration xmlns=\"http://dss.ca/dacs/v1.4\">\n<Default>\nFEDERATION_NAME \"EX\"\n\nA_B &quot;x&amp;y&quot;\n</Default>\n<Jurisdiction uri=\"ex.org/x\">\nJURISDICTION_NAME \"J\"\n</Jurisdiction>\n<Jurisdiction uri=\"ex.org/y\"/>\n</Configuration>\n";
        let parsed = sections(text).unwrap();
        assert_eq!(parsed.default.directives[0].line, 5);
        assert_eq!(parsed.default.directives[1].value, "x&y");
        assert_eq!(parsed.default.directives[1].line, 7);
        assert_eq!(parsed.jurisdictions.len(), 2);
        assert_eq!(parsed.jurisdictions[0].directives[0].line, 10);
    }

    /// A real `dacs.conf` has clauses this program does not use, inside sections and beside
    /// them: skipped with their contents (their `URL`, `STYLE` lines never become the
    /// section's), listed, and the lines after them keep their numbers.
    #[test]
    fn unused_elements_are_skipped_whole() {
        let text = "<Configuration>\n<Default>\nFEDERATION_NAME \"EX\"\n<Auth id=\"passwd\">\n\
                    URL \"https://x/\"\nSTYLE \"pass\"\n</Auth>\nJURISDICTION_NAME \"J\"\n\
                    <Roles id=\"r\"/>\nCOOKIE_PATH \"/\"\n</Default>\n<Transfer id=\"t\">\n\
                    <Nested>x</Nested>\n</Transfer>\n</Configuration>";
        let parsed = sections(text).unwrap();
        let names: Vec<(&str, usize)> =
            parsed.default.directives.iter().map(|d| (d.name.as_str(), d.line)).collect();
        assert_eq!(names, [("FEDERATION_NAME", 3), ("JURISDICTION_NAME", 8), ("COOKIE_PATH", 10)]);
        let skipped: Vec<(&str, Option<&str>, usize)> =
            parsed.skipped.iter().map(|s| (s.element.as_str(), s.id.as_deref(), s.line)).collect();
        assert_eq!(
            skipped,
            [("Auth", Some("passwd"), 4), ("Roles", Some("r"), 9), ("Transfer", Some("t"), 12)]
        );
    }

    #[test]
    fn every_line_problem_is_reported() {
        let e = sections(
            "<Configuration>\n<Default>\nX \"1\"\nY\n\"z\"\nW \"ok\"\n</Default></Configuration>",
        )
        .unwrap_err();
        let lines: Vec<Option<usize>> = e.iter().map(|p| p.line).collect();
        assert_eq!(lines, [Some(4), Some(5)]);
    }

    #[test]
    fn structural_errors_name_a_line() {
        assert!(
            sections("<Configuration>\n<Jurisdiction>\n</Jurisdiction></Configuration>").is_err()
        );
        assert!(sections("<Configuration><Default>").is_err());
        assert!(sections("").is_err());
        let e = sections("<Other/>").unwrap_err();
        assert!(e[0].message.contains("root element"), "{:?}", e);
        let e =
            sections("<Configuration>\n<Default>\n<Auth>\n</Default></Configuration>").unwrap_err();
        assert_eq!(e[0].line, Some(3), "{e:?}");
    }
}
