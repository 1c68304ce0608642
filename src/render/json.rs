//! The JSON answer (`dtd/dacs_current_credentials.schema.json`). Written by hand, in a fixed
//! key order; strings are escaped by `serde_json`.

use std::fmt::Write;

use super::Report;
use crate::cgi::Response;
use crate::credentials::Credential;

fn string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn list(credentials: &[Credential]) -> String {
    let items: Vec<String> = credentials
        .iter()
        .map(|c| {
            let id = c.identity;
            format!(
                "{{\"federation\":{},\"jurisdiction\":{},\"username\":{}}}",
                string(id.federation),
                string(id.jurisdiction),
                string(id.username)
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

pub fn report(report: &Report) -> String {
    let mut out = format!("{{\"dacs_current_credentials\":{{\"federation_name\":{}", string(report.federation));
    if let Some(domain) = report.federation_domain {
        let _ = write!(out, ",\"federation_domain\":{}", string(domain));
    }
    let _ = writeln!(
        out,
        ",\"jurisdiction_name\":{},\"credentials\":{},\"signed_out\":{}}}}}",
        string(report.jurisdiction),
        list(report.remaining),
        list(report.removed)
    );
    out
}

pub fn common_status(code: u16, message: &str) -> String {
    format!(
        "{{\"dacs_current_credentials\":{{\"common_status\":{{\"context\":\"dacs_signout\",\"code\":\"{code}\",\"message\":{}}}}}}}\n",
        string(message)
    )
}

pub fn response(document: String) -> Response {
    let mut r = Response::new(200, "OK");
    r.header("Content-Type", "application/json");
    r.body = document.into_bytes();
    r
}
