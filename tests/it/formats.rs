//! HTML, the four XML variants and JSON (§7), validated against the shipped schemas.

use crate::support::*;

/// Usernames may hold markup characters: every format must escape them.
const JAR: &str = "DACS:EX::FEDROOT:bobo=1; DACS:EX::DSS:<b>&\"x'</b>=2; DACS:EX::DSS:amy=3";

#[test]
fn xml_variants_validate_and_report_removed_and_remaining() {
    for (format, doctype, xsi) in [
        ("XML", false, false),
        ("XMLSIMPLE", false, false),
        ("XMLDTD", true, false),
        ("xmlschema", false, true),
    ] {
        let out = Cgi::get(&format!("FORMAT={format}&DACS_JURISDICTION=DSS"))
            .example("")
            .cookie(JAR)
            .run();
        out.status(200).common_headers();
        assert_eq!(out.header("Content-Type"), Some("text/xml; charset=utf-8"));
        assert_eq!(
            out.body.contains(
                "<!DOCTYPE dacs_current_credentials SYSTEM \"dacs_current_credentials.dtd\">"
            ),
            doctype,
            "{format}"
        );
        assert_eq!(
            out.body.contains("xsi:noNamespaceSchemaLocation=\"dacs_current_credentials.xsd\""),
            xsi,
            "{format}"
        );
        assert!(
            out.body.contains(
                "<credentials federation=\"EX\" jurisdiction=\"FEDROOT\" username=\"bobo\"/>"
            ),
            "{}",
            out.body
        );
        assert!(out.body.contains("<signed_out federation=\"EX\" jurisdiction=\"DSS\" username=\"&lt;b&gt;&amp;&quot;x&apos;&lt;/b&gt;\"/>"), "{}", out.body);
        assert!(
            out.body
                .contains("<signed_out federation=\"EX\" jurisdiction=\"DSS\" username=\"amy\"/>")
        );
    }
}

#[test]
fn xml_with_no_credentials_and_errors_validate() {
    // The empty report validates too (Cgi::run checks every XML answer against both schemas).
    let out = Cgi::get("FORMAT=XMLSCHEMA").example("").run();
    out.status(200);
    assert!(!out.body.contains("<credentials") && !out.body.contains("<signed_out"));
    for format in ["XML", "XMLSIMPLE", "XMLDTD", "XMLSCHEMA"] {
        let out = Cgi::get(&format!("FORMAT={format}&COOKIE_SYNTAX=nope")).example("").run();
        out.status(400).common_headers();
        assert!(
            out.body.contains("<common_status context=\"dacs_signout\" code=\"400\""),
            "{}",
            out.body
        );
    }
}

#[test]
fn json_validates_and_escapes() {
    let out = Cgi::get("FORMAT=json&DACS_JURISDICTION=DSS").example("").cookie(JAR).run();
    out.status(200).common_headers();
    assert_eq!(out.header("Content-Type"), Some("application/json"));
    let value: serde_json::Value = serde_json::from_str(&out.body).unwrap();
    let root = &value["dacs_current_credentials"];
    assert_eq!(root["federation_name"], "EX");
    assert_eq!(root["federation_domain"], "example.org");
    assert_eq!(root["jurisdiction_name"], "FEDROOT");
    assert_eq!(root["credentials"][0]["username"], "bobo");
    assert_eq!(root["signed_out"][0]["username"], "<b>&\"x'</b>");
    assert_eq!(root["signed_out"].as_array().unwrap().len(), 2);
    // Without FEDERATION_DOMAIN the key is absent (and the schema allows it).
    let out = Cgi::get("FORMAT=JSON")
        .config(&conf("FEDERATION_NAME \"EX\"\nJURISDICTION_NAME \"J\"\nCOOKIE_NO_DOMAIN \"yes\""))
        .run();
    out.status(200);
    assert!(!out.body.contains("federation_domain"), "{}", out.body);
}

#[test]
fn html_escapes_and_uses_the_dacs_wording() {
    let out = Cgi::get("DACS_JURISDICTION=DSS").example("").cookie(JAR).run();
    out.status(200).common_headers();
    assert!(out.body.contains("EX::DSS:&lt;b&gt;&amp;&quot;x&#39;&lt;/b&gt;"), "{}", out.body);
    assert!(!out.body.contains("<b>&"));
    assert!(out.body.contains("Still signed in") && out.body.contains("EX::FEDROOT:bobo"));
    let out = Cgi::get("").example("").cookie("theme=dark").run();
    assert!(out.body.contains("You are not authenticated within federation EX"));
}

#[test]
fn bad_format_is_a_400_in_html() {
    let out = Cgi::get("FORMAT=YAML").example("").run();
    out.status(400).common_headers();
    assert_eq!(out.header("Content-Type"), Some("text/html; charset=utf-8"));
    assert!(out.body.contains("FORMAT must be"));
}
