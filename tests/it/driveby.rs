//! Drive-by signouts (§8): refused with 403 or asked to confirm, and nothing changes.

use crate::support::*;

const JAR: &str = "DACS:EX::FEDROOT:bobo=1";

fn request(site: &str, mode: &str) -> Cgi {
    Cgi::get("").cookie(JAR).env("HTTP_SEC_FETCH_SITE", site).env("HTTP_SEC_FETCH_MODE", mode)
}

/// A top-level navigation from `site`: with the user's click (`Sec-Fetch-User: ?1`) or not.
fn navigation(site: &str, query: &str, clicked: bool) -> Cgi {
    let cgi = Cgi::get(query)
        .cookie(JAR)
        .env("HTTP_SEC_FETCH_SITE", site)
        .env("HTTP_SEC_FETCH_MODE", "navigate")
        .env("HTTP_SEC_FETCH_DEST", "document");
    if clicked { cgi.env("HTTP_SEC_FETCH_USER", "?1") } else { cgi }
}

#[test]
fn navigate_refuses_cross_site_and_same_site_subresources_and_prefetches() {
    for site in ["cross-site", "same-site"] {
        for (mode, dest) in [("no-cors", "image"), ("cors", "empty"), ("navigate", "iframe")] {
            let out = request(site, mode).env("HTTP_SEC_FETCH_DEST", dest).example("").run();
            out.status(403).common_headers();
            assert!(out.set_cookies().is_empty(), "{site} {mode} {dest}");
        }
    }
    let same = request("same-origin", "cors").example("").run();
    same.status(200);
    assert_eq!(same.set_cookies().len(), 1);
    for (var, value) in [
        ("HTTP_SEC_PURPOSE", "prefetch"),
        ("HTTP_PURPOSE", "prefetch"),
        ("HTTP_SEC_PURPOSE", "prefetch;prerender"),
        ("HTTP_X_MOZ", "prefetch"),
        ("HTTP_X_PURPOSE", "preview"),
    ] {
        let out = request("same-origin", "navigate").env(var, value).example("").run();
        out.status(403).common_headers();
        assert!(out.set_cookies().is_empty(), "{var}: {value}");
    }
    // No Fetch Metadata at all: scripts and old browsers.
    Cgi::get("").cookie(JAR).example("").run().status(200);
}

/// A click on a link elsewhere signs out at once, as a portal's link must.
#[test]
fn a_click_from_another_site_signs_out_at_once() {
    for site in ["cross-site", "same-site"] {
        let out = navigation(site, "", true).example("").run();
        out.status(200).common_headers();
        assert_eq!(out.expired(), ["DACS:EX::FEDROOT:bobo"], "{site}");
    }
}

/// A navigation another site made without the user (a script, a meta refresh, an
/// auto-submitted form) changes nothing: the page asks, and its button sends the same
/// arguments again, as a POST from this origin.
#[test]
fn a_navigation_without_a_click_gets_a_confirmation_page() {
    let query = "DACS_USERNAME=bobo&DACS_SIGNOUT_HANDLER=%2Flocal%2F&COOKIE_SYNTAX=cookie_netscape";
    for site in ["cross-site", "same-site"] {
        let out = navigation(site, query, false).example("").run();
        out.status(200).common_headers();
        assert!(out.set_cookies().is_empty(), "{site}: nothing changes");
        assert!(
            out.log.contains("driveby=confirm") && out.log.contains("status=200"),
            "{}",
            out.log
        );
        let form = "<form method=\"post\" action=\"/cgi-bin/dacs/dacs_signout\">";
        assert!(out.body.contains(form), "{}", out.body);
        for field in [
            "name=\"DACS_USERNAME\" value=\"bobo\"",
            "name=\"DACS_SIGNOUT_HANDLER\" value=\"/local/\"",
            "name=\"COOKIE_SYNTAX\" value=\"COOKIE_NETSCAPE\"",
        ] {
            assert!(out.body.contains(field), "{field}: {}", out.body);
        }
        assert_eq!(out.body.matches("<button").count(), 1);
    }
    // The button: the same arguments, from this origin, by the user.
    let confirmed = Cgi::post("", "DACS_USERNAME=bobo&COOKIE_SYNTAX=COOKIE_NETSCAPE")
        .cookie(JAR)
        .env("HTTP_SEC_FETCH_SITE", "same-origin")
        .env("HTTP_SEC_FETCH_MODE", "navigate")
        .env("HTTP_SEC_FETCH_USER", "?1")
        .example("")
        .run();
    confirmed.status(200).common_headers();
    assert_eq!(confirmed.expired(), ["DACS:EX::FEDROOT:bobo"]);
    // Values that are markup stay values.
    let out = navigation("cross-site", "DACS_USERNAME=%22%3E%3Cscript%3E", false).example("").run();
    assert!(out.body.contains("value=\"&quot;&gt;&lt;script&gt;\""), "{}", out.body);
}

/// XML and JSON callers get no page to click: the confirmation is a 403 for them.
#[test]
fn xml_and_json_callers_get_403_instead_of_a_confirmation() {
    for format in ["JSON", "XML"] {
        let out = navigation("cross-site", &format!("FORMAT={format}"), false).example("").run();
        out.status(403).common_headers();
        assert!(out.set_cookies().is_empty());
        assert!(out.body.contains("403"), "{}", out.body);
    }
}

#[test]
fn deny_and_allow() {
    let deny = "SIGNOUT_CROSS_SITE \"deny\"";
    navigation("cross-site", "", true).example(deny).run().status(403);
    navigation("same-site", "", true).example(deny).run().status(403);
    navigation("same-origin", "", true).example(deny).run().status(200);
    navigation("none", "", true).example(deny).run().status(200);
    Cgi::get("").cookie(JAR).example(deny).run().status(200);
    let allow = "SIGNOUT_CROSS_SITE \"allow\"";
    let out = request("cross-site", "no-cors").example(allow).run();
    out.status(200);
    assert_eq!(out.set_cookies().len(), 1);
    navigation("cross-site", "", false).example(allow).run().status(200);
    // The default, spelled out, is the default.
    let out = navigation("cross-site", "", false).example("SIGNOUT_CROSS_SITE \"navigate\"").run();
    assert!(out.log.contains("driveby=confirm"), "{}", out.log);
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
