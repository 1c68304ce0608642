//! Drive-by signout protection (§8): a signout must be something the user did.

use std::str::FromStr;

use crate::cgi::FetchMetadata;
use crate::error::Error;

/// `SIGNOUT_CROSS_SITE`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CrossSite {
    /// Cross-site requests are served only as top-level navigations; prefetches never.
    #[default]
    Navigate,
    /// No cross-site request is served, nor any prefetch.
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

/// Refuses what the browser marks as a prefetch or as a cross-site request that is not a
/// top-level navigation (an `<img>`, a `fetch()`, an `<iframe>`), and with `Deny` any
/// cross-site request. Requests without Fetch Metadata
/// (scripts, old browsers) pass.
pub fn check(fetch: &FetchMetadata, mode: CrossSite) -> Result<(), Error> {
    if mode == CrossSite::Allow {
        return Ok(());
    }
    if fetch.purpose.as_deref().is_some_and(|p| p.contains("prefetch")) {
        return Err(Error::forbidden("a prefetch cannot sign you out"));
    }
    if fetch.site.as_deref() != Some("cross-site") {
        return Ok(());
    }
    // Top-level: a frame navigates too, but with `Sec-Fetch-Dest: iframe`.
    let navigation = fetch.mode.as_deref() == Some("navigate")
        && fetch.dest.as_deref().is_none_or(|d| d == "document");
    if mode == CrossSite::Deny || !navigation {
        return Err(Error::forbidden("a signout cannot be started by another site"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(site: Option<&str>, mode: Option<&str>, purpose: Option<&str>) -> FetchMetadata {
        let own = |v: Option<&str>| v.map(str::to_owned);
        FetchMetadata { site: own(site), mode: own(mode), dest: None, purpose: own(purpose) }
    }

    #[test]
    fn a_cross_site_frame_is_not_a_top_level_navigation() {
        let mut frame = meta(Some("cross-site"), Some("navigate"), None);
        frame.dest = Some("iframe".into());
        assert_eq!(check(&frame, CrossSite::Navigate).unwrap_err().status().0, 403);
        frame.dest = Some("document".into());
        assert!(check(&frame, CrossSite::Navigate).is_ok());
    }

    #[test]
    fn the_three_settings() {
        let img = meta(Some("cross-site"), Some("no-cors"), None);
        let link = meta(Some("cross-site"), Some("navigate"), None);
        let own = meta(Some("same-origin"), Some("no-cors"), None);
        let prefetch = meta(Some("same-origin"), Some("navigate"), Some("prefetch;prerender"));
        let script = meta(None, None, None);
        use CrossSite::*;
        for (m, img_ok, link_ok) in
            [(Navigate, false, true), (Deny, false, false), (Allow, true, true)]
        {
            assert_eq!(check(&img, m).is_ok(), img_ok, "{m:?} img");
            assert_eq!(check(&link, m).is_ok(), link_ok, "{m:?} link");
            assert!(check(&own, m).is_ok());
            assert!(check(&script, m).is_ok());
            assert_eq!(check(&prefetch, m).is_ok(), m == Allow);
        }
        assert_eq!(check(&img, Navigate).unwrap_err().status().0, 403);
    }
}
