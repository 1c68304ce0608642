//! Selecting and expiring credential cookies (§2, §4, §5).

use crate::support::*;

/// Credentials of EX (three), of another federation, the selection cookie, and noise.
const JAR: &str = "DACS:EX::FEDROOT:bobo=s3cr3t-a; theme=dark; DACS:EX::DSS:bobo=s3cr3t-b; \
    DACS:EX::FEDROOT:amy.o'neil+tag@uni.example=s3cr3t-c; DACS:OTHER::FEDROOT:bobo=s3cr3t-d; \
    DACS:EX:::SELECTED=s3cr3t-e; ; junk; =nameless; DACS:EX::FEDROOT=s3cr3t-f; \"quoted\"=\"v;w\"";

const RFC6265_TAIL: &str = "=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Path=/; Domain=example.org; Secure; HttpOnly";

#[test]
fn full_signout_expires_every_credential_and_the_selection_cookie() {
    let out = Cgi::get("").example("").cookie(JAR).run();
    out.status(200).common_headers();
    assert_eq!(
        out.set_cookies(),
        [
            format!("DACS:EX::FEDROOT:bobo{RFC6265_TAIL}"),
            format!("DACS:EX::DSS:bobo{RFC6265_TAIL}"),
            format!("DACS:EX::FEDROOT:amy.o'neil+tag@uni.example{RFC6265_TAIL}"),
            format!("DACS:EX:::SELECTED{RFC6265_TAIL}"),
        ]
    );
    assert!(out.body.contains("You have been signed out of federation EX"));
    assert!(out.log.contains("removed=3") && out.log.contains("remain=0"), "{}", out.log);
    assert!(!out.log.contains("s3cr3t") && !out.body.contains("s3cr3t"));
}

#[test]
fn username_and_jurisdiction_select_and_must_both_match() {
    let out = Cgi::get("DACS_USERNAME=bobo").example("").cookie(JAR).run();
    assert_eq!(out.expired(), ["DACS:EX::FEDROOT:bobo", "DACS:EX::DSS:bobo"]);
    let out = Cgi::get("DACS_JURISDICTION=FEDROOT").example("").cookie(JAR).run();
    assert_eq!(
        out.expired(),
        ["DACS:EX::FEDROOT:bobo", "DACS:EX::FEDROOT:amy.o'neil+tag@uni.example"]
    );
    let out = Cgi::get("DACS_USERNAME=bobo&DACS_JURISDICTION=DSS").example("").cookie(JAR).run();
    assert_eq!(out.expired(), ["DACS:EX::DSS:bobo"]);
    assert!(out.body.contains("Still signed in"));
    let out =
        Cgi::get("DACS_USERNAME=amy.o%27neil%2Btag%40uni.example").example("").cookie(JAR).run();
    assert_eq!(out.expired(), ["DACS:EX::FEDROOT:amy.o'neil+tag@uni.example"]);
}

#[test]
fn empty_filter_values_count_as_not_given() {
    let out = Cgi::get("DACS_USERNAME=&DACS_JURISDICTION=").example("").cookie(JAR).run();
    assert_eq!(out.set_cookies().len(), 4);
}

#[test]
fn name_compare_nocase_applies_to_every_part() {
    let jar = "DACS:ex::FedRoot:BoBo=1; DACS:EX::FEDROOT:bobo=2";
    let out = Cgi::get("DACS_USERNAME=BOBO&DACS_JURISDICTION=fedroot")
        .example("NAME_COMPARE \"nocase\"")
        .cookie(jar)
        .run();
    assert_eq!(out.expired(), ["DACS:ex::FedRoot:BoBo", "DACS:EX::FEDROOT:bobo"]);
    let out = Cgi::get("DACS_USERNAME=BOBO").example("NAME_COMPARE \"case\"").cookie(jar).run();
    assert!(out.expired().is_empty());
    let out = Cgi::get("DACS_USERNAME=bobo").example("NAME_COMPARE \"default\"").cookie(jar).run();
    assert_eq!(out.expired(), ["DACS:EX::FEDROOT:bobo"]);
}

#[test]
fn a_name_sent_twice_is_expired_once() {
    let out = Cgi::get("").example("").cookie("DACS:EX::J:u=1; DACS:EX::J:u=2").run();
    assert_eq!(out.expired(), ["DACS:EX::J:u"]);
}

#[test]
fn non_utf8_and_foreign_pairs_are_left_alone() {
    let out = Cgi::get("")
        .example("")
        .env_bytes("HTTP_COOKIE", b"\xff\xfe=1; DACS:EX::J:\xc3\x28=2; DACS:EX::J:ok=3; sid=\xff")
        .run();
    out.status(200);
    assert_eq!(out.expired(), ["DACS:EX::J:ok"]);
}

#[test]
fn cookie_syntax_argument_and_directive() {
    let cases = [
        (
            "COOKIE_RFC6265",
            "DACS:EX::J:u=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Path=/; Domain=example.org; Secure; HttpOnly",
        ),
        (
            "COOKIE_NETSCAPE",
            "DACS:EX::J:u=; expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/; domain=example.org; secure",
        ),
        (
            "cookie_ext_netscape",
            "DACS:EX::J:u=; expires=Thu, 01-Jan-1970 00:00:01 GMT; path=/; domain=example.org; secure; HttpOnly",
        ),
        (
            "COOKIE_RFC2109",
            "DACS:EX::J:u=; Max-Age=0; Version=1; Path=/; Domain=example.org; Secure",
        ),
    ];
    for (syntax, line) in cases {
        let out =
            Cgi::get(&format!("COOKIE_SYNTAX={syntax}")).example("").cookie("DACS:EX::J:u=1").run();
        assert_eq!(out.set_cookies(), [line], "argument {syntax}");
        let out = Cgi::get("")
            .example(&format!("COOKIE_SYNTAX \"{syntax}\""))
            .cookie("DACS:EX::J:u=1")
            .run();
        assert_eq!(out.set_cookies(), [line], "directive {syntax}");
    }
    // The argument overrides the directive.
    let out = Cgi::get("COOKIE_SYNTAX=COOKIE_RFC2109")
        .example("COOKIE_SYNTAX \"COOKIE_NETSCAPE\"")
        .cookie("DACS:EX::J:u=1")
        .run();
    assert!(out.set_cookies()[0].contains("Version=1"));
    let out = Cgi::get("COOKIE_SYNTAX=COOKIE_RFC2965").example("").cookie("DACS:EX::J:u=1").run();
    out.status(400).common_headers();
    assert!(out.set_cookies().is_empty());
}

#[test]
fn cookie_path_domain_and_secure_directives() {
    let out = Cgi::get("")
        .config(&conf("FEDERATION_NAME \"EX\"\nJURISDICTION_NAME \"J\"\nCOOKIE_NO_DOMAIN \"yes\"\nSECURE_MODE \"off\"\nCOOKIE_PATH \"/apps\""))
        .cookie("DACS:EX::J:u=1")
        .run();
    assert_eq!(
        out.set_cookies(),
        ["DACS:EX::J:u=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Path=/apps; HttpOnly"]
    );
}

#[test]
fn post_form_body_is_read() {
    let out = Cgi::post("", "DACS_USERNAME=bobo&FORMAT=JSON").example("").cookie(JAR).run();
    out.status(200).common_headers();
    assert_eq!(out.header("Content-Type"), Some("application/json"));
    assert_eq!(out.expired(), ["DACS:EX::FEDROOT:bobo", "DACS:EX::DSS:bobo"]);
    // Query and body are one argument list: a name in both is a duplicate.
    Cgi::post("FORMAT=XML", "FORMAT=JSON").example("").run().status(400).common_headers();
    // A body of another type is not read as arguments, and not taken as a full signout
    // either (errors.rs: a 415).
    let out = Cgi::post("", "DACS_USERNAME=nobody")
        .env("CONTENT_TYPE", "text/plain")
        .example("")
        .cookie(JAR)
        .run();
    out.status(415);
    assert!(out.set_cookies().is_empty());
}

#[test]
fn head_sends_the_headers_without_a_body() {
    let out = Cgi::head("").example("").cookie(JAR).run();
    out.status(200).common_headers();
    assert_eq!(out.set_cookies().len(), 4);
    assert_eq!(out.body, "");
}

#[test]
fn apache_query_words_as_argv_change_nothing() {
    let plain = Cgi::get("--check-config").example("").cookie(JAR).run();
    let with_argv = Cgi::get("--check-config")
        .arg("--check-config")
        .arg("/etc/passwd")
        .example("")
        .cookie(JAR)
        .run();
    with_argv.status(200).common_headers();
    assert_eq!(plain.headers, with_argv.headers);
    assert_eq!(plain.body, with_argv.body);
}

#[test]
fn dacs_version_must_be_1_4() {
    Cgi::get("DACS_VERSION=1.4").example("").run().status(200);
    Cgi::get("DACS_VERSION=1.3").example("").run().status(400).common_headers();
}

#[test]
fn unknown_arguments_are_ignored() {
    Cgi::get("utm_source=mail&x").example("").cookie(JAR).run().status(200).common_headers();
}

#[test]
fn clear_site_data_only_on_a_full_signout() {
    let out = Cgi::get("").example("CLEAR_SITE_DATA \"cookies\"").cookie(JAR).run();
    assert_eq!(out.header("Clear-Site-Data"), Some("\"cookies\""));
    let out =
        Cgi::get("DACS_USERNAME=amy").example("CLEAR_SITE_DATA \"cookies\"").cookie(JAR).run();
    assert_eq!(out.header("Clear-Site-Data"), None);
    let out = Cgi::get("").example("").cookie(JAR).run();
    assert_eq!(out.header("Clear-Site-Data"), None);
    // Nobody signed in: nothing to clear (the header would wipe every cookie of the site).
    let out = Cgi::get("").example("CLEAR_SITE_DATA \"cookies\"").cookie("theme=dark").run();
    assert_eq!(out.header("Clear-Site-Data"), None);
}

#[test]
fn jurisdiction_sections_override_default() {
    let text = "<Configuration>\n<Default>\nFEDERATION_NAME \"EX\"\nFEDERATION_DOMAIN \"example.org\"\nJURISDICTION_NAME \"FEDROOT\"\n</Default>\n\
                <Jurisdiction uri=\"portal.example.org/cgi-bin/dacs\">\nJURISDICTION_NAME \"PORTAL\"\nCOOKIE_PATH \"/p\"\n</Jurisdiction>\n</Configuration>\n";
    let out = Cgi::get("FORMAT=JSON").config(text).cookie("DACS:EX::J:u=1").run();
    assert!(out.body.contains("\"jurisdiction_name\":\"PORTAL\""), "{}", out.body);
    assert!(out.set_cookies()[0].contains("Path=/p;"));
    let out = Cgi::get("FORMAT=JSON")
        .config(text)
        .env("SCRIPT_NAME", "/cgi-bin/dacsx/dacs_signout")
        .run();
    assert!(out.body.contains("\"jurisdiction_name\":\"FEDROOT\""), "{}", out.body);
}

#[test]
fn builtin_demo_configuration_when_nothing_is_configured() {
    let dir = TempDir::new("default-conf");
    let absent = dir.path().join("dacs.conf");
    let out = Cgi::get("")
        .cookie("DACS:DEMO::DEMO:alice=1; DACS:EX::J:u=2")
        .run_with_default_conf(&absent);
    out.status(200).common_headers();
    assert_eq!(
        out.set_cookies(),
        [
            "DACS:DEMO::DEMO:alice=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:01 GMT; Path=/; HttpOnly"
        ]
    );
    assert!(out.log.contains("config=\"built-in demo\""), "{}", out.log);
}

/// The default path exists: it is used, and when it cannot be read that is a 500, never the
/// demo (an operator meant it).
#[test]
fn an_existing_default_configuration_is_used_and_never_replaced_by_the_demo() {
    let dir = TempDir::new("default-conf");
    let path = dir.write("dacs.conf", &conf(EXAMPLE));
    let out = Cgi::get("FORMAT=JSON").cookie("DACS:EX::J:u=2").run_with_default_conf(&path);
    out.status(200);
    assert!(out.body.contains("\"federation_name\":\"EX\""), "{}", out.body);
    // A dangling symlink and a directory stand for a file nobody can read, whoever runs the
    // test (root reads any file regardless of its mode).
    let dangling = dir.path().join("dangling.conf");
    std::os::unix::fs::symlink(dir.path().join("missing"), &dangling).unwrap();
    for unreadable in [dangling, dir.path().to_owned()] {
        let out = Cgi::get("FORMAT=JSON").run_with_default_conf(&unreadable);
        out.status(500);
        assert!(out.log.contains("cannot read the file"), "{}", out.log);
        assert!(!out.body.contains(dir.path().to_str().unwrap()), "no path in the answer");
    }
}

/// A server or proxy that received two `Cookie` lines joins them with ", ": both lines'
/// credentials are found.
#[test]
fn two_cookie_headers_joined_by_a_comma_are_both_read() {
    let out = Cgi::get("FORMAT=JSON")
        .example("")
        .cookie("DACS:EX::FEDROOT:bobo=1; theme=dark, DACS:EX::DSS:amy=2")
        .run();
    out.status(200).common_headers();
    assert_eq!(out.expired(), ["DACS:EX::FEDROOT:bobo", "DACS:EX::DSS:amy"]);
}

/// `DACS:EX:::SELECTED` is the selection cookie; a credential whose username merely ends in
/// `:::SELECTED` is a credential, removed by its username.
#[test]
fn a_username_ending_in_selected_is_a_credential() {
    let out = Cgi::get("FORMAT=JSON&DACS_USERNAME=bob%3A%3A%3ASELECTED")
        .example("")
        .cookie("DACS:EX::FEDROOT:bob:::SELECTED=1; DACS:EX:::SELECTED=2")
        .run();
    out.status(200).common_headers();
    assert_eq!(out.expired(), ["DACS:EX::FEDROOT:bob:::SELECTED"]);
    assert!(out.body.contains("\"username\":\"bob:::SELECTED\""), "{}", out.body);
}
