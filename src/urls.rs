//! URL predicates that several layers share: what counts as a plain http(s) URL, and a prefix
//! that ends on a path-segment boundary.

use url::Url;

/// `http` or `https`, with a host.
pub fn is_http(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https") && url.host().is_some()
}

/// A user name or a password before the host (`https://user:pw@host/`).
pub fn has_userinfo(url: &Url) -> bool {
    !url.username().is_empty() || url.password().is_some()
}

/// An http(s) URL without user-info: the only kind a hub endpoint, a receiver or an allow rule
/// may be (user-info is a secret in the text, and a classic way to disguise a host).
pub fn parse_plain_http(text: &str) -> Option<Url> {
    Url::parse(text).ok().filter(|u| is_http(u) && !has_userinfo(u))
}

/// Whether `path` starts with `prefix` and the prefix ends on a segment boundary: `/app`
/// covers `/app` and `/app/x`, not `/application`. An empty prefix covers everything; one that
/// ends in `/` is its own boundary.
pub fn within(path: &str, prefix: &str) -> bool {
    path.starts_with(prefix)
        && (prefix.is_empty()
            || prefix.ends_with('/')
            || matches!(path.as_bytes().get(prefix.len()), None | Some(b'/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http() {
        assert!(parse_plain_http("https://hub.example/api/v1/").is_some());
        assert!(parse_plain_http("http://127.0.0.1:8080/").is_some());
        for bad in ["ftp://h/", "https://u@h/", "https://u:p@h/", "file:///etc", "/relative", ""] {
            assert!(parse_plain_http(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn segment_boundaries() {
        assert!(within("/app", "/app") && within("/app/x", "/app") && within("/app/", "/app/"));
        assert!(!within("/application", "/app") && !within("/ap", "/app"));
        assert!(within("/anything", "") && within("/a/b", "/a/"));
        assert!(!within("/ab", "/a/"));
    }
}
