//! The JSON answer (`dtd/dacs_current_credentials.schema.json`). Written by hand, in a fixed
//! key order; strings are escaped by `serde_json`, straight into the document (a `Value` and a
//! `String` per field cost more than the rest of a 1,000-cookie signout; BENCHMARKS.md).

use super::Report;
use crate::cgi::Response;
use crate::credentials::Credential;

fn string(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(out, text).expect("a string serialises into a Vec");
}

fn list(out: &mut Vec<u8>, credentials: &[Credential]) {
    out.push(b'[');
    for (i, c) in credentials.iter().enumerate() {
        let id = c.identity;
        out.extend_from_slice(if i == 0 { &b"{\"federation\":"[..] } else { b",{\"federation\":" });
        string(out, id.federation);
        out.extend_from_slice(b",\"jurisdiction\":");
        string(out, id.jurisdiction);
        out.extend_from_slice(b",\"username\":");
        string(out, id.username);
        out.push(b'}');
    }
    out.push(b']');
}

pub fn report(report: &Report) -> String {
    // Each credential takes about 60 bytes plus its names.
    let names: usize = report.removed.iter().chain(report.remaining).map(|c| c.name.len()).sum();
    let mut out =
        Vec::with_capacity(256 + names + 60 * (report.removed.len() + report.remaining.len()));
    out.extend_from_slice(b"{\"dacs_current_credentials\":{\"federation_name\":");
    string(&mut out, report.federation);
    if let Some(domain) = report.federation_domain {
        out.extend_from_slice(b",\"federation_domain\":");
        string(&mut out, domain);
    }
    out.extend_from_slice(b",\"jurisdiction_name\":");
    string(&mut out, report.jurisdiction);
    out.extend_from_slice(b",\"credentials\":");
    list(&mut out, report.remaining);
    out.extend_from_slice(b",\"signed_out\":");
    list(&mut out, report.removed);
    out.extend_from_slice(b"}}\n");
    String::from_utf8(out).expect("JSON written from UTF-8 strings is UTF-8")
}

pub fn common_status(code: u16, message: &str) -> String {
    let mut out = format!(
        "{{\"dacs_current_credentials\":{{\"common_status\":{{\"context\":\"dacs_signout\",\"code\":\"{code}\",\"message\":"
    )
    .into_bytes();
    string(&mut out, message);
    out.extend_from_slice(b"}}}\n");
    String::from_utf8(out).expect("JSON written from UTF-8 strings is UTF-8")
}

pub fn response(document: String) -> Response {
    let mut r = Response::new(200, "OK");
    r.header("Content-Type", "application/json");
    r.body = document.into_bytes();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Identity;

    #[test]
    fn writes_the_documented_shape_and_escapes() {
        let credential = |name: &'static str| Credential {
            name,
            identity: Identity::parse(&name[5..]).unwrap(),
        };
        let removed = [credential("DACS:EX::J:<b>\"x\\y"), credential("DACS:EX::J:bob")];
        let remaining = [credential("DACS:EX::K:amy")];
        let report = Report {
            federation: "EX",
            jurisdiction: "J",
            federation_domain: Some("ex.org"),
            removed: &removed,
            remaining: &remaining,
        };
        assert_eq!(
            super::report(&report),
            "{\"dacs_current_credentials\":{\"federation_name\":\"EX\",\"federation_domain\":\"ex.org\",\
             \"jurisdiction_name\":\"J\",\"credentials\":[{\"federation\":\"EX\",\"jurisdiction\":\"K\",\
             \"username\":\"amy\"}],\"signed_out\":[{\"federation\":\"EX\",\"jurisdiction\":\"J\",\
             \"username\":\"<b>\\\"x\\\\y\"},{\"federation\":\"EX\",\"jurisdiction\":\"J\",\
             \"username\":\"bob\"}]}}\n"
        );
        let empty = Report { federation_domain: None, removed: &[], remaining: &[], ..report };
        assert_eq!(
            super::report(&empty),
            "{\"dacs_current_credentials\":{\"federation_name\":\"EX\",\"jurisdiction_name\":\"J\",\
             \"credentials\":[],\"signed_out\":[]}}\n"
        );
        assert_eq!(
            common_status(400, "bad \"x\""),
            "{\"dacs_current_credentials\":{\"common_status\":{\"context\":\"dacs_signout\",\"code\":\"400\",\
             \"message\":\"bad \\\"x\\\"\"}}}\n"
        );
    }
}
