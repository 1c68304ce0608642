//! Where the browser may be sent (§6): the `SIGNOUT_HANDLER` directive, the
//! `SIGNOUT_HANDLER_ALLOW` rules, and the refusal list that runs before any rule.
//!
//! URLs are parsed with the `url` crate, which implements the WHATWG rules browsers use, so
//! what is checked is what the browser will follow. The redirect carries the parsed URL's
//! serialization, never the raw argument.

use std::path::PathBuf;

use regex::Regex;
use url::Url;

use crate::urls;

/// `SIGNOUT_HANDLER`: `url URL`, `file PATH` or `message TEXT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerDirective {
    Url(String),
    File(PathBuf),
    Message(String),
}

impl HandlerDirective {
    /// The forms of DACS's handler directives (`dacs.conf(5)`, as for `ACS_ERROR_HANDLER`
    /// without its error code): `url URL`, a bare `URL` or `/path` (DACS's `url` keyword is
    /// optional), `file PATH`, and `message TEXT`, whose text may be double-quoted as DACS
    /// writes it (`"message \"Bye\""`).
    pub fn parse(value: &str) -> Result<HandlerDirective, String> {
        const EXPECTED: &str = "expected url URL, URL, /PATH, file PATH or message TEXT";
        let value = value.trim();
        let bare_url = value.starts_with('/')
            || ["http://", "https://"]
                .iter()
                .any(|s| value.get(..s.len()).is_some_and(|p| p.eq_ignore_ascii_case(s)));
        let (keyword, rest) = match value.split_once(char::is_whitespace) {
            _ if bare_url => ("url", value),
            Some((keyword, rest)) => (keyword, rest.trim()),
            None => return Err(EXPECTED.into()),
        };
        if rest.is_empty() {
            return Err(EXPECTED.into());
        }
        match keyword.to_ascii_lowercase().as_str() {
            "url" => {
                // The same refusal list as a DACS_SIGNOUT_HANDLER (`url /\evil.example` is a
                // foreign host to a browser), relative forms resolved against any origin.
                let absolute = rest.starts_with('/') || Url::parse(rest).is_ok();
                match vet(rest, Some("https://origin.invalid")) {
                    Ok(_) if absolute => Ok(HandlerDirective::Url(rest.to_owned())),
                    Ok(_) => {
                        Err(format!("{rest:?} is not an http(s) URL or a path starting with /"))
                    }
                    Err(why) => Err(format!("{rest:?} is refused ({})", why.as_str())),
                }
            }
            "file" => Ok(HandlerDirective::File(PathBuf::from(rest))),
            "message" => {
                let unquoted = rest.strip_prefix('"').and_then(|r| r.strip_suffix('"'));
                Ok(HandlerDirective::Message(unquoted.unwrap_or(rest).to_owned()))
            }
            _ => Err(EXPECTED.into()),
        }
    }
}

/// One `SIGNOUT_HANDLER_ALLOW` rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowRule {
    /// `https://portal.example.org`: any URL of that origin.
    Origin(String),
    /// `https://portal.example.org/apps/`: URLs whose serialization starts with this one.
    UrlPrefix(String),
    /// `/apps/`: paths of the program's own origin.
    PathPrefix(String),
    /// `re:REGEX`: matched against the whole serialized URL (anchored at both ends).
    Regex(String),
}

impl AllowRule {
    pub fn parse(value: &str) -> Result<AllowRule, String> {
        if let Some(source) = value.strip_prefix("re:") {
            check_pattern(source).map_err(|why| format!("{source:?}: {why}"))?;
            return Ok(AllowRule::Regex(source.to_owned()));
        }
        if value.starts_with('/') {
            if value.starts_with("//")
                || value.contains(['\\', '%'])
                || value.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                return Err(format!("{value:?} is not a plain path prefix"));
            }
            return Ok(AllowRule::PathPrefix(value.to_owned()));
        }
        let url = Url::parse(value).map_err(|e| format!("{value:?}: {e}"))?;
        if !urls::is_http(&url) || urls::has_userinfo(&url) {
            return Err(format!(
                "{value:?} must be an http(s) origin or URL prefix without user-info"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{value:?} must not have a query or fragment"));
        }
        if url.path() == "/" {
            Ok(AllowRule::Origin(url.origin().ascii_serialization()))
        } else if value.ends_with('/') {
            Ok(AllowRule::UrlPrefix(url.to_string()))
        } else {
            Err(format!("{value:?}: a URL rule must be an origin or a prefix ending in /"))
        }
    }

    /// Anchored so that `re:https://a\.example/.*` cannot match `https://evil/?https://a.example/`.
    /// The source is checked on its own first ([`check_pattern`], when the configuration is
    /// read), so that a `)` in it cannot close the anchoring group early.
    pub fn compile(source: &str) -> Result<Regex, regex::Error> {
        Regex::new(&format!("^(?:{source})$"))
    }

    /// A rule whose expression cannot be compiled (a size limit; its syntax was checked when the
    /// configuration was read) permits nothing: it never blocks the signout.
    fn permits(&self, url: &Url, own_origin: Option<&str>) -> bool {
        match self {
            AllowRule::Origin(origin) => url.origin().ascii_serialization() == *origin,
            AllowRule::UrlPrefix(prefix) => url.as_str().starts_with(prefix.as_str()),
            AllowRule::PathPrefix(prefix) => {
                own_origin == Some(url.origin().ascii_serialization().as_str())
                    && urls::within(url.path(), prefix)
            }
            AllowRule::Regex(source) => {
                AllowRule::compile(source).is_ok_and(|re| re.is_match(url.as_str()))
            }
        }
    }
}

/// Why a `DACS_SIGNOUT_HANDLER` was not used. Logged, never shown as an error page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    ControlOrSpace,
    Backslash,
    SchemeRelative,
    Unparsable,
    NotHttp,
    UserInfo,
    EncodedSeparator,
    TooLong,
    NoRuleMatched,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::ControlOrSpace => "control-or-space",
            Refusal::Backslash => "backslash",
            Refusal::SchemeRelative => "scheme-relative",
            Refusal::Unparsable => "unparsable",
            Refusal::NotHttp => "not-http",
            Refusal::UserInfo => "user-info",
            Refusal::EncodedSeparator => "encoded-separator",
            Refusal::TooLong => "too-long",
            Refusal::NoRuleMatched => "not-allowed",
        }
    }
}

/// The longest handler followed (bytes). A CGI header line longer than 8 KiB makes Apache
/// answer 500 without the `Set-Cookie` lines; a handler that long is no portal's.
pub const MAX_HANDLER: usize = 2048;

/// The refusal list (§6), then the parse. `own_origin` resolves relative candidates.
pub fn vet(candidate: &str, own_origin: Option<&str>) -> Result<Url, Refusal> {
    if candidate.len() > MAX_HANDLER {
        return Err(Refusal::TooLong);
    }
    if candidate.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Refusal::ControlOrSpace);
    }
    if candidate.contains('\\') {
        return Err(Refusal::Backslash);
    }
    if candidate.starts_with("//") {
        return Err(Refusal::SchemeRelative);
    }
    let url = match Url::parse(candidate) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => {
            let base = own_origin.and_then(|o| Url::parse(o).ok()).ok_or(Refusal::Unparsable)?;
            base.join(candidate).map_err(|_| Refusal::Unparsable)?
        }
        Err(_) => return Err(Refusal::Unparsable),
    };
    if !urls::is_http(&url) {
        return Err(Refusal::NotHttp);
    }
    if urls::has_userinfo(&url) {
        return Err(Refusal::UserInfo);
    }
    if has_encoded_separator(url.path()) {
        return Err(Refusal::EncodedSeparator);
    }
    Ok(url)
}

/// `%2F`, `%5C`, and encoded control bytes (tab among them) in a path.
fn has_encoded_separator(path: &str) -> bool {
    path.as_bytes().windows(3).any(|w| {
        let hex = |b: u8| (b as char).to_digit(16);
        match (w[0], hex(w[1]), hex(w[2])) {
            (b'%', Some(hi), Some(lo)) => {
                let byte = hi * 16 + lo;
                byte == 0x2f || byte == 0x5c || byte < 0x20 || byte == 0x7f
            }
            _ => false,
        }
    })
}

/// A regular expression of `dacs.conf` (a `re:` rule, `RELAY_USERNAME_MAP`): its syntax,
/// checked on its own when the configuration is read, so that a bad one is reported with its
/// line like any other configuration error. Compiling waits until a request needs it.
pub fn check_pattern(source: &str) -> Result<(), String> {
    if source.is_empty() {
        return Err("an empty regular expression".into());
    }
    regex_syntax::Parser::new().parse(source).map(drop).map_err(|e| regex_error(&e))
}

/// A regular expression error in one line: the parser's message spans several (the pattern,
/// a caret, then `error: why`).
pub fn regex_error(e: &dyn std::fmt::Display) -> String {
    let last = e.to_string().lines().last().unwrap_or_default().trim().to_owned();
    last.strip_prefix("error: ").map_or(last.clone(), str::to_owned)
}

/// A `DACS_SIGNOUT_HANDLER` candidate judged against the rules.
pub fn allowed(
    candidate: &str,
    rules: &[AllowRule],
    own_origin: Option<&str>,
) -> Result<Url, Refusal> {
    let url = vet(candidate, own_origin)?;
    if rules.iter().any(|rule| rule.permits(&url, own_origin)) {
        Ok(url)
    } else {
        Err(Refusal::NoRuleMatched)
    }
}

/// The redirect target: the handler with the three DACS arguments appended, before any
/// fragment: `https://p.example/bye?x=1#top` becomes
/// `https://p.example/bye?x=1&DACS_VERSION=1.4&DACS_FEDERATION=EX&DACS_JURISDICTION=J#top`.
pub fn location(mut url: Url, federation: &str, jurisdiction: &str) -> String {
    // Federation and jurisdiction names are [A-Za-z0-9_-]: nothing to encode.
    let dacs =
        format!("DACS_VERSION=1.4&DACS_FEDERATION={federation}&DACS_JURISDICTION={jurisdiction}");
    let query = match url.query() {
        Some(q) if !q.is_empty() => format!("{q}&{dacs}"),
        _ => dacs,
    };
    url.set_query(Some(&query));
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: Option<&str> = Some("https://portal.example.org");

    fn rules(values: &[&str]) -> Vec<AllowRule> {
        values.iter().map(|v| AllowRule::parse(v).unwrap()).collect()
    }

    fn check(candidate: &str, rules: &[AllowRule]) -> Result<String, Refusal> {
        allowed(candidate, rules, OWN).map(String::from)
    }

    #[test]
    fn rule_forms() {
        assert_eq!(
            AllowRule::parse("https://P.example.org").unwrap(),
            AllowRule::Origin("https://p.example.org".into())
        );
        assert_eq!(
            AllowRule::parse("https://p.example.org:443/").unwrap(),
            AllowRule::Origin("https://p.example.org".into())
        );
        assert_eq!(
            AllowRule::parse("https://p.example.org/a/").unwrap(),
            AllowRule::UrlPrefix("https://p.example.org/a/".into())
        );
        assert!(AllowRule::parse("https://p.example.org/a").is_err());
        assert!(AllowRule::parse("https://u@p.example.org/").is_err());
        assert!(AllowRule::parse("javascript:alert(1)").is_err());
        assert!(AllowRule::parse("//p.example.org/").is_err());
        assert!(AllowRule::parse("re:").is_err());
        // A `)` cannot close the anchoring group: the expression is judged on its own.
        assert!(AllowRule::parse("re:https://a\\.example/x)|(.*").is_err());
        assert!(AllowRule::parse("re:(").is_err());
    }

    #[test]
    fn url_directive_is_vetted() {
        assert!(HandlerDirective::parse("url /bye.html").is_ok());
        assert!(HandlerDirective::parse("url https://p.example/bye").is_ok());
        // DACS's forms: the `url` keyword is optional, a message may be quoted.
        assert_eq!(
            HandlerDirective::parse("https://p.example/bye"),
            Ok(HandlerDirective::Url("https://p.example/bye".into()))
        );
        assert_eq!(
            HandlerDirective::parse("/bye.html"),
            Ok(HandlerDirective::Url("/bye.html".into()))
        );
        assert_eq!(
            HandlerDirective::parse("message \"Bye now\""),
            Ok(HandlerDirective::Message("Bye now".into()))
        );
        assert!(HandlerDirective::parse("//evil.example/").is_err());
        assert!(HandlerDirective::parse("goto x").is_err());
        for bad in [
            "url /\\evil.example",
            "url //evil.example/",
            "url javascript:alert(1)",
            "url bye.html",
            "url https://u@p.example/",
        ] {
            assert!(HandlerDirective::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allowed_candidates() {
        let r = rules(&[
            "https://sso.example.org",
            "https://apps.example.org/bye/",
            "/local/",
            "re:https://x\\.example\\.org/done\\?.*",
        ]);
        assert_eq!(
            check("https://sso.example.org/anything?q=1", &r).unwrap(),
            "https://sso.example.org/anything?q=1"
        );
        assert!(check("https://apps.example.org/bye/now", &r).is_ok());
        assert!(check("/local/page", &r).is_ok());
        assert_eq!(check("/local/../local/x", &r).unwrap(), "https://portal.example.org/local/x");
        assert!(check("https://x.example.org/done?ok", &r).is_ok());
    }

    #[test]
    fn hostile_candidates_are_refused() {
        let r = rules(&[
            "https://sso.example.org",
            "https://apps.example.org/bye/",
            "/local/",
            "re:https://x\\.example\\.org/done.*",
        ]);
        let cases: &[(&str, Refusal)] = &[
            ("javascript:alert(1)", Refusal::NotHttp),
            ("data:text/html,hi", Refusal::NotHttp),
            ("JaVaScRiPt:alert(1)", Refusal::NotHttp),
            ("//evil.example/", Refusal::SchemeRelative),
            ("/\\evil.example/", Refusal::Backslash),
            ("https:\\\\evil.example", Refusal::Backslash),
            ("https://sso.example.org@evil.example/", Refusal::UserInfo),
            ("https://evil.example\\@sso.example.org/", Refusal::Backslash),
            ("/local/%2f%2fevil.example", Refusal::EncodedSeparator),
            ("/local/%5cevil", Refusal::EncodedSeparator),
            ("/local/%09x", Refusal::EncodedSeparator),
            ("https://sso.example.org/%0d%0aSet-Cookie:x=y", Refusal::EncodedSeparator),
            ("https://sso.example.org/\r\nSet-Cookie: x=y", Refusal::ControlOrSpace),
            ("/lo\tcal/", Refusal::ControlOrSpace),
            (" https://sso.example.org/", Refusal::ControlOrSpace),
            ("https://sso.example.org.evil.example/", Refusal::NoRuleMatched),
            ("https://sso-example.org/", Refusal::NoRuleMatched),
            ("https://xn--so-xmc.example.org/", Refusal::NoRuleMatched),
            ("https://ѕso.example.org/", Refusal::NoRuleMatched),
            ("http://sso.example.org/", Refusal::NoRuleMatched),
            ("https://sso.example.org:8443/", Refusal::NoRuleMatched),
            ("https://apps.example.org/bye/../admin", Refusal::NoRuleMatched),
            ("https://apps.example.org/bye/%2e%2e/admin", Refusal::NoRuleMatched),
            ("https://apps.example.org/byeX/", Refusal::NoRuleMatched),
            ("/localx/", Refusal::NoRuleMatched),
            ("https://evil.example/local/", Refusal::NoRuleMatched),
            ("https://evil.example/?https://x.example.org/done", Refusal::NoRuleMatched),
            ("https://x.example.org.evil.example/done", Refusal::NoRuleMatched),
            ("ftp://sso.example.org/", Refusal::NotHttp),
            (&format!("https://sso.example.org/{}", "a".repeat(MAX_HANDLER)), Refusal::TooLong),
        ];
        for (candidate, why) in cases {
            assert_eq!(check(candidate, &r), Err(*why), "{candidate}");
        }
    }

    #[test]
    fn relative_candidates_need_an_origin() {
        assert_eq!(allowed("/local/", &rules(&["/"]), None), Err(Refusal::Unparsable));
    }

    #[test]
    fn location_adds_the_dacs_arguments() {
        let url = Url::parse("https://p.example/").unwrap();
        assert_eq!(
            location(url, "EX", "J"),
            "https://p.example/?DACS_VERSION=1.4&DACS_FEDERATION=EX&DACS_JURISDICTION=J"
        );
        let url = Url::parse("https://p.example/bye?x=1#top").unwrap();
        assert_eq!(
            location(url, "EX", "J"),
            "https://p.example/bye?x=1&DACS_VERSION=1.4&DACS_FEDERATION=EX&DACS_JURISDICTION=J#top",
        );
    }

    #[test]
    fn handler_directive_forms() {
        assert_eq!(
            HandlerDirective::parse("file /var/www/bye.html"),
            Ok(HandlerDirective::File(PathBuf::from("/var/www/bye.html")))
        );
        assert_eq!(
            HandlerDirective::parse("FILE /x"),
            Ok(HandlerDirective::File(PathBuf::from("/x")))
        );
        assert_eq!(
            HandlerDirective::parse("message \"Bye\""),
            Ok(HandlerDirective::Message("Bye".into()))
        );
        assert!(HandlerDirective::parse("file").is_err());
        assert!(HandlerDirective::parse("page /x").is_err());
    }

    /// A path rule is a plain prefix: none of what could make it mean another path or host.
    #[test]
    fn path_rules_refuse_what_is_not_a_plain_prefix() {
        assert_eq!(AllowRule::parse("/apps/"), Ok(AllowRule::PathPrefix("/apps/".into())));
        for bad in ["//evil.example/", "/a\\b/", "/a%2fb/", "/a b/", "/a\tb/", "/a\u{7f}/"] {
            assert!(AllowRule::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// A URL rule is http(s) without user-info.
    #[test]
    fn url_rules_refuse_other_schemes_and_user_info() {
        for bad in
            ["ftp://p.example.org/", "https://u@p.example.org/", "https://u:p@p.example.org/"]
        {
            let why = AllowRule::parse(bad).unwrap_err();
            assert!(why.contains("without user-info"), "{bad:?}: {why}");
        }
        assert!(AllowRule::parse("https://p.example.org/").is_ok());
        // A rule is an origin or a prefix: a query or a fragment makes it neither.
        for bad in ["https://p.example.org/a/?x=1", "https://p.example.org/a/#top"] {
            let why = AllowRule::parse(bad).unwrap_err();
            assert!(why.contains("must not have a query or fragment"), "{bad:?}: {why}");
        }
    }

    /// Only `/` (`%2F`), `\` (`%5C`) and encoded controls are refused in a path: a harmless
    /// encoding such as `%20` or `%41` is followed.
    #[test]
    fn benign_encodings_are_followed() {
        let all = rules(&["https://p.example.org"]);
        for ok in ["%20", "%41", "%7e", "%7E", "%21", "%80", "%ff", "%1g", "%2"] {
            let candidate = format!("https://p.example.org/a{ok}b");
            assert!(check(&candidate, &all).is_ok(), "{candidate}");
        }
        for bad in ["%2f", "%2F", "%5c", "%00", "%09", "%1f", "%7f", "%7F"] {
            let candidate = format!("https://p.example.org/a{bad}b");
            assert_eq!(check(&candidate, &all), Err(Refusal::EncodedSeparator), "{candidate}");
        }
    }

    #[test]
    fn a_handler_of_exactly_the_limit_is_followed() {
        let all = rules(&["https://p.example.org"]);
        let base = "https://p.example.org/";
        let at_limit = format!("{base}{}", "a".repeat(MAX_HANDLER - base.len()));
        assert!(check(&at_limit, &all).is_ok());
        assert_eq!(check(&format!("{at_limit}a"), &all), Err(Refusal::TooLong));
    }

    #[test]
    fn refusals_have_stable_names() {
        let names: Vec<&str> = [
            Refusal::ControlOrSpace,
            Refusal::Backslash,
            Refusal::SchemeRelative,
            Refusal::Unparsable,
            Refusal::NotHttp,
            Refusal::UserInfo,
            Refusal::EncodedSeparator,
            Refusal::TooLong,
            Refusal::NoRuleMatched,
        ]
        .into_iter()
        .map(Refusal::as_str)
        .collect();
        assert_eq!(
            names,
            [
                "control-or-space",
                "backslash",
                "scheme-relative",
                "unparsable",
                "not-http",
                "user-info",
                "encoded-separator",
                "too-long",
                "not-allowed"
            ]
        );
    }

    #[test]
    fn a_bad_regular_expression_is_one_line_naming_the_fault() {
        let why = check_pattern("a(b").unwrap_err();
        assert_eq!(why, "unclosed group");
        assert_eq!(regex_error(&"error: x\n  ^\nerror: the reason"), "the reason");
    }

    /// A handler ending in a bare `?` gets the DACS arguments without an empty pair before them.
    #[test]
    fn an_empty_query_takes_the_arguments_alone() {
        let url = Url::parse("https://p.example.org/bye?").unwrap();
        assert_eq!(
            location(url, "EX", "J"),
            "https://p.example.org/bye?DACS_VERSION=1.4&DACS_FEDERATION=EX&DACS_JURISDICTION=J"
        );
    }
}
