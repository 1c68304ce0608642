//! The answer in HTML, XML or JSON: each a pure function of the decision.

pub mod html;
mod json;
mod xml;

use std::str::FromStr;

use crate::cgi::Response;
use crate::config::Settings;
use crate::credentials::Credential;
use crate::error::Error;
use crate::policy::{Decision, Page};

/// The `FORMAT` argument.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Html,
    Xml,
    XmlSimple,
    XmlDtd,
    XmlSchema,
    Json,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Html => "HTML",
            Format::Xml => "XML",
            Format::XmlSimple => "XMLSIMPLE",
            Format::XmlDtd => "XMLDTD",
            Format::XmlSchema => "XMLSCHEMA",
            Format::Json => "JSON",
        }
    }

    /// The format an early error is answered in: `FORMAT` from the query string if it is
    /// there and valid, else HTML.
    pub fn sniff(query: &[u8]) -> Format {
        query
            .split(|&b| b == b'&')
            .find_map(|pair| pair.strip_prefix(b"FORMAT="))
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }
}

impl FromStr for Format {
    type Err = Error;

    fn from_str(text: &str) -> Result<Format, Error> {
        [
            Format::Html,
            Format::Xml,
            Format::XmlSimple,
            Format::XmlDtd,
            Format::XmlSchema,
            Format::Json,
        ]
        .into_iter()
        .find(|f| f.as_str().eq_ignore_ascii_case(text))
        .ok_or_else(|| {
            Error::bad_request("FORMAT must be HTML, XML, XMLSIMPLE, XMLDTD, XMLSCHEMA or JSON")
        })
    }
}

/// Escapes text for HTML and XML (element text and double- or single-quoted attributes).
/// Characters XML 1.0 cannot carry (controls other than tab/LF/CR, U+FFFE, U+FFFF) become
/// U+FFFD, so every document stays well-formed whatever went into it.
pub fn escape(text: &str, apostrophe: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str(apostrophe),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// What every format reports about a signout.
pub struct Report<'a> {
    pub federation: &'a str,
    pub jurisdiction: &'a str,
    pub federation_domain: Option<&'a str>,
    pub removed: &'a [Credential<'a>],
    pub remaining: &'a [Credential<'a>],
}

/// The answer to a signout. `file_page` is the `SIGNOUT_HANDLER "file"` page, read at the
/// edge; `None` there falls back to the built-in page.
pub fn answer(
    decision: &Decision,
    settings: &Settings,
    format: Format,
    file_page: Option<Vec<u8>>,
) -> Response {
    let report = Report {
        federation: &settings.federation_name,
        jurisdiction: &settings.jurisdiction_name,
        federation_domain: settings.federation_domain.as_deref(),
        removed: &decision.selection.removed,
        remaining: &decision.selection.remaining,
    };
    let mut response = match (format, &decision.page) {
        (Format::Html, Page::Redirect(location)) => {
            let mut r = html::page(302, "Found", &html::redirect_body(location));
            r.header("Location", location.as_str());
            r
        }
        (Format::Html, Page::File(_)) if file_page.is_some() => {
            let mut r = html::page(200, "OK", "");
            r.body = file_page.unwrap_or_default();
            r
        }
        (Format::Html, Page::Message(text)) => html::page(200, "OK", &html::message_body(text)),
        (Format::Html, _) => html::page(200, "OK", &html::report_body(&report)),
        (Format::Json, _) => json::response(json::report(&report)),
        (xml_format, _) => xml::response(xml::report(xml_format, &report)),
    };
    for value in &decision.set_cookies {
        response.header("Set-Cookie", value.as_str());
    }
    // Clear-Site-Data clears every cookie of the site: only right for a full signout of
    // someone who was signed in.
    if let Some(value) = settings.clear_site_data.as_deref() {
        if decision.selection.full_signout && !decision.selection.removed.is_empty() {
            response.header("Clear-Site-Data", value);
        }
    }
    response
}

/// An error in the requested format, with its status.
pub fn error(error: &Error, format: Format) -> Response {
    let (code, reason) = error.status();
    let mut response = match format {
        Format::Html => html::page(code, reason, &html::error_body(code, reason, &error.message)),
        Format::Json => json::response(json::common_status(code, &error.message)),
        xml_format => xml::response(xml::common_status(xml_format, code, &error.message)),
    };
    response.status = code;
    response.reason = reason;
    if code == 405 {
        response.header("Allow", "GET, HEAD, POST");
    }
    response
}
