//! Which credential cookies of the current federation a signout removes (§2, §4).

use std::collections::HashSet;

use super::NameCompare;
use super::header;
use super::identity::{CookieName, Identity};

/// The `DACS_USERNAME` / `DACS_JURISDICTION` arguments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub username: Option<String>,
    pub jurisdiction: Option<String>,
}

impl Filter {
    /// No filter: every credential goes, and the selection cookie with them.
    pub fn is_full_signout(&self) -> bool {
        self.username.is_none() && self.jurisdiction.is_none()
    }

    fn matches(&self, id: &Identity, compare: NameCompare) -> bool {
        let username_ok = self.username.as_deref().is_none_or(|u| compare.eq(u, id.username));
        let jurisdiction_ok =
            self.jurisdiction.as_deref().is_none_or(|j| compare.eq(j, id.jurisdiction));
        username_ok && jurisdiction_ok
    }
}

/// A credential cookie of the current federation: its name exactly as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credential<'a> {
    pub name: &'a str,
    pub identity: Identity<'a>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection<'a> {
    /// No filter was given: everything of the federation goes.
    pub full_signout: bool,
    pub removed: Vec<Credential<'a>>,
    pub remaining: Vec<Credential<'a>>,
    /// The selection cookie's name as received, when a full signout expires it.
    pub selection_cookie: Option<&'a str>,
}

impl<'a> Selection<'a> {
    /// Sorts the current federation's credentials in `cookie_header` into removed and
    /// remaining. Foreign, malformed and non-UTF-8 pairs are ignored; a name sent twice (the
    /// same cookie under two paths) counts once.
    pub fn select(
        cookie_header: &'a [u8],
        federation: &str,
        filter: &Filter,
        compare: NameCompare,
    ) -> Selection<'a> {
        let mut selection =
            Selection { full_signout: filter.is_full_signout(), ..Selection::default() };
        // Sized once, for every pair (a credential pair takes at least 12 bytes): growing it
        // cost more than the lookups (BENCHMARKS.md).
        let pairs = memchr::memchr_iter(b';', cookie_header).count() + 1;
        let at_most = pairs.min(cookie_header.len() / 12 + 1);
        let mut seen: HashSet<&str, NameHasher> =
            HashSet::with_capacity_and_hasher(at_most, NameHasher::default());
        for raw in header::names(cookie_header) {
            // Most pairs belong to other apps: skip them before any UTF-8 check (a credential's
            // name starts with `DACS:`, as `CookieName::parse` requires).
            if !raw.starts_with(b"DACS:") {
                continue;
            }
            let Ok(name) = std::str::from_utf8(raw) else { continue };
            let Some(parsed) = CookieName::parse(name) else { continue };
            if !compare.eq(parsed.federation(), federation) || !seen.insert(name) {
                continue;
            }
            match parsed {
                CookieName::Credential(identity) => {
                    let credential = Credential { name, identity };
                    if filter.matches(&identity, compare) {
                        selection.removed.push(credential);
                    } else {
                        selection.remaining.push(credential);
                    }
                }
                CookieName::Selection { .. } if filter.is_full_signout() => {
                    selection.selection_cookie.get_or_insert(name);
                }
                CookieName::Selection { .. } => {}
            }
        }
        selection
    }

    /// The names to expire, in the order received, the selection cookie last.
    pub fn expired_names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.removed.iter().map(|c| c.name).chain(self.selection_cookie)
    }
}

/// The hasher of the set of names seen: foldhash with its fixed seed. std's SipHash with a
/// random seed costs a `getrandom` call in every process and several times the instructions
/// per name; resistance to chosen collisions buys little here, since the only one who could aim
/// them is the browser sending the header, whose size is capped. The names must still spread
/// (a test checks it): FxHash, used before, gave one collision in a hundred on names as plain
/// as `DACS:EX::J:user12` and `...:user99`.
type NameHasher = foldhash::fast::FixedState;

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    fn names<'a>(credentials: &[Credential<'a>]) -> Vec<&'a str> {
        credentials.iter().map(|c| c.name).collect()
    }

    const HEADER: &[u8] = b"DACS:EX::A:bob=1; other=2; DACS:EX::B:bob=3; DACS:EX::A:amy=4; \
        DACS:OTHER::A:bob=5; DACS:EX:::SELECTED=6; DACS:EX::A:bob=7; \xff\xfe=8; DACS:ex::A:cy=9";

    #[test]
    fn full_signout_takes_everything_of_the_federation() {
        let s = Selection::select(HEADER, "EX", &Filter::default(), NameCompare::Case);
        assert_eq!(names(&s.removed), ["DACS:EX::A:bob", "DACS:EX::B:bob", "DACS:EX::A:amy"]);
        assert!(s.remaining.is_empty());
        assert_eq!(s.selection_cookie, Some("DACS:EX:::SELECTED"));
        assert_eq!(s.expired_names().count(), 4);
    }

    #[test]
    fn filters_must_both_match() {
        let filter = Filter { username: Some("bob".into()), jurisdiction: Some("A".into()) };
        let s = Selection::select(HEADER, "EX", &filter, NameCompare::Case);
        assert_eq!(names(&s.removed), ["DACS:EX::A:bob"]);
        assert_eq!(names(&s.remaining), ["DACS:EX::B:bob", "DACS:EX::A:amy"]);
        assert_eq!(s.selection_cookie, None);
    }

    #[test]
    fn nocase_applies_to_every_part() {
        let filter = Filter { username: Some("CY".into()), jurisdiction: Some("a".into()) };
        let s = Selection::select(HEADER, "EX", &filter, NameCompare::NoCase);
        assert_eq!(names(&s.removed), ["DACS:ex::A:cy"]);
        let s = Selection::select(HEADER, "EX", &filter, NameCompare::Case);
        assert!(s.removed.is_empty());
    }

    #[test]
    fn a_full_signout_is_one_without_either_filter() {
        let by = |username: Option<&str>, jurisdiction: Option<&str>| Filter {
            username: username.map(str::to_owned),
            jurisdiction: jurisdiction.map(str::to_owned),
        };
        assert!(by(None, None).is_full_signout());
        assert!(!by(Some("bob"), None).is_full_signout());
        assert!(!by(None, Some("A")).is_full_signout());
        let full = Selection::select(HEADER, "EX", &by(None, None), NameCompare::Case);
        assert!(full.full_signout);
        let one = Selection::select(HEADER, "EX", &by(Some("bob"), None), NameCompare::Case);
        assert!(!one.full_signout);
    }

    #[test]
    fn headers_of_one_pair_and_a_few_bytes() {
        for header in [&b""[..], b"a=b", b"DACS:EX::A:b=1", b";"] {
            let s = Selection::select(header, "EX", &Filter::default(), NameCompare::Case);
            assert_eq!(s.removed.len(), usize::from(header.starts_with(b"DACS:")));
        }
    }

    /// The set of names seen is a hash set: names an attacker chooses must still spread, or
    /// a 64 KiB header of thousands of names turns each lookup into a scan.
    #[test]
    fn the_name_hasher_spreads_names() {
        let hash = |name: &str| NameHasher::default().hash_one(name);
        let mut names: Vec<String> = (0..4000).map(|i| format!("DACS:EX::J:user{i}")).collect();
        // Tails that differ by the low bit only, and lengths of every remainder.
        names.extend(
            ["DACS:EX::J:a", "DACS:EX::J:`", "DACS:EX::J:b", "DACS:EX::J:c"].map(String::from),
        );
        names.extend((1..=17).map(|n| format!("DACS:EX::J:{}", "x".repeat(n))));
        let hashes: HashSet<u64> = names.iter().map(|n| hash(n)).collect();
        assert_eq!(hashes.len(), names.len(), "distinct names, distinct hashes");
    }
}
