//! A real browser (headless Chromium through chromedriver) signing out through the program
//! mounted under Apache (mod_cgid, Debian's default).
//!
//! Two sites on one server: `http://127.0.0.1:PORT` is the portal and the program's own
//! origin; `http://localhost:PORT` is another site (another host), whose page embeds the
//! signout URL as an image. The portal's sign-in page is a static page that Apache serves with
//! the credential cookies in `Set-Cookie` headers (test-only configuration, appended to the
//! example).

use std::time::Instant;

use crate::support::browser::{Browser, Cookie};
use crate::support::servers::{Request, Server, ServerKind};
use crate::support::{EXAMPLE, artifacts_dir, conf, observe};

const CREDENTIALS: [&str; 2] = ["DACS:EX::DSS:alice", "DACS:EX::FEDROOT:alice"];
const DACS_ARGS: &str = "DACS_VERSION=1.4&DACS_FEDERATION=EX&DACS_JURISDICTION=FEDROOT";

/// The portal: its script shows which cookies it can see (for the screenshots).
const PORTAL: &str = r#"<!DOCTYPE html>
<html lang="en"><meta charset="utf-8"><title>Portal</title>
<style>body{font-family:sans-serif;margin:2em}#state{font-size:1.3em;padding:.5em;background:#eef}</style>
<h1>Example portal</h1>
<p id="state">…</p>
<ul>
<li><a id="signin" href="/signin.html">Sign in as alice</a>
<li><a id="signout" href="/cgi-bin/dacs_signout?DACS_SIGNOUT_HANDLER=%2Fhandler.html">Sign out</a>
<li><a id="foreign" href="/cgi-bin/dacs_signout?DACS_SIGNOUT_HANDLER=http%3A%2F%2Flocalhost%3A@PORT@%2Fhandler.html">Sign out, then go to another site</a>
</ul>
<script>
const names = document.cookie.split("; ").filter(c => c).map(c => c.split("=")[0]);
const dacs = names.filter(n => n.startsWith("DACS:"));
document.getElementById("state").textContent =
  (dacs.length ? "Signed in: " + dacs.join(", ") : "Not signed in") + " | other cookies: " +
  (names.filter(n => !n.startsWith("DACS:")).join(", ") || "none");
</script>
"#;

const SIGNIN: &str = r#"<!DOCTYPE html>
<html lang="en"><meta charset="utf-8"><title>Signed in</title>
<h1>Signed in as alice</h1><p><a id="back" href="/">Back to the portal</a>
"#;

const HANDLER: &str = r#"<!DOCTYPE html>
<html lang="en"><meta charset="utf-8"><title>Goodbye</title>
<h1 id="goodbye">You have signed out</h1>
"#;

/// Served from http://localhost:PORT: another site, embedding the signout URL as an image.
const OTHER_SITE: &str = r#"<!DOCTYPE html>
<html lang="en"><meta charset="utf-8"><title>Another site</title>
<h1>Another site</h1>
<img id="driveby" alt="" src="http://127.0.0.1:@PORT@/cgi-bin/dacs_signout?via=img">
"#;

/// Test-only Apache configuration: the sign-in page sets two credentials and an unrelated
/// cookie, server-side (not HttpOnly, so that the portal's script can show them).
const SIGNIN_CONFIG: &str = r#"
# --- test fixture, not part of the mount: the portal's sign-in page -------
# (mod_headers: loaded by the example)
<Location "/signin.html">
    # Never from the browser's cache: a heuristically fresh copy (a static file, no
    # Cache-Control) is shown without a request, and then no cookie is set.
    Header always set Cache-Control "no-store"
    Header always add Set-Cookie "DACS:EX::FEDROOT:alice=credential-1; Path=/"
    Header always add Set-Cookie "DACS:EX::DSS:alice=credential-2; Path=/"
    Header always add Set-Cookie "theme=dark; Path=/"
</Location>
"#;

fn start_portal() -> Server {
    let settings = "COOKIE_NO_DOMAIN \"yes\"\nSECURE_MODE \"off\"\nSIGNOUT_HANDLER_ALLOW \"/\"";
    ServerKind::ApacheCgid
        .setup()
        .conf(&conf(&format!("{EXAMPLE}\n{settings}")))
        .page("index.html", PORTAL)
        .page("signin.html", SIGNIN)
        .page("handler.html", HANDLER)
        .page("other-site.html", OTHER_SITE)
        .append_config(SIGNIN_CONFIG)
        .start()
}

/// The names of the portal's cookies in the browser's jar, sorted.
fn portal_cookies(browser: &Browser) -> Vec<String> {
    let mut names: Vec<String> = browser
        .jar()
        .into_iter()
        .filter(|c: &Cookie| c.domain == "127.0.0.1")
        .map(|c| c.name)
        .collect();
    names.sort();
    names
}

#[track_caller]
fn assert_signed_in(browser: &Browser, when: &str) {
    assert_eq!(portal_cookies(browser), [CREDENTIALS[0], CREDENTIALS[1], "theme"], "{when}");
}

/// Clicks "Sign in" on the portal and comes back to it.
fn sign_in(browser: &Browser, server: &Server) {
    browser.goto(&server.url("127.0.0.1", "/"));
    browser.click("#signin");
    browser.wait_for_url(&server.url("127.0.0.1", "/signin.html"));
    browser.click("#back");
    browser.wait_for("the portal to show alice", |b| {
        b.page_source().contains("Signed in: DACS:").then_some(())
    });
    assert_signed_in(browser, "after signing in");
}

#[test]
fn a_browser_signs_out_and_a_drive_by_does_not() {
    let started = Instant::now();
    let server = start_portal();
    let browser = Browser::start();
    let (chromium, chromedriver) = browser.versions();
    observe("browser", "versions", format!("Chromium {chromium}, chromedriver {chromedriver}"));
    let shots = artifacts_dir();

    sign_in(&browser, &server);
    browser.screenshot(&shots.join("portal-signed-in.png"));

    // Another site embeds the signout URL as an image: refused (403), nothing expires.
    browser.goto(&server.url("localhost", "/other-site.html"));
    let access = wait_for_access_line(&server, "/cgi-bin/dacs_signout?via=img");
    assert!(access.contains("\" 403 "), "the image request was not refused: {access}");
    let line = server.program_log_line("status=403");
    observe("browser", "cross-site <img> of the signout URL", format!("{access} / {line}"));
    assert_signed_in(&browser, "after another site embedded the signout URL as an image");

    // The user clicks "Sign out": the handler page, the credentials gone, the theme kept.
    browser.goto(&server.url("127.0.0.1", "/"));
    browser.click("#signout");
    let landed = browser.wait_for_url(&server.url("127.0.0.1", "/handler.html"));
    assert_eq!(landed, server.url("127.0.0.1", &format!("/handler.html?{DACS_ARGS}")));
    assert!(browser.page_source().contains("You have signed out"));
    assert_eq!(
        portal_cookies(&browser),
        ["theme"],
        "the credentials are gone, the unrelated cookie stays"
    );
    browser.goto(&server.url("127.0.0.1", "/"));
    browser.wait_for("the portal to show no credentials", |b| {
        b.page_source().contains("Not signed in").then_some(())
    });
    browser.screenshot(&shots.join("portal-signed-out.png"));

    // A handler on another host is not followed: the built-in page, on the program's origin.
    sign_in(&browser, &server);
    browser.click("#foreign");
    let page = browser.wait_for_url(&server.url("127.0.0.1", "/cgi-bin/dacs_signout?"));
    assert!(browser.page_source().contains("Signed out"), "not the built-in page at {page}");
    assert_eq!(portal_cookies(&browser), ["theme"], "the signout itself still happens");
    let line = server.program_log_line("handler=refused-not-allowed");
    observe("browser", "foreign DACS_SIGNOUT_HANDLER", &line);
    browser.screenshot(&shots.join("signout-foreign-handler-refused.png"));

    drop(browser);
    observe("browser", "whole browser test", format!("{:?}", started.elapsed()));
}

/// The access log line of a GET for `target` (bounded wait).
#[track_caller]
fn wait_for_access_line(server: &Server, target: &str) -> String {
    wait_for_access(server, "GET", target)
}

/// The access log line of a `method` request for `target` (bounded wait).
#[track_caller]
fn wait_for_access(server: &Server, method: &str, target: &str) -> String {
    wait_for_another_access(server, method, target, 0)
}

/// How many `method` requests for `target` the access log holds.
fn accesses(server: &Server, method: &str, target: &str) -> usize {
    let needle = format!("\"{method} {target} ");
    server.log("access.log").lines().filter(|l| l.contains(&needle)).count()
}

/// The access log line of the `method` request for `target` after the first `seen` ones
/// (bounded wait).
#[track_caller]
fn wait_for_another_access(server: &Server, method: &str, target: &str, seen: usize) -> String {
    let needle = format!("\"{method} {target} ");
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(line) =
            server.log("access.log").lines().filter(|l| l.contains(&needle)).nth(seen)
        {
            return line.to_owned();
        }
        assert!(Instant::now() < deadline, "no request for {target}:\n{}", server.all_logs());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// What another site's page does with the signout URL (`@SIGNOUT@`), and how the request
/// arrives: (case, page, method, whether it is a navigation).
const ATTACKS: &[(&str, &str, &str, bool)] = &[
    ("img", r#"<img alt="" src="@SIGNOUT@?via=img">"#, "GET", false),
    ("iframe", r#"<iframe src="@SIGNOUT@?via=iframe"></iframe>"#, "GET", false),
    (
        "fetch",
        r#"<script>fetch("@SIGNOUT@?via=fetch", {mode: "no-cors", credentials: "include"})</script>"#,
        "GET",
        false,
    ),
    ("script", r#"<script>location.href = "@SIGNOUT@?via=script"</script>"#, "GET", true),
    ("meta", r#"<meta http-equiv="refresh" content="0;url=@SIGNOUT@?via=meta">"#, "GET", true),
    (
        "form",
        r#"<form id="f" method="post" action="@SIGNOUT@?via=form"><input type="hidden" name="DACS_USERNAME" value="alice"></form><script>document.getElementById("f").submit()</script>"#,
        "POST",
        true,
    ),
];

/// §8 in a real browser. Another site is `http://localhost:OTHER` (another host: cross-site);
/// a sibling is `http://127.0.0.1:OTHER` (another port of the same host: another origin, the
/// same site, as a sibling subdomain is). Neither can sign the user out with an `<img>`, an
/// `<iframe>` or a `fetch` (403), nor by navigating the browser without a click (a script, a
/// meta refresh, an auto-submitted form: the confirmation page, nothing changed); the
/// confirmation's button then signs out, and so does a link the user clicks.
#[test]
fn another_site_cannot_sign_the_user_out_without_a_click() {
    let server = start_portal();
    let signout = server.url("127.0.0.1", "/cgi-bin/dacs_signout");
    let mut pages: Vec<(String, String)> = ATTACKS
        .iter()
        .map(|(case, page, _, _)| {
            let html = format!(
                "<!DOCTYPE html><title>{case}</title>{}",
                page.replace("@SIGNOUT@", &signout)
            );
            (format!("/{case}.html"), html)
        })
        .collect();
    let link = format!(
        "<!DOCTYPE html><title>link</title><a id=\"go\" href=\"{signout}?via=click\">Sign out</a>"
    );
    pages.push(("/click.html".to_owned(), link));
    let other = crate::support::site::Site::start(pages);
    let browser = Browser::start();
    let shots = artifacts_dir();
    sign_in(&browser, &server);

    for (host, relation) in [("localhost", "cross-site"), ("127.0.0.1", "same-site")] {
        for (case, _, method, navigates) in ATTACKS {
            let target = format!("/cgi-bin/dacs_signout?via={case}");
            let seen = accesses(&server, method, &target);
            browser.goto(&other.url(host, &format!("/{case}.html")));
            let access = wait_for_another_access(&server, method, &target, seen);
            if *navigates {
                assert!(access.contains("\" 200 "), "{relation} {case}: {access}");
                browser.wait_for_url(&signout);
                let page = browser.page_source();
                assert!(page.contains("Nothing has changed yet"), "{relation} {case}: {page}");
            } else {
                assert!(access.contains("\" 403 "), "{relation} {case} was not refused: {access}");
            }
            observe("browser", &format!("{relation} {case}"), &access);
            assert_signed_in(&browser, &format!("after a {relation} {case}"));
        }
        // The confirmation's one button, clicked by the user, signs out.
        let confirmed = accesses(&server, "POST", "/cgi-bin/dacs_signout");
        browser.goto(&other.url(host, "/script.html"));
        browser.wait_for_url(&signout);
        browser.screenshot(&shots.join(format!("driveby-{relation}-confirmation.png")));
        browser.click("#confirm");
        browser
            .wait_for("the signout page", |b| b.page_source().contains("Signed out").then_some(()));
        assert_eq!(portal_cookies(&browser), ["theme"], "{relation}: the confirmed signout");
        let access = wait_for_another_access(&server, "POST", "/cgi-bin/dacs_signout", confirmed);
        observe("browser", &format!("{relation} confirmation button"), &access);
        sign_in(&browser, &server);
        // A link the user clicks on the other site signs out at once.
        browser.goto(&other.url(host, "/click.html"));
        browser.click("#go");
        browser
            .wait_for("the signout page", |b| b.page_source().contains("Signed out").then_some(()));
        assert_eq!(portal_cookies(&browser), ["theme"], "{relation}: a click signs out at once");
        sign_in(&browser, &server);
    }
}

#[test]
fn base64_decodes() {
    use crate::support::browser::decode_base64;
    assert_eq!(decode_base64("").unwrap(), b"");
    assert_eq!(decode_base64("Zg==").unwrap(), b"f");
    assert_eq!(decode_base64("Zm8=").unwrap(), b"fo");
    assert_eq!(decode_base64("Zm9vYmFy").unwrap(), b"foobar");
    assert_eq!(decode_base64("iVBORw0K\nGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
    assert_eq!(decode_base64("+/+/").unwrap(), [0xfb, 0xff, 0xbf]);
    assert!(decode_base64("Zm9v!").is_none());
}

/// Keyrock's sign-out in a real browser: an app's page sends the user to
/// `/auth/external_logout` with its `client_id` (a POST with `_method=DELETE`, as Keyrock's
/// clients do); the user lands on exactly the URL registered for that app, signed out. An
/// unregistered id gets a 401 and changes nothing.
#[test]
fn a_keyrock_client_lands_on_its_registered_url() {
    let app = r#"<!DOCTYPE html><html lang="en"><meta charset="utf-8"><title>App</title>
<form id="known" method="post" action="/auth/external_logout?_method=DELETE&amp;client_id=wiki"><button id="signout">Sign out</button></form>
<form id="unknown" method="post" action="/auth/external_logout?_method=DELETE&amp;client_id=evil"><button id="evil">Sign out (unregistered)</button></form>
"#;
    let settings = "COOKIE_NO_DOMAIN \"yes\"\nSECURE_MODE \"off\"\nSIGNOUT_HANDLER_ALLOW \"/\"\n\
                    SIGNOUT_CLIENT \"wiki http://127.0.0.1:@PORT@/handler.html?from=wiki\"";
    let server = ServerKind::ApacheCgid
        .setup()
        .conf(&conf(&format!("{EXAMPLE}\n{settings}")))
        .page("index.html", PORTAL)
        .page("signin.html", SIGNIN)
        .page("handler.html", HANDLER)
        .page("app.html", app)
        .append_config(SIGNIN_CONFIG)
        .start();
    let browser = Browser::start();
    sign_in(&browser, &server);

    browser.goto(&server.url("127.0.0.1", "/app.html"));
    browser.click("#evil");
    browser
        .wait_for("the 401 page", |b| b.page_source().contains("401 Unauthorized").then_some(()));
    assert_signed_in(&browser, "after an unregistered client_id");

    browser.goto(&server.url("127.0.0.1", "/app.html"));
    browser.click("#signout");
    let landed = browser.wait_for_url(&server.url("127.0.0.1", "/handler.html"));
    assert_eq!(
        landed,
        server.url("127.0.0.1", "/handler.html?from=wiki"),
        "exactly the registered URL"
    );
    assert_eq!(portal_cookies(&browser), ["theme"]);
    browser.screenshot(&artifacts_dir().join("keyrock-client-signed-out.png"));
}

// --- a signout elsewhere, as a user meets it: the receiver and the guard ---------------------

const RECEIVER_TOKEN: &str = "hub-to-us-t0ken-for-the-browser";
const ALICE: &str = "DACS:EX::FEDROOT:alice";

/// A portal in front of a protected area. Its sign-in page does what a DACS sign-in does: a
/// new credential, with a value never seen before (set by the page's script, so that each
/// server serves it as a plain static file).
const GUARD_PORTAL: &str = r#"<!DOCTYPE html>
<html lang="en"><meta charset="utf-8"><title>Portal</title>
<style>body{font-family:sans-serif;margin:2em}#state{font-size:1.3em;padding:.5em;background:#eef}</style>
<h1>Example portal</h1>
<p id="state">…</p>
<ul>
<li><a id="signin" href="/signin.html">Sign in as alice</a>
<li><a id="protected" href="/protected/">The protected area</a>
</ul>
<script>
const names = document.cookie.split("; ").filter(c => c).map(c => c.split("=")[0]);
const dacs = names.filter(n => n.startsWith("DACS:"));
document.getElementById("state").textContent =
  dacs.length ? "Signed in: " + dacs.join(", ") : "Not signed in";
</script>
"#;

const GUARD_SIGNIN: &str = r#"<!DOCTYPE html>
<html lang="en"><meta charset="utf-8"><title>Signed in</title>
<script>
const value = "credential-" + Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
document.cookie = "DACS:EX::FEDROOT:alice=" + value + "; path=/";
</script>
<h1 id="signed-in">Signed in as alice</h1>
<p><a id="protected" href="/protected/">The protected area</a>
"#;

const GUARD_PROTECTED: &str = r#"<!DOCTYPE html>
<html lang="en"><meta charset="utf-8"><title>Protected</title>
<style>body{font-family:sans-serif;margin:2em}</style>
<h1 id="content">Protected content</h1>
<p>Only a signed-in user sees this page.
"#;

/// The value of alice's credential in the browser's jar, if any.
fn credential(browser: &Browser) -> Option<String> {
    browser.jar().into_iter().find(|c| c.domain == "127.0.0.1" && c.name == ALICE).map(|c| c.value)
}

/// Signs in on the portal; the new credential's value.
fn sign_in_to_the_portal(browser: &Browser, server: &Server) -> String {
    browser.goto(&server.url("127.0.0.1", "/"));
    browser.click("#signin");
    browser.wait_for("the sign-in page", |b| {
        b.page_source().contains("Signed in as alice").then_some(())
    });
    browser.wait_for("the new credential in the jar", credential)
}

/// Opens the protected area: served (the page) or refused (the guard's page, which says
/// why).
#[track_caller]
fn open_protected(browser: &Browser, server: &Server, served: bool, when: &str) {
    browser.goto(&server.url("127.0.0.1", "/protected/"));
    let name = server.kind.name();
    if served {
        browser.wait_for(&format!("{name}: the protected page, {when}"), |b| {
            b.page_source().contains("Protected content").then_some(())
        });
    } else {
        let page = browser.page_source();
        assert!(page.contains("You were signed out of federation EX"), "{name} {when}: {page}");
        assert!(!page.contains("Protected content"), "{name} {when}");
    }
}

/// The access log's lines for `GET /protected/` once there are `n` (lighttpd flushes its
/// access log every few seconds: one wait at the end rather than one per view).
#[track_caller]
fn protected_accesses(server: &Server, n: usize) -> Vec<String> {
    wait_for_another_access(server, "GET", "/protected/", n - 1);
    let needle = "\"GET /protected/ ";
    server.log("access.log").lines().filter(|l| l.contains(needle)).map(str::to_owned).collect()
}

/// SPEC §11–§13 as a user meets them, under each server: signed in on the portal, the
/// protected page is served; the hub tells the receiver the user signed out elsewhere; the
/// protected page is refused and the credential is gone from the browser's jar; a copy of it
/// in a second browser profile, taken before the signout, is refused too (and expired there);
/// signed in again, with a new credential, the page is served.
fn a_signout_elsewhere_ends_the_session_in_the_browser(kind: ServerKind) {
    let started = Instant::now();
    let name = kind.name();
    let settings = "COOKIE_NO_DOMAIN \"yes\"\nSECURE_MODE \"off\"\n\
                    REGISTRY \"sqlite:@ROOT@/var/registry/registry.db\"\n\
                    RELAY_SPOOL_DIR \"@ROOT@/var/spool\"";
    let server = kind
        .setup()
        .conf(&conf(&format!("{EXAMPLE}\n{settings}")))
        .receiver_token(RECEIVER_TOKEN)
        .guard()
        .dacs_standin()
        .page("index.html", GUARD_PORTAL)
        .page("signin.html", GUARD_SIGNIN)
        .page("protected/index.html", GUARD_PROTECTED)
        .start();
    let shots = artifacts_dir();
    let shot = |browser: &Browser, step: &str| {
        browser.screenshot(&shots.join(format!("guard-{name}-{step}.png")));
    };

    let browser = Browser::start();
    let first = sign_in_to_the_portal(&browser, &server);
    open_protected(&browser, &server, true, "signed in");
    shot(&browser, "1-served");

    // The same credential copied into another browser profile (another device, a stolen
    // cookie): served there too, before the signout.
    let copy = Browser::start();
    copy.goto(&server.url("127.0.0.1", "/"));
    copy.add_cookie(ALICE, &first);
    open_protected(&copy, &server, true, "the copy, before the signout");

    // The user signs out elsewhere: the hub calls the receiver, as the real hub does.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let call = server.ask(&Request::profiles_logout("alice", RECEIVER_TOKEN));
    assert_eq!(call.status, 200, "{name}: {}\n{}", call.text(), server.all_logs());

    open_protected(&browser, &server, false, "after the signout elsewhere");
    assert_eq!(credential(&browser), None, "{name}: the credential is still in the jar");
    shot(&browser, "2-refused");
    browser.goto(&server.url("127.0.0.1", "/"));
    browser.wait_for("the portal to show no credential", |b| {
        b.page_source().contains("Not signed in").then_some(())
    });

    open_protected(&copy, &server, false, "the copy, after the signout");
    assert_eq!(credential(&copy), None, "{name}: the copy is still in its jar");
    shot(&copy, "3-copy-refused");
    drop(copy);

    let second = sign_in_to_the_portal(&browser, &server);
    assert_ne!(first, second, "a new sign-in is a new credential");
    open_protected(&browser, &server, true, "signed in again");
    shot(&browser, "4-served-again");
    drop(browser);

    // Each view reached the server (none came from the browser's cache): served (200, or
    // 304 when the browser revalidated its copy), refused (401) twice, served.
    let lines = protected_accesses(&server, 5);
    let statuses: Vec<&str> = lines
        .iter()
        .map(|l| l.split("\" ").nth(1).unwrap_or("").split(' ').next().unwrap_or(""))
        .collect();
    let served = |s: &str| s == "200" || s == "304";
    assert!(
        lines.len() == 5
            && served(statuses[0])
            && served(statuses[1])
            && statuses[2..4] == ["401", "401"]
            && served(statuses[4]),
        "{name}: {statuses:?}\n{}",
        server.all_logs()
    );
    observe(
        "browser",
        &format!("{name}: GET /protected/ served, refused, served"),
        statuses.join(" "),
    );
    observe(
        "browser",
        &format!("{name}: signout elsewhere, whole test"),
        format!("{:?}", started.elapsed()),
    );
}

#[test]
fn a_signout_elsewhere_ends_the_session_under_apache_cgid() {
    a_signout_elsewhere_ends_the_session_in_the_browser(ServerKind::ApacheCgid);
}

#[test]
fn a_signout_elsewhere_ends_the_session_under_lighttpd() {
    a_signout_elsewhere_ends_the_session_in_the_browser(ServerKind::Lighttpd);
}

#[test]
fn a_signout_elsewhere_ends_the_session_under_nginx_fcgiwrap() {
    a_signout_elsewhere_ends_the_session_in_the_browser(ServerKind::Nginx);
}

/// The README's first command in a real browser: signed in on the demo's portal, the
/// protected page (behind the real `dacs_guard`) is served; "Another app tells our hub alice
/// signed out" makes the demo's `dacs_logout_hub` fan the logout out to its three receivers;
/// then the protected page is refused and alice's credential is gone from the jar.
#[test]
fn the_demo_in_a_browser_fans_a_logout_out_and_the_guard_ends_the_session() {
    let demo = crate::cli::Demo::start();
    let browser = Browser::start();
    let base = format!("http://127.0.0.1:{}", demo.port);
    let alice = |b: &Browser| {
        b.jar().into_iter().find(|c| c.name == "DACS:DEMO::DEMO:alice").map(|c| c.value)
    };
    browser.goto(&format!("{base}/"));
    browser.click("a.signin");
    browser.wait_for("alice's credential in the jar", alice);
    browser.click("#protected");
    browser.wait_for("the protected page", |b| {
        b.page_source().contains("id=\"welcome\"").then_some(())
    });

    browser.goto(&format!("{base}/"));
    browser.click("#hub-fanout");
    let page = browser.wait_for("the hub's fan-out page", |b| {
        Some(b.page_source()).filter(|p| p.contains("id=\"hub-summary\""))
    });
    assert!(page.contains("delivered 3, pending 0, dead 0"), "{page}");
    browser.screenshot(&artifacts_dir().join("demo-hub-fanout.png"));

    browser.click("#protected");
    let refused = browser.wait_for("the guard's refusal", |b| {
        Some(b.page_source()).filter(|p| !p.contains("hub-summary"))
    });
    assert!(!refused.contains("id=\"welcome\""), "{refused}");
    assert!(refused.contains("signed out"), "{refused}");
    assert_eq!(alice(&browser), None, "the guard removed the credential from the jar");
    observe("browser", "the demo's hub", "fanned out to 3 receivers; the guard ended the session");
}
