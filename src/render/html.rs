//! HTML pages. Every interpolated value goes through `escape`; the page runs no script.

use std::fmt::Write;

use super::Report;
use crate::cgi::Response;

/// No script, no plugins, no framing; inline styles only.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;line-height:1.5}code{font-size:1.05em}";

pub fn escape(text: &str) -> String {
    super::escape(text, "&#39;")
}

/// An operator's own goodbye page (`SIGNOUT_HANDLER "file"`) may use its site's stylesheets,
/// images and fonts (same origin); still no script, no plugin, no framing.
const FILE_CSP: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The operator's `file` page, as read.
pub fn file_page(bytes: Vec<u8>) -> Response {
    let mut r = Response::new(200, "OK");
    r.header("Content-Type", "text/html; charset=utf-8");
    r.header("Content-Security-Policy", FILE_CSP);
    r.body = bytes;
    r
}

pub fn page(status: u16, reason: &'static str, body: &str) -> Response {
    let mut r = Response::new(status, reason);
    r.header("Content-Type", "text/html; charset=utf-8");
    r.header("Content-Security-Policy", CSP);
    r.body = body.as_bytes().to_vec();
    r
}

fn document(title: &str, main: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{main}</body>\n</html>\n",
        title = escape(title)
    )
}

fn list(out: &mut String, heading: &str, credentials: &[crate::credentials::Credential]) {
    let _ = writeln!(
        out,
        "<h2>{heading}</h2>\n<ul class=\"{}\">",
        heading.to_ascii_lowercase().replace(' ', "-")
    );
    for c in credentials {
        let _ = writeln!(out, "<li><code>{}</code></li>", escape(&c.identity.to_string()));
    }
    out.push_str("</ul>\n");
}

pub fn report_body(report: &Report) -> String {
    let federation = escape(report.federation);
    let mut main = String::new();
    if report.removed.is_empty() {
        let _ = writeln!(
            main,
            "<h1>Not signed in</h1>\n<p id=\"status\">You are not authenticated within federation {federation}</p>"
        );
    } else {
        let _ = writeln!(
            main,
            "<h1>Signed out</h1>\n<p id=\"status\">You have been signed out of federation {federation}.</p>"
        );
        list(&mut main, "Signed out", report.removed);
    }
    if !report.remaining.is_empty() {
        list(&mut main, "Still signed in", report.remaining);
    }
    document("Sign out", &main)
}

pub fn redirect_body(location: &str) -> String {
    let main = format!(
        "<h1>Signed out</h1>\n<p>Continue to <a href=\"{0}\">{0}</a>.</p>\n",
        escape(location)
    );
    document("Signed out", &main)
}

pub fn message_body(text: &str) -> String {
    document("Signed out", &format!("<h1>Signed out</h1>\n<p id=\"status\">{}</p>\n", escape(text)))
}

/// The drive-by confirmation (§8): one button that sends `fields` again, as a POST from this
/// origin to `action` (the program's own path).
pub fn confirm_body(federation: &str, action: &str, fields: &[(&str, &str)]) -> String {
    let mut main = format!(
        "<h1>Sign out?</h1>\n<p id=\"status\">Another site sent you here to sign you out of \
         federation {}. Nothing has changed yet.</p>\n<form method=\"post\" action=\"{}\">\n",
        escape(federation),
        escape(action)
    );
    for (name, value) in fields {
        let _ = writeln!(
            main,
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
            escape(name),
            escape(value)
        );
    }
    main.push_str("<button id=\"confirm\" type=\"submit\">Sign out</button>\n</form>\n");
    document("Sign out?", &main)
}

/// The guard's refusal (§13): the credential was ended elsewhere, and the browser's copy has
/// just been expired; sign in again. `refused` is empty for a denial the guard did not make
/// (DACS's own 401 on the same page).
pub fn guard_body(federation: &str, refused: &[(String, &str)]) -> String {
    let mut main = String::new();
    if refused.is_empty() {
        main.push_str(
            "<h1>Sign-in required</h1>\n<p id=\"status\">This page needs you to sign in.</p>\n",
        );
    } else {
        let _ = writeln!(
            main,
            "<h1>Signed out</h1>\n<p id=\"status\">You were signed out of federation {}, here or \
             elsewhere, or this sign-in was left unused too long. Please sign in again.</p>\n<ul>",
            escape(federation)
        );
        for (name, why) in refused {
            let _ = writeln!(main, "<li><code>{}</code>: {}</li>", escape(name), escape(why));
        }
        main.push_str("</ul>\n");
    }
    document("Signed out", &main)
}

pub fn error_body(code: u16, reason: &str, message: &str) -> String {
    let main =
        format!("<h1>{code} {}</h1>\n<p id=\"status\">{}</p>\n", escape(reason), escape(message));
    document(&format!("{code} {reason}"), &main)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert!(message_body("<script>").contains("&lt;script&gt;"));
    }
}
