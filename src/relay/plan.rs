//! From the credentials a signout removed to the signals for the hub, and their place in the
//! spool before the response goes out.

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use super::drain::Entry;
use super::signal::{Route, Signal, user_agent};
use super::{RelayIdentity, Settings, UsernameMap, route};
use crate::cgi::Env;
use crate::credentials::{Credential, NameCompare, header};
use crate::registry::revocation::Revoke;
use crate::registry::{self, Fingerprint, Key, Revocation, Sighting, user_key};
use crate::spool::{Spool, is_full};
use crate::time::unix_secs;
use crate::urls;
use crate::version::VERSION;

/// The registry a signout's revocation goes to (§12): its settings and the federation whose
/// keys it uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryTarget {
    pub settings: registry::Settings,
    pub federation: String,
}

/// What one signout sends after its response, and where: the signals for the hub, and the
/// revocation of the removed credentials for the registry.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The hub; `None` when only the registry is configured.
    pub route: Option<Route>,
    pub signals: Vec<Signal>,
    /// The removed credentials, revoked themselves, and the registry that keeps it.
    pub revocation: Option<(Revocation, RegistryTarget)>,
    /// Network usernames left out by `RELAY_MAX_SIGNALS`.
    pub dropped: usize,
    pub spool_dir: PathBuf,
    /// `RELAY_SPOOL_MAX`.
    pub spool_max: usize,
    /// `RELAY_LOG`, when it is not the spool's own `relay.log`.
    pub log: Option<PathBuf>,
    /// Whether the signals are in the spool (else: best effort, one attempt).
    pub spooled: bool,
}

/// What the relay did for a request, for its log line (`relay=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// No hub is configured.
    Off,
    /// Nothing was removed, or nothing is left after the username map.
    Nothing,
    /// `RELAY_IDENTITY "remote-user"` and no `REMOTE_USER`: the local signout only.
    Unauthenticated,
    /// `REMOTE_USER` names none of the removed credentials: the local signout only.
    Unmatched,
    /// Signals made, not yet persisted.
    Planned { signals: usize, dropped: usize },
    /// Signals written durably to the spool.
    Spooled { signals: usize, dropped: usize },
    /// The spool could not be used: one attempt each, without durability.
    BestEffort { signals: usize, spool: PathBuf, why: String },
    /// The spool is full (`RELAY_SPOOL_MAX`): these signals are lost, and said so.
    Lost { signals: usize, why: String },
    /// The relay configuration cannot be used for this request.
    Error(String),
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let dropped = |f: &mut fmt::Formatter<'_>, n: usize| match n {
            0 => Ok(()),
            n => write!(f, " ({n} more over RELAY_MAX_SIGNALS dropped)"),
        };
        match self {
            Note::Off => f.write_str("off"),
            Note::Nothing => f.write_str("none"),
            Note::Unauthenticated => f.write_str("unauthenticated"),
            Note::Unmatched => f.write_str("unmatched"),
            Note::Planned { signals, dropped: n } => {
                write!(f, "planned:{signals}")?;
                dropped(f, *n)
            }
            Note::Spooled { signals, dropped: n } => {
                write!(f, "spooled:{signals}")?;
                dropped(f, *n)
            }
            Note::BestEffort { signals, spool, why } => {
                write!(f, "best-effort:{signals} (spool {} unusable: {why})", spool.display())
            }
            Note::Lost { signals, why } => write!(f, "lost:{signals} ({why})"),
            Note::Error(why) => write!(f, "error: {why}"),
        }
    }
}

impl Note {
    /// Whether there is anything for the delivery child to send.
    pub fn delivers(&self) -> bool {
        matches!(self, Note::Spooled { .. } | Note::BestEffort { .. })
    }
}

/// What a signout did to its registry (`revoke=` on the log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevokeNote {
    /// The fingerprint key is not in the request's environment: nothing can be revoked.
    KeyMissing(String),
    /// The revocation of these many credentials, once persisted.
    Credentials { credentials: usize, persisted: Option<Persisted> },
}

impl fmt::Display for RevokeNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevokeNote::KeyMissing(var) => write!(f, "key-missing: ${var} is not set"),
            RevokeNote::Credentials { credentials: n, persisted: None } => write!(f, "planned:{n}"),
            RevokeNote::Credentials { credentials: n, persisted: Some(p) } => match p {
                Persisted::Spooled => write!(f, "spooled:{n}"),
                Persisted::BestEffort { spool, why } => {
                    write!(f, "best-effort:{n} (spool {} unusable: {why})", spool.display())
                }
                Persisted::Lost(why) => write!(f, "lost:{n} ({why})"),
            },
        }
    }
}

/// The most credentials one signout revokes: a browser's jar holds a few of a federation's, and
/// a forged header of 64 KiB could name thousands, each a registry write (the guard refuses
/// more than as many in one request).
const MAX_REVOKED: usize = 64;
/// The revocation of the credentials a signout removed (§12), for the registry of `settings`:
/// every value the browser sent under a removed name, fingerprinted with the key of the
/// request's environment. The credentials went from this browser; no copy of them may pass a
/// guard of the federation again.
pub fn revocation(
    env: &Env,
    settings: &registry::Settings,
    federation: &str,
    compare: NameCompare,
    removed: &[Credential],
    cookie_header: &[u8],
    at: SystemTime,
) -> Result<Option<(Revocation, RegistryTarget)>, RevokeNote> {
    if removed.is_empty() {
        return Ok(None);
    }
    let key = env
        .raw(&settings.key_env)
        .and_then(Key::new)
        .ok_or_else(|| RevokeNote::KeyMissing(settings.key_env.clone()))?;
    let by_name: std::collections::HashMap<&[u8], &Credential> =
        removed.iter().map(|c| (c.name.as_bytes(), c)).collect();
    let credentials: Vec<Sighting> = header::pairs(cookie_header)
        .filter_map(|(name, value)| {
            let c = by_name.get(name)?;
            let id = &c.identity;
            Some(Sighting {
                fingerprint: Fingerprint::of(&key, name, value),
                user: user_key(id.federation, id.jurisdiction, id.username, compare),
            })
        })
        .take(MAX_REVOKED)
        .collect();
    let since_epoch = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since_epoch.as_secs();
    let revocation = Revocation {
        id: format!("{secs:011}-{:09}-{}-c", since_epoch.subsec_nanos(), std::process::id()),
        revoke: Revoke::Credentials {
            credentials,
            at_ms: u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX),
        },
        created: secs,
        attempts: 0,
        next_attempt: secs,
    };
    let target = RegistryTarget { settings: settings.clone(), federation: federation.to_owned() };
    Ok(Some((revocation, target)))
}

/// What a signout hands the relay.
pub struct Signout<'a> {
    pub removed: &'a [Credential<'a>],
    /// The identity the web server authenticated for the request (`REMOTE_USER`).
    pub remote_user: Option<&'a str>,
    /// This section's jurisdiction: a bare `REMOTE_USER` names only its users.
    pub jurisdiction: &'a str,
    pub compare: NameCompare,
    /// The browser's `User-Agent`.
    pub user_agent: Option<&'a str>,
    pub at: SystemTime,
}

/// `RELAY_USERNAME_MAP`, applied to each DACS username; trimmed, empty results and
/// duplicates dropped.
pub fn network_usernames<'a>(
    credentials: impl IntoIterator<Item = &'a Credential<'a>>,
    map: Option<&UsernameMap>,
) -> Result<Vec<String>, regex::Error> {
    let regex = map.map(|m| regex::Regex::new(&m.pattern)).transpose()?;
    let mut names: Vec<String> = Vec::new();
    for credential in credentials {
        let name = match (&regex, map) {
            (Some(re), Some(m)) => {
                re.replace(credential.identity.username, m.replacement.as_str()).into_owned()
            }
            _ => credential.identity.username.to_owned(),
        };
        // The hub strips white space and echoes what is left: send what it will echo.
        let name = name.trim();
        if !name.is_empty() && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// The removed credentials that may go network-wide (§9), or why none may.
fn relayed<'a>(settings: &Settings, signout: &'a Signout) -> Result<Vec<&'a Credential<'a>>, Note> {
    if signout.removed.is_empty() {
        return Err(Note::Nothing);
    }
    let all = signout.removed.iter();
    let chosen: Vec<_> = match (settings.identity, signout.remote_user) {
        (RelayIdentity::Cookies, _) => all.collect(),
        (RelayIdentity::RemoteUser, None) => return Err(Note::Unauthenticated),
        (RelayIdentity::RemoteUser, Some(user)) => all
            .filter(|c| c.identity.is_named_by(user, signout.jurisdiction, signout.compare))
            .collect(),
    };
    if chosen.is_empty() { Err(Note::Unmatched) } else { Ok(chosen) }
}

/// The plan for a signout: the note for the log line, and the signals when there are any.
pub fn plan(env: &Env, settings: &Settings, signout: &Signout) -> (Note, Option<Plan>) {
    let Some(route) = route(env, settings) else { return (Note::Off, None) };
    if urls::parse_plain_http(&route.endpoint).is_none() {
        // Not echoed: a URL with user-info holds a secret.
        return (Note::Error("the hub URL is not an http(s) URL without user-info".into()), None);
    }
    let credentials = match relayed(settings, signout) {
        Ok(credentials) => credentials,
        Err(note) => return (note, None),
    };
    let mut names = match network_usernames(credentials, settings.username_map.as_ref()) {
        Ok(names) if names.is_empty() => return (Note::Nothing, None),
        Ok(names) => names,
        Err(e) => return (Note::Error(format!("RELAY_USERNAME_MAP: {e}")), None),
    };
    let dropped = names.len().saturating_sub(settings.max_signals);
    names.truncate(settings.max_signals);
    let user_agent = user_agent(signout.user_agent, &format!("dacs_signout/{VERSION}"));
    let secs = unix_secs(signout.at);
    let nanos = signout.at.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let signals: Vec<Signal> = names
        .into_iter()
        .enumerate()
        .map(|(i, user_name)| Signal {
            id: format!("{secs:011}-{nanos:09}-{}-{i}", std::process::id()),
            user_name,
            user_agent: user_agent.clone(),
            endpoint: route.endpoint.clone(),
            created: secs,
            attempts: 0,
            next_attempt: secs,
        })
        .collect();
    let plan = Plan {
        route: Some(route),
        revocation: None,
        dropped,
        spool_dir: PathBuf::from(&settings.spool_dir),
        spool_max: settings.spool_max,
        log: settings.log.as_ref().map(PathBuf::from),
        spooled: false,
        signals,
    };
    (Note::Planned { signals: plan.signals.len(), dropped }, Some(plan))
}

/// What became of a plan's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persisted {
    /// In the spool: the delivery child and the drain have them.
    Spooled,
    /// The spool could not be used: one attempt each, without durability.
    BestEffort { spool: PathBuf, why: String },
    /// The spool is full (`RELAY_SPOOL_MAX`): lost, and said so.
    Lost(String),
}

impl Persisted {
    /// Whether there is anything for the delivery child to send.
    pub fn delivers(&self) -> bool {
        !matches!(self, Persisted::Lost(_))
    }
}

impl Plan {
    /// A plan that also revokes `revocation` (a signout that removed credentials, with a
    /// registry configured), whether or not there are signals for a hub.
    pub fn revoking(
        plan: Option<Plan>,
        settings: &Settings,
        revocation: Revocation,
        target: RegistryTarget,
    ) -> Plan {
        let mut plan = plan.unwrap_or_else(|| Plan {
            route: None,
            signals: Vec::new(),
            revocation: None,
            dropped: 0,
            spool_dir: PathBuf::from(&settings.spool_dir),
            spool_max: settings.spool_max,
            log: settings.log.as_ref().map(PathBuf::from),
            spooled: false,
        });
        plan.revocation = Some((revocation, target));
        plan
    }

    /// Everything the plan holds, as spool entries.
    pub fn entries(&self) -> Vec<Entry> {
        let signals = self.signals.iter().cloned().map(Entry::Signal);
        signals.chain(self.revocation.iter().map(|(r, _)| Entry::Revocation(r.clone()))).collect()
    }

    /// Writes every entry durably to the spool, before the response.
    pub fn persist(&mut self) -> Persisted {
        let spooled = Spool::create(&self.spool_dir, self.spool_max)
            .and_then(|spool| spool.put_all(&self.entries()));
        match spooled {
            Ok(()) => {
                self.spooled = true;
                Persisted::Spooled
            }
            // A full spool means the hub has been unreachable for long, or someone is filling
            // it: one more attempt each would not help, and the disk is what the limit guards.
            Err(e) if is_full(&e) => Persisted::Lost(e.to_string()),
            Err(e) => Persisted::BestEffort { spool: self.spool_dir.clone(), why: e.to_string() },
        }
    }

    /// The registry's note for the request's log line, once persisted; `None` without a
    /// revocation.
    pub fn revoke_note(&self, persisted: Option<&Persisted>) -> Option<RevokeNote> {
        let (revocation, _) = self.revocation.as_ref()?;
        let Revoke::Credentials { credentials, .. } = &revocation.revoke else { return None };
        Some(RevokeNote::Credentials {
            credentials: credentials.len(),
            persisted: persisted.cloned(),
        })
    }

    /// The relay's note for the request's log line, once persisted; `None` without signals.
    pub fn note(&self, persisted: &Persisted) -> Option<Note> {
        let signals = self.signals.len();
        (signals > 0).then(|| match persisted {
            Persisted::Spooled => Note::Spooled { signals, dropped: self.dropped },
            Persisted::BestEffort { spool, why } => {
                Note::BestEffort { signals, spool: spool.clone(), why: why.clone() }
            }
            Persisted::Lost(why) => Note::Lost { signals, why: why.clone() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Identity;

    fn cred(text: &'static str) -> Credential<'static> {
        Credential { name: text, identity: Identity::parse(text).unwrap() }
    }

    fn settings(base_url: Option<&str>, identity: RelayIdentity) -> Settings {
        Settings {
            base_url: base_url.map(str::to_owned),
            token_env: "T".into(),
            identity,
            max_signals: 2,
            username_map: None,
            timeout_secs: 15,
            spool_dir: "/dev/null/spool".into(),
            spool_max: 10,
            log: None,
            max_age_secs: 60,
            send_logout_at: false,
        }
    }

    fn signout<'a>(removed: &'a [Credential<'a>], remote_user: Option<&'a str>) -> Signout<'a> {
        Signout {
            removed,
            remote_user,
            jurisdiction: "A",
            compare: NameCompare::Case,
            user_agent: None,
            at: crate::time::from_unix_secs(1_700_000_000),
        }
    }

    fn users(plan: &Option<Plan>) -> Vec<&str> {
        plan.iter().flat_map(|p| &p.signals).map(|s| s.user_name.as_str()).collect()
    }

    #[test]
    fn usernames_are_mapped_trimmed_and_deduplicated() {
        let creds = [
            cred("EX::A:bob@uni.example"),
            cred("EX::B:bob@uni.example"),
            cred("EX::A:amy@other.example"),
        ];
        let map =
            UsernameMap { pattern: "^([^@]+)@uni\\.example$".into(), replacement: " $1 ".into() };
        assert_eq!(network_usernames(&creds, Some(&map)).unwrap(), ["bob", "amy@other.example"]);
        assert_eq!(
            network_usernames(&creds, None).unwrap(),
            ["bob@uni.example", "amy@other.example"]
        );
        let bad = UsernameMap { pattern: "(".into(), replacement: String::new() };
        assert!(network_usernames(&creds, Some(&bad)).is_err());
    }

    #[test]
    fn only_the_authenticated_identity_goes_network_wide() {
        let removed = [cred("EX::A:bob"), cred("EX::B:bob"), cred("EX::A:victim")];
        let remote = settings(Some("https://h/"), RelayIdentity::RemoteUser);
        let (note, none) = plan(&Env::default(), &remote, &signout(&removed, None));
        assert_eq!((note, none.is_none()), (Note::Unauthenticated, true));
        for (user, expected) in
            [("EX::A:bob", "bob"), ("A:bob", "bob"), ("bob", "bob"), ("B:bob", "bob")]
        {
            let (_, p) = plan(&Env::default(), &remote, &signout(&removed, Some(user)));
            assert_eq!(users(&p), [expected], "{user}");
            assert_eq!(p.unwrap().signals.len(), 1);
        }
        let (note, _) = plan(&Env::default(), &remote, &signout(&removed, Some("EX::B:amy")));
        assert_eq!(note, Note::Unmatched);
        // Every removed credential, capped at RELAY_MAX_SIGNALS.
        let cookies = settings(Some("https://h/"), RelayIdentity::Cookies);
        let many = [cred("EX::A:a"), cred("EX::A:b"), cred("EX::A:c")];
        let (note, p) = plan(&Env::default(), &cookies, &signout(&many, None));
        assert_eq!(note, Note::Planned { signals: 2, dropped: 1 });
        assert_eq!(users(&p), ["a", "b"]);
        assert_eq!(note.to_string(), "planned:2 (1 more over RELAY_MAX_SIGNALS dropped)");
    }

    #[test]
    fn a_plan_is_stamped_with_the_time_it_is_given() {
        let removed = [cred("EX::A:bob")];
        let s = settings(Some("https://h/api/v1"), RelayIdentity::Cookies);
        let (note, plan) = plan(&Env::default(), &s, &signout(&removed, None));
        assert_eq!(note, Note::Planned { signals: 1, dropped: 0 });
        let plan = plan.unwrap();
        let signal = &plan.signals[0];
        assert_eq!((signal.created, signal.next_attempt), (1_700_000_000, 1_700_000_000));
        assert!(signal.id.starts_with("01700000000-"), "{}", signal.id);
        assert_eq!(signal.user_agent, format!("dacs_signout/{VERSION}"));
        assert_eq!(signal.endpoint, "https://h/api/v1/actions/logout/");
        assert_eq!(plan.route.as_ref().unwrap().endpoint, signal.endpoint);
        assert_eq!(plan.log, None);
    }

    #[test]
    fn a_revocation_fingerprints_every_value_sent_under_a_removed_name() {
        let settings = registry::Settings {
            location: registry::Location::parse("sqlite:/var/lib/r.db").unwrap(),
            key_env: "K".into(),
            password_env: None,
            ttl_secs: 60,
        };
        let named = |name: &'static str| Credential {
            name,
            identity: Identity::parse(name.strip_prefix("DACS:").unwrap()).unwrap(),
        };
        let removed = [named("DACS:EX::A:bob")];
        let header = b"DACS:EX::A:bob=one; DACS:EX::A:amy=x; other=1; DACS:EX::A:bob=two";
        let at = crate::time::from_unix_secs(1_700_000_000);
        let revoke = |env: &Env, removed: &[Credential], header: &[u8]| {
            revocation(env, &settings, "EX", NameCompare::Case, removed, header, at)
        };
        let none = Env::default();
        assert_eq!(revoke(&none, &removed, header), Err(RevokeNote::KeyMissing("K".into())));
        let env = Env::from_pairs([("K", "0123456789abcdef")]);
        assert_eq!(revoke(&env, &[], header), Ok(None), "nothing removed, nothing revoked");
        let (revocation, target) = revoke(&env, &removed, header).unwrap().unwrap();
        assert_eq!(target.federation, "EX");
        let Revoke::Credentials { credentials, at_ms } = revocation.revoke else { panic!() };
        assert_eq!(at_ms, 1_700_000_000_000);
        let key = Key::new(b"0123456789abcdef").unwrap();
        let expected: Vec<Sighting> = [&b"one"[..], b"two"]
            .iter()
            .map(|v| Sighting {
                fingerprint: Fingerprint::of(&key, b"DACS:EX::A:bob", v),
                user: "EX::A:bob".into(),
            })
            .collect();
        assert_eq!(credentials, expected);
        // A forged jar of thousands: at most 64 revoked.
        let names: Vec<String> = (0..500).map(|i| format!("DACS:EX::A:u{i}")).collect();
        let many: Vec<Credential> = names
            .iter()
            .map(|n| Credential { name: n, identity: Identity::parse(&n[5..]).unwrap() })
            .collect();
        let header: String = names.iter().map(|n| format!("{n}=v; ")).collect();
        let (revocation, _) = revoke(&env, &many, header.as_bytes()).unwrap().unwrap();
        let Revoke::Credentials { credentials, .. } = revocation.revoke else { panic!() };
        assert_eq!(credentials.len(), 64);
    }

    #[test]
    fn notes() {
        let env = Env::default();
        let removed = [cred("EX::A:bob")];
        let cookies = |base| settings(base, RelayIdentity::Cookies);
        assert_eq!(plan(&env, &cookies(None), &signout(&removed, None)).0, Note::Off);
        assert_eq!(plan(&env, &cookies(Some("https://h/")), &signout(&[], None)).0, Note::Nothing);
        let env = Env::from_pairs([("IDMS_BASE_API_URL", "https://u:p@h/")]);
        let (note, _) = plan(&env, &cookies(None), &signout(&removed, None));
        assert!(matches!(note, Note::Error(ref why) if !why.contains("u:p")), "{note:?}");
        let (_, p) = plan(&Env::default(), &cookies(Some("https://h/")), &signout(&removed, None));
        let mut p = p.unwrap();
        let persisted = p.persist();
        assert!(
            matches!(p.note(&persisted), Some(Note::BestEffort { signals: 1, .. })),
            "{persisted:?}"
        );
        assert!(!p.spooled);
    }
}
