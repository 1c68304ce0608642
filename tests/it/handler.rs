//! Where the browser goes (§6): the allow rules, the refusal list, the directive forms.

use crate::support::*;

const JAR: &str = "DACS:EX::FEDROOT:bobo=s3cr3t; theme=dark";
const DACS_ARGS: &str = "DACS_VERSION=1.4&DACS_FEDERATION=EX&DACS_JURISDICTION=FEDROOT";

/// Every allow-rule form at once.
const RULES: &str = "SIGNOUT_HANDLER_ALLOW \"https://sso.example.org\"\n\
    SIGNOUT_HANDLER_ALLOW \"https://apps.example.org/bye/\"\n\
    SIGNOUT_HANDLER_ALLOW \"/local/\"\n\
    SIGNOUT_HANDLER_ALLOW \"re:https://x\\\\.example\\\\.org/done(\\\\?.*)?\"";

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn signout_to(handler: &str) -> Output {
    Cgi::get(&format!("DACS_SIGNOUT_HANDLER={}", encode(handler))).example(RULES).cookie(JAR).run()
}

#[test]
fn each_allow_rule_form_redirects_with_the_dacs_arguments() {
    let cases = [
        (
            "https://sso.example.org/after?x=1#top",
            format!("https://sso.example.org/after?x=1&{DACS_ARGS}#top"),
        ),
        (
            "https://apps.example.org/bye/now",
            format!("https://apps.example.org/bye/now?{DACS_ARGS}"),
        ),
        ("/local/done", format!("https://portal.example.org/local/done?{DACS_ARGS}")),
        ("https://x.example.org/done?ok=1", format!("https://x.example.org/done?ok=1&{DACS_ARGS}")),
    ];
    for (handler, location) in cases {
        let out = signout_to(handler);
        out.status(302).common_headers();
        assert_eq!(out.header("Location"), Some(location.as_str()), "{handler}");
        assert_eq!(out.expired(), ["DACS:EX::FEDROOT:bobo"]);
        assert!(out.log.contains("handler=argument"), "{}", out.log);
    }
}

#[test]
fn hostile_handlers_are_refused_and_the_signout_still_happens() {
    let hostile = [
        "javascript:alert(document.cookie)",
        "JAVASCRIPT:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/",
        "/\\evil.example/",
        "https:\\\\evil.example/",
        "https://sso.example.org@evil.example/",
        "https://evil.example\\@sso.example.org/",
        "/local/%2f%2fevil.example/",
        "/local/%5Cevil.example/",
        "/local/%09/evil",
        "https://sso.example.org/%0d%0aSet-Cookie:%20x=y",
        "https://sso.example.org/\r\nSet-Cookie: x=y",
        "\thttps://sso.example.org/",
        "https://sso.example.org.evil.example/",
        "https://sso.example.org%2eevil.example/",
        "https://ѕso.example.org/",
        "http://sso.example.org/",
        "https://apps.example.org/bye/../admin/",
        "https://apps.example.org/bye/%2e%2e/admin/",
        "https://apps.example.org/byebye/",
        "/localhost/",
        "https://evil.example/?https://x.example.org/done",
        "https://x.example.org.evil.example/done",
        "https://x.example.org/done/../../evil",
        "ftp://sso.example.org/",
    ];
    for handler in hostile {
        let out = signout_to(handler);
        out.status(200).common_headers();
        assert_eq!(out.header("Location"), None, "{handler:?} was followed");
        assert_eq!(out.expired(), ["DACS:EX::FEDROOT:bobo"], "{handler:?}");
        assert!(out.log.contains("handler=refused-"), "{handler:?}: {}", out.log);
        assert!(out.body.contains("You have been signed out of federation EX"));
    }
}

#[test]
fn no_rule_means_no_argument_handler() {
    let out = Cgi::get("DACS_SIGNOUT_HANDLER=https%3A%2F%2Fportal.example.org%2F")
        .example("")
        .cookie(JAR)
        .run();
    out.status(200).common_headers();
    assert!(out.log.contains("handler=refused-not-allowed/builtin"), "{}", out.log);
}

#[test]
fn a_refused_argument_falls_back_to_the_directive() {
    let out = Cgi::get("DACS_SIGNOUT_HANDLER=%2F%2Fevil.example")
        .example(&format!("{RULES}\nSIGNOUT_HANDLER \"url https://portal.example.org/bye\""))
        .cookie(JAR)
        .run();
    out.status(302);
    assert_eq!(
        out.header("Location"),
        Some(format!("https://portal.example.org/bye?{DACS_ARGS}").as_str())
    );
}

#[test]
fn directive_url_relative_becomes_absolute() {
    // A CGI Location that is a bare path is a server-side redirect: the cookies would be lost.
    let out = Cgi::get("").example("SIGNOUT_HANDLER \"url /goodbye.html\"").cookie(JAR).run();
    out.status(302);
    assert_eq!(
        out.header("Location"),
        Some(format!("https://portal.example.org/goodbye.html?{DACS_ARGS}").as_str())
    );
    let out = Cgi::get("")
        .example("SIGNOUT_HANDLER \"url /goodbye.html\"")
        .env("HTTPS", "off")
        .env("SERVER_PORT", "8080")
        .cookie(JAR)
        .run();
    assert_eq!(
        out.header("Location"),
        Some(format!("http://portal.example.org:8080/goodbye.html?{DACS_ARGS}").as_str())
    );
}

#[test]
fn directive_file_and_message() {
    let dir = TempDir::new("page");
    let page = dir.write("bye.html", "<!DOCTYPE html><title>Bye</title><p>Custom goodbye</p>");
    let out = Cgi::get("")
        .example(&format!("SIGNOUT_HANDLER \"file {}\"", page.display()))
        .cookie(JAR)
        .run();
    out.status(200).common_headers();
    assert_eq!(out.body, "<!DOCTYPE html><title>Bye</title><p>Custom goodbye</p>");
    assert_eq!(out.expired(), ["DACS:EX::FEDROOT:bobo"]);

    let out =
        Cgi::get("").example("SIGNOUT_HANDLER \"file /nonexistent/bye.html\"").cookie(JAR).run();
    out.status(200).common_headers();
    assert!(out.body.contains("You have been signed out"));
    assert!(out.log.contains("handler_error="), "{}", out.log);
    assert!(!out.body.contains("nonexistent"));

    let out = Cgi::get("")
        .example("SIGNOUT_HANDLER \"message Goodbye &lt;b>&amp; \\\"thanks\\\"&lt;/b>\"")
        .cookie(JAR)
        .run();
    out.status(200).common_headers();
    assert!(
        out.body.contains("Goodbye &lt;b&gt;&amp; &quot;thanks&quot;&lt;/b&gt;"),
        "{}",
        out.body
    );
}

#[test]
fn handlers_only_for_html_and_only_after_a_removal() {
    for format in ["XML", "JSON"] {
        let out = Cgi::get(&format!("FORMAT={format}&DACS_SIGNOUT_HANDLER=%2Flocal%2F"))
            .example(&format!("{RULES}\nSIGNOUT_HANDLER \"url https://portal.example.org/bye\""))
            .cookie(JAR)
            .run();
        out.status(200).common_headers();
        assert_eq!(out.header("Location"), None);
        assert!(out.log.contains("handler=ignored-not-html"), "{}", out.log);
    }
    let out =
        Cgi::get("DACS_SIGNOUT_HANDLER=%2Flocal%2F").example(RULES).cookie("theme=dark").run();
    out.status(200).common_headers();
    assert_eq!(out.header("Location"), None);
    assert!(out.body.contains("You are not authenticated within federation EX"), "{}", out.body);
}

#[test]
fn a_bad_regex_rule_is_a_configuration_error() {
    let out = Cgi::get("DACS_SIGNOUT_HANDLER=%2Fx")
        .example("SIGNOUT_HANDLER_ALLOW \"re:(unclosed\"")
        .cookie(JAR)
        .run();
    out.status(500).common_headers();
    assert!(out.set_cookies().is_empty());
}

/// A `)` in a `re:` rule cannot close the anchoring group and allow any URL: the expression is
/// judged on its own, when the configuration is read, with its line.
#[test]
fn a_regex_rule_cannot_escape_its_anchors() {
    let rule = "SIGNOUT_HANDLER_ALLOW \"re:https://a\\\\.example/x)|(.*\"";
    let out = Cgi::get("DACS_SIGNOUT_HANDLER=https%3A%2F%2Fevil.example%2F")
        .example(rule)
        .cookie(JAR)
        .run();
    out.status(500).common_headers();
    assert_eq!(out.header("Location"), None);
    assert!(
        out.log.contains("line 6: SIGNOUT_HANDLER_ALLOW") && out.log.contains("unopened group"),
        "{}",
        out.log
    );
}

/// A handler longer than 2 KiB is not followed: a CGI header line past 8 KiB makes Apache
/// answer 500 without the expiring cookies.
#[test]
fn a_handler_longer_than_2_kib_falls_back_to_the_default_page() {
    let long = format!("https://sso.example.org/bye?{}", "x".repeat(2100));
    let out = Cgi::get(&format!("DACS_SIGNOUT_HANDLER={}", encode(&long)))
        .example(RULES)
        .cookie(JAR)
        .run();
    out.status(200).common_headers();
    assert_eq!(out.header("Location"), None);
    assert!(!out.expired().is_empty());
    assert!(out.log.contains("handler=refused-too-long/builtin"), "{}", out.log);
}

const CLIENTS: &str = "SIGNOUT_CLIENT \"wiki https://wiki.example.org/logged-out?from=idm\"\n\
                       SIGNOUT_CLIENT \"shop https://shop.example.net/bye\"";

/// FIWARE Keyrock's sign-out for registered apps: the browser goes to exactly the URL
/// registered for `client_id` (no DACS arguments), whether or not anything was removed; an
/// unknown `client_id` is a 401 and changes nothing.
#[test]
fn keyrock_clients_go_to_exactly_their_registered_url() {
    for (cgi, what) in [
        (Cgi::method("DELETE", "client_id=wiki"), "DELETE"),
        (Cgi::post("_method=DELETE&client_id=wiki", ""), "POST ?_method=DELETE"),
        (Cgi::post("", "_method=DELETE&client_id=wiki"), "POST with _method in the form"),
        (Cgi::get("client_id=wiki"), "GET"),
    ] {
        let out = cgi.example(CLIENTS).cookie(JAR).run();
        out.status(302).common_headers();
        assert_eq!(
            out.header("Location"),
            Some("https://wiki.example.org/logged-out?from=idm"),
            "{what}"
        );
        assert_eq!(out.expired(), ["DACS:EX::FEDROOT:bobo"], "{what}");
        assert!(out.log.contains("handler=client"), "{what}: {}", out.log);
    }
    // Nothing to remove: still there, as Keyrock does.
    let out = Cgi::method("DELETE", "client_id=shop").example(CLIENTS).cookie("theme=dark").run();
    out.status(302);
    assert_eq!(out.header("Location"), Some("https://shop.example.net/bye"));
    // Unknown: 401, nothing changes; and DELETE is Keyrock's form only.
    let out = Cgi::method("DELETE", "client_id=evil").example(CLIENTS).cookie(JAR).run();
    out.status(401).common_headers();
    assert!(out.set_cookies().is_empty());
    let out = Cgi::method("DELETE", "").example(CLIENTS).cookie(JAR).run();
    out.status(400).common_headers();
    assert!(out.set_cookies().is_empty());
    // XML and JSON never redirect.
    let out = Cgi::get("client_id=wiki&FORMAT=JSON").example(CLIENTS).cookie(JAR).run();
    out.status(200);
    assert_eq!(out.header("Location"), None);
}

#[test]
fn a_signout_client_must_be_an_id_and_a_url() {
    for bad in [
        "SIGNOUT_CLIENT \"wiki\"",
        "SIGNOUT_CLIENT \"wiki javascript:alert(1)\"",
        "SIGNOUT_CLIENT \"w https://u:p@h/\"",
    ] {
        let out = Cgi::get("client_id=wiki").example(bad).cookie(JAR).run();
        out.status(500);
        assert!(out.log.contains("SIGNOUT_CLIENT"), "{bad}: {}", out.log);
    }
}
