//! Drive-by signout protection (§8): a signout must be something the user did.
//!
//! Fetch Metadata says where a request comes from (`Sec-Fetch-Site`), what it is for
//! (`Sec-Fetch-Mode`, `Sec-Fetch-Dest`) and whether a user's action started it
//! (`Sec-Fetch-User`). A sibling subdomain is `same-site`, not `same-origin`: DACS
//! jurisdictions live on sibling subdomains, and so do user-content hosts, so `same-site` is
//! held to the same rules as `cross-site`.

use std::str::FromStr;

use crate::cgi::FetchMetadata;
use crate::error::Error;

/// `SIGNOUT_CROSS_SITE`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CrossSite {
    /// From another site: top-level navigations only, and only at once when the user clicked;
    /// prefetches never.
    #[default]
    Navigate,
    /// Nothing from another site, nor any prefetch.
    Deny,
    /// No check at all.
    Allow,
}

impl FromStr for CrossSite {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text.to_ascii_lowercase().as_str() {
            "navigate" => Ok(CrossSite::Navigate),
            "deny" => Ok(CrossSite::Deny),
            "allow" => Ok(CrossSite::Allow),
            _ => Err(()),
        }
    }
}

/// What the request may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Sign out now.
    Proceed,
    /// Another site sent the browser here without a click: ask the user first (HTML), or
    /// refuse (XML and JSON callers).
    Confirm,
}

/// Judges the request's Fetch Metadata under `mode`. Requests without Fetch Metadata (scripts,
/// old browsers, plain-http origins) proceed: only a browser marks its requests.
pub fn check(fetch: &FetchMetadata, mode: CrossSite) -> Result<Verdict, Error> {
    if mode == CrossSite::Allow {
        return Ok(Verdict::Proceed);
    }
    if fetch.prefetch {
        return Err(Error::forbidden("a prefetch cannot sign you out"));
    }
    // `same-origin`, `none` (the user typed the address or chose a bookmark), or no header.
    if !matches!(fetch.site.as_deref(), Some("cross-site" | "same-site")) {
        return Ok(Verdict::Proceed);
    }
    // Top-level: a frame navigates too, but with `Sec-Fetch-Dest: iframe`.
    let navigation = fetch.mode.as_deref() == Some("navigate")
        && fetch.dest.as_deref().is_none_or(|d| d == "document");
    if mode == CrossSite::Deny || !navigation {
        return Err(Error::forbidden("a signout cannot be started by another site"));
    }
    Ok(if fetch.user { Verdict::Proceed } else { Verdict::Confirm })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(site: &str, mode: &str, dest: &str, user: bool) -> FetchMetadata {
        let own = |v: &str| (!v.is_empty()).then(|| v.to_owned());
        FetchMetadata { site: own(site), mode: own(mode), dest: own(dest), user, prefetch: false }
    }

    #[test]
    fn what_another_site_may_do_under_navigate() {
        use Verdict::*;
        for site in ["cross-site", "same-site"] {
            let refused = [
                meta(site, "no-cors", "image", false),
                meta(site, "cors", "empty", false),
                meta(site, "navigate", "iframe", true),
                meta(site, "no-cors", "", true),
            ];
            for fetch in refused {
                let e = check(&fetch, CrossSite::Navigate).unwrap_err();
                assert_eq!(e.status().0, 403, "{fetch:?}");
            }
            let click = meta(site, "navigate", "document", true);
            assert_eq!(check(&click, CrossSite::Navigate), Ok(Proceed));
            let script = meta(site, "navigate", "document", false);
            assert_eq!(check(&script, CrossSite::Navigate), Ok(Confirm));
            assert!(check(&click, CrossSite::Deny).is_err());
            assert_eq!(
                check(&meta(site, "no-cors", "image", false), CrossSite::Allow),
                Ok(Proceed)
            );
        }
    }

    #[test]
    fn own_requests_and_requests_without_metadata_proceed() {
        for mode in [CrossSite::Navigate, CrossSite::Deny, CrossSite::Allow] {
            for fetch in [
                meta("same-origin", "no-cors", "image", false),
                meta("none", "navigate", "document", true),
                meta("", "", "", false),
            ] {
                assert_eq!(check(&fetch, mode), Ok(Verdict::Proceed), "{mode:?} {fetch:?}");
            }
        }
    }

    #[test]
    fn prefetches_are_refused_unless_allowed() {
        let prefetch =
            FetchMetadata { prefetch: true, ..meta("same-origin", "navigate", "document", false) };
        assert_eq!(check(&prefetch, CrossSite::Navigate).unwrap_err().status().0, 403);
        assert!(check(&prefetch, CrossSite::Deny).is_err());
        assert_eq!(check(&prefetch, CrossSite::Allow), Ok(Verdict::Proceed));
    }

    #[test]
    fn the_documented_default_is_navigate() {
        assert_eq!("navigate".parse(), Ok(CrossSite::Navigate));
        assert_eq!("NAVIGATE".parse(), Ok(CrossSite::Navigate));
        assert_eq!(CrossSite::default(), CrossSite::Navigate);
        assert_eq!("deny".parse(), Ok(CrossSite::Deny));
        assert_eq!("allow".parse(), Ok(CrossSite::Allow));
        assert_eq!("sometimes".parse::<CrossSite>(), Err(()));
    }
}
