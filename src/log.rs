//! The `key=value` line format of every log line (the request's line on stderr, which lands
//! in the web server's error log, and the relay's delivery log): one line, values quoted when
//! they need it, control characters replaced. Which keys a line has is decided in one place per
//! line: `signout::Outcome::log_line` for a request, `relay::journal::line` for an attempt.
//! Keys are `&'static str`, so only those functions name them; cookie values and tokens are
//! never among the values they pass.

use std::fmt::Write;

use crate::time::rfc3339;

#[derive(Debug, Clone, Default)]
pub struct LogLine {
    fields: Vec<(&'static str, String)>,
}

impl LogLine {
    pub fn set(&mut self, key: &'static str, value: impl ToString) -> &mut Self {
        let value = value.to_string();
        match self.fields.iter_mut().find(|(k, _)| *k == key) {
            Some(field) => field.1 = value,
            None => self.fields.push((key, value)),
        }
        self
    }

    /// Sets `key` when there is a value.
    pub fn maybe(&mut self, key: &'static str, value: Option<impl ToString>) -> &mut Self {
        if let Some(value) = value {
            self.set(key, value);
        }
        self
    }

    /// `2026-11-30T09:00:00Z dacs_signout: key=value key="value with spaces"`, controls
    /// replaced, one line. The time first: the lines land raw in a web server's error log.
    pub fn render(&self, at: u64) -> String {
        self.render_as(at, "dacs_signout")
    }

    /// The same line with another program's name in front.
    pub fn render_as(&self, at: u64, program: &str) -> String {
        let mut out = format!("{} {program}:", rfc3339(at));
        for (key, value) in &self.fields {
            let clean: String =
                value.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
            if clean.is_empty() || clean.contains([' ', '"', '=', '\\']) {
                let _ =
                    write!(out, " {key}=\"{}\"", clean.replace('\\', "\\\\").replace('"', "\\\""));
            } else {
                let _ = write!(out, " {key}={clean}");
            }
        }
        out.push('\n');
        out
    }
}

/// Writes `line` (and a newline) to standard error in one write, ignoring failure: a
/// long-running process whose stderr was closed (its supervisor's pipe gone) must go on
/// serving, where `eprintln!` would panic.
pub fn to_stderr(line: std::fmt::Arguments) {
    use std::io::Write;
    let mut text = line.to_string();
    text.push('\n');
    let _ = std::io::stderr().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_cleans() {
        let mut line = LogLine::default();
        line.set("status", 200).set("error", "bad \"x\"\r\ny").set("status", 400);
        assert_eq!(
            line.render(0),
            "1970-01-01T00:00:00Z dacs_signout: status=400 error=\"bad \\\"x\\\"??y\"\n"
        );
    }
}
