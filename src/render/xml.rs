//! `dacs_current_credentials` documents (the DTD and XSD are in `dtd/`).

use std::fmt::Write;

use super::Report;
use crate::cgi::Format;
use crate::cgi::Response;
use crate::credentials::Credential;

/// Escapes text for an attribute value.
pub fn escape(text: &str) -> String {
    super::escape(text, "&apos;")
}

/// The prolog and the root start tag's schema attributes for each variant.
fn root(format: Format, attributes: &str) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    if format == Format::XmlDtd {
        out.push_str(
            "<!DOCTYPE dacs_current_credentials SYSTEM \"dacs_current_credentials.dtd\">\n",
        );
    }
    out.push_str("<dacs_current_credentials");
    if format == Format::XmlSchema {
        out.push_str(" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:noNamespaceSchemaLocation=\"dacs_current_credentials.xsd\"");
    }
    out.push_str(attributes);
    out.push_str(">\n");
    out
}

fn credentials(out: &mut String, element: &str, list: &[Credential]) {
    for c in list {
        let id = c.identity;
        let _ = writeln!(
            out,
            "  <{element} federation=\"{}\" jurisdiction=\"{}\" username=\"{}\"/>",
            escape(id.federation),
            escape(id.jurisdiction),
            escape(id.username)
        );
    }
}

/// The signout report as one of the XML variants.
pub fn report(format: Format, report: &Report) -> String {
    let mut attributes = format!(" federation_name=\"{}\"", escape(report.federation));
    if let Some(domain) = report.federation_domain {
        let _ = write!(attributes, " federation_domain=\"{}\"", escape(domain));
    }
    let _ = write!(attributes, " jurisdiction_name=\"{}\"", escape(report.jurisdiction));
    let mut out = root(format, &attributes);
    credentials(&mut out, "credentials", report.remaining);
    credentials(&mut out, "signed_out", report.removed);
    out.push_str("</dacs_current_credentials>\n");
    out
}

pub fn common_status(format: Format, code: u16, message: &str) -> String {
    let mut out = root(format, "");
    let _ = writeln!(
        out,
        "  <common_status context=\"dacs_signout\" code=\"{code}\" message=\"{}\"/>",
        escape(message)
    );
    out.push_str("</dacs_current_credentials>\n");
    out
}

pub fn response(document: String) -> Response {
    let mut r = Response::new(200, "OK");
    r.header("Content-Type", "text/xml; charset=utf-8");
    r.body = document.into_bytes();
    r
}
