//! Drive-by signouts (§8): refused with 403, and nothing changes.

use crate::support::*;

const JAR: &str = "DACS:EX::FEDROOT:bobo=1";

fn request(site: &str, mode: &str) -> Cgi {
    Cgi::get("").cookie(JAR).env("HTTP_SEC_FETCH_SITE", site).env("HTTP_SEC_FETCH_MODE", mode)
}

#[test]
fn navigate_refuses_cross_site_subresources_and_prefetches() {
    let img = request("cross-site", "no-cors").example("").run();
    img.status(403).common_headers();
    assert!(img.set_cookies().is_empty());
    let link = request("cross-site", "navigate").example("").run();
    link.status(200);
    assert_eq!(link.set_cookies().len(), 1);
    let same = request("same-origin", "cors").example("").run();
    same.status(200);
    for (var, value) in [
        ("HTTP_SEC_PURPOSE", "prefetch"),
        ("HTTP_PURPOSE", "prefetch"),
        ("HTTP_SEC_PURPOSE", "prefetch;prerender"),
    ] {
        let out = request("same-origin", "navigate").env(var, value).example("").run();
        out.status(403).common_headers();
        assert!(out.set_cookies().is_empty());
    }
    let frame =
        request("cross-site", "navigate").env("HTTP_SEC_FETCH_DEST", "iframe").example("").run();
    frame.status(403).common_headers();
    let top =
        request("cross-site", "navigate").env("HTTP_SEC_FETCH_DEST", "document").example("").run();
    top.status(200);
    // No Fetch Metadata at all: scripts and old browsers.
    Cgi::get("").cookie(JAR).example("").run().status(200);
}

#[test]
fn deny_and_allow() {
    request("cross-site", "navigate").example("SIGNOUT_CROSS_SITE \"deny\"").run().status(403);
    request("same-site", "navigate").example("SIGNOUT_CROSS_SITE \"deny\"").run().status(200);
    request("cross-site", "no-cors").example("SIGNOUT_CROSS_SITE \"allow\"").run().status(200);
}

#[test]
fn refusal_answers_in_the_requested_format() {
    let out = Cgi::get("FORMAT=JSON")
        .cookie(JAR)
        .env("HTTP_SEC_FETCH_SITE", "cross-site")
        .env("HTTP_SEC_FETCH_MODE", "cors")
        .example("")
        .run();
    out.status(403).common_headers();
    assert!(out.body.contains("\"code\":\"403\""));
}
