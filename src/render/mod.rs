//! The answer in HTML, XML or JSON: each a pure function of the decision.

pub(crate) mod html;
mod json;
mod xml;

use crate::cgi::{Format, Response};
use crate::credentials::{Credential, Selection};
use crate::error::Error;
use crate::policy::{Decision, Page, Rules};

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

impl<'a> Report<'a> {
    pub fn new(rules: &'a Rules, selection: &'a Selection<'a>) -> Report<'a> {
        Report {
            federation: &rules.federation_name,
            jurisdiction: &rules.jurisdiction_name,
            federation_domain: rules.federation_domain.as_deref(),
            removed: &selection.removed,
            remaining: &selection.remaining,
        }
    }
}

/// The answer to a signout. `file_page` is the `SIGNOUT_HANDLER "file"` page, read at the
/// edge; `None` there falls back to the built-in page.
pub fn answer(
    decision: &Decision,
    report: &Report,
    format: Format,
    file_page: Option<Vec<u8>>,
) -> Response {
    let mut response = match (format, &decision.page, file_page) {
        (Format::Html, Page::Redirect(location), _) => {
            let mut r = html::page(302, "Found", &html::redirect_body(location));
            r.header("Location", location.as_str());
            r
        }
        (Format::Html, Page::File(_), Some(bytes)) => html::file_page(bytes),
        (Format::Html, Page::Message(text), _) => html::page(200, "OK", &html::message_body(text)),
        (Format::Html, _, _) => html::page(200, "OK", &html::report_body(report)),
        (Format::Json, _, _) => json::response(json::report(report)),
        (xml_format, _, _) => xml::response(xml::report(xml_format, report)),
    };
    for value in &decision.set_cookies {
        response.header("Set-Cookie", value.as_str());
    }
    if let Some(value) = decision.clear_site_data.as_deref() {
        response.header("Clear-Site-Data", value);
    }
    response
}

/// The drive-by confirmation page (HTML only: XML and JSON callers get a 403 instead).
pub fn confirmation(federation: &str, action: &str, fields: &[(&str, &str)]) -> Response {
    html::page(200, "OK", &html::confirm_body(federation, action, fields))
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
        response.header("Allow", "GET, HEAD, POST, DELETE");
    }
    response
}
