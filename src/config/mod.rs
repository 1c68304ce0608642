//! The `dacs.conf`-style configuration (§3): `parse` works on text and is pure; `load` is the
//! only function that touches the file system.

mod parse;
mod settings;

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

pub use parse::{Directive, KNOWN_DIRECTIVES, Section, Skipped};
pub use settings::{Form, Hub, HubReceiver, OnStoreError, Rate, Settings};

use crate::cgi::Env;
use crate::urls;

/// Where the configuration is looked for when `DACS_SIGNOUT_CONF` is unset.
pub const DEFAULT_PATH: &str = "/etc/dacs-signout/dacs.conf";

/// The built-in demo configuration: used only when `DACS_SIGNOUT_CONF` is unset and
/// `DEFAULT_PATH` does not exist, so that a newcomer sees the program work at once.
pub const DEMO: &str = r#"<Configuration>
  <Default>
    FEDERATION_NAME "DEMO"
    JURISDICTION_NAME "DEMO"
    COOKIE_NO_DOMAIN "yes"
    SECURE_MODE "off"
    # Same-origin handlers only.
    SIGNOUT_HANDLER_ALLOW "/"
  </Default>
</Configuration>
"#;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    BuiltIn,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => write!(f, "{}", path.display()),
            Source::BuiltIn => f.write_str("built-in demo"),
        }
    }
}

/// A configuration problem, with the line it was found on when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub line: Option<usize>,
    pub message: String,
}

impl ConfigError {
    pub fn at(line: usize, message: impl Into<String>) -> Self {
        ConfigError { line: Some(line), message: message.into() }
    }

    pub fn general(message: impl Into<String>) -> Self {
        ConfigError { line: None, message: message.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Every problem found, in the order met (at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<ConfigError>);

impl Problems {
    pub fn one(problem: ConfigError) -> Problems {
        Problems(vec![problem])
    }
}

impl fmt::Display for Problems {
    /// All of them, `; `-separated: a log line carries every problem, not only the first.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// A configuration as loading found it: the configuration, or where it failed and why.
pub type Loaded = Result<Config, (Source, Problems)>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub source: Source,
    pub default: Section,
    pub jurisdictions: Vec<Section>,
    /// Elements this program does not use (DACS's `<Auth>`, `<Roles>`, ...), skipped.
    pub skipped: Vec<Skipped>,
}

impl Config {
    /// Parses configuration text. Directive values are interpreted later, by `settings`, and
    /// only for the section a request uses.
    pub fn parse(text: &str, source: Source) -> Result<Config, Problems> {
        let parse::Parsed { default, jurisdictions, skipped } =
            parse::sections(text).map_err(Problems)?;
        Ok(Config { source, default, jurisdictions, skipped })
    }

    pub fn demo() -> Config {
        Config::parse(DEMO, Source::BuiltIn).expect("the built-in configuration parses")
    }

    /// Finds and reads the configuration: `$DACS_SIGNOUT_CONF`, else `default_path` (the
    /// programs pass [`DEFAULT_PATH`]; tests another), else the built-in demo. A file that is
    /// named but unreadable is an error, never the demo.
    pub fn load(env: &Env, default_path: &Path) -> Loaded {
        // Empty is unset: `SetEnv DACS_SIGNOUT_CONF ""` or `DACS_SIGNOUT_CONF= cmd` names no file.
        let path = match env.raw("DACS_SIGNOUT_CONF").filter(|raw| !raw.is_empty()) {
            Some(raw) => PathBuf::from(std::ffi::OsStr::from_bytes(raw)),
            // Absent, and only absent: a file we may not read, or a dangling symlink, is a
            // configuration someone meant, and an error, never the demo.
            None if std::fs::symlink_metadata(default_path)
                .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) =>
            {
                return Ok(Config::demo());
            }
            None => default_path.to_owned(),
        };
        Config::load_file(&path)
    }

    pub fn load_file(path: &Path) -> Loaded {
        let source = Source::File(path.to_owned());
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                let problem = ConfigError::general(format!("cannot read the file: {e}"));
                return Err((source, Problems::one(problem)));
            }
        };
        Config::parse(&text, source.clone()).map_err(|e| (source, e))
    }

    /// The `Jurisdiction` section whose `uri` is the longest prefix of `host_path`
    /// (`SERVER_NAME` + `SCRIPT_NAME`), matched on whole path segments, host case-insensitive.
    pub fn jurisdiction_for(&self, host_path: &str) -> Option<&Section> {
        self.jurisdictions
            .iter()
            .filter(|s| s.uri.as_deref().is_some_and(|uri| uri_matches(uri, host_path)))
            .max_by_key(|s| s.uri.as_ref().map_or(0, String::len))
    }

    /// The effective settings for a request to `host_path`.
    pub fn settings(&self, host_path: &str) -> Result<Settings, Problems> {
        let jurisdiction = self.jurisdiction_for(host_path);
        let whose = match jurisdiction.and_then(|s| s.uri.as_deref()) {
            Some(uri) => format!("Jurisdiction {uri}"),
            None => format!("Default section; no Jurisdiction uri matches {host_path:?}"),
        };
        self.settings_of(jurisdiction, &whose)
    }

    /// `jurisdiction` over `Default`; a problem without a line says which section it is in.
    fn settings_of(
        &self,
        jurisdiction: Option<&Section>,
        whose: &str,
    ) -> Result<Settings, Problems> {
        Settings::from_sections(&self.default, jurisdiction).map_err(|problems| {
            Problems(
                problems
                    .into_iter()
                    .map(|mut e| {
                        if e.line.is_none() {
                            e.message = format!("{} ({whose})", e.message);
                        }
                        e
                    })
                    .collect(),
            )
        })
    }

    /// The hub of the section a request to `host_path` uses, read on its own (a hub's
    /// `dacs.conf` needs no signout directives); `None` when it configures none.
    pub fn hub(&self, host_path: &str) -> Result<Option<Hub>, Problems> {
        self.hub_of(self.jurisdiction_for(host_path))
    }

    fn hub_of(&self, jurisdiction: Option<&Section>) -> Result<Option<Hub>, Problems> {
        settings::hub_only(&self.default, jurisdiction).map_err(Problems)
    }

    /// Each hub this file configures, with the `Jurisdiction` uri whose requests reach it
    /// (`None`: `Default`, and every section that only inherits its hub), one per spool
    /// directory: what `dacs_logout_hub --check-config` summarises. Sections with problems
    /// are left out ([`Config::hub_problems`] names them).
    pub fn hubs(&self) -> Vec<(Option<&str>, Hub)> {
        let mut hubs: Vec<(Option<&str>, Hub)> = Vec::new();
        for section in std::iter::once(None).chain(self.jurisdictions.iter().map(Some)) {
            let Ok(Some(hub)) = self.hub_of(section) else { continue };
            if !hubs.iter().any(|(_, seen)| seen.spool_dir == hub.spool_dir) {
                hubs.push((section.and_then(|s| s.uri.as_deref()), hub));
            }
        }
        hubs
    }

    /// Every problem of the hub's directives (`dacs_logout_hub --check-config`), in line
    /// order: `Default`'s, and each `Jurisdiction`'s over it.
    pub fn hub_problems(&self) -> Vec<ConfigError> {
        let mut problems: Vec<ConfigError> = Vec::new();
        for section in std::iter::once(None).chain(self.jurisdictions.iter().map(Some)) {
            for e in self.hub_of(section).err().map(|p| p.0).unwrap_or_default() {
                if !problems.contains(&e) {
                    problems.push(e);
                }
            }
        }
        // One spool, one delivery process, one configuration: a jurisdiction that tells other
        // receivers (or names another instance) through the spool of a hub above it would have
        // its deliveries sent by that hub's process, to that hub's receivers.
        let mut seen: Vec<(Option<&Section>, Hub)> = Vec::new();
        for section in std::iter::once(None).chain(self.jurisdictions.iter().map(Some)) {
            let Ok(Some(hub)) = self.hub_of(section) else { continue };
            let clash = seen.iter().find(|(_, other)| {
                other.spool_dir == hub.spool_dir
                    && (other.receivers != hub.receivers || other.instance != hub.instance)
            });
            if let Some((other, _)) = clash {
                let whose = |s: Option<&Section>| {
                    s.and_then(|s| s.uri.as_deref())
                        .map_or_else(|| "Default".to_owned(), |uri| format!("Jurisdiction {uri}"))
                };
                problems.push(ConfigError::at(
                    section.map_or(self.default.line, |s| s.line),
                    format!(
                        "{} shares HUB_SPOOL_DIR {} with {} but not its HUB_RECEIVER lines or \
                         HUB_INSTANCE: one delivery process serves a spool, with one \
                         configuration; give it a HUB_SPOOL_DIR of its own",
                        whose(section),
                        hub.spool_dir,
                        whose(*other)
                    ),
                ));
            } else {
                seen.push((section, hub));
            }
        }
        problems.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        problems
    }

    /// The relay settings of every section (`Default`, then each `Jurisdiction` over it), one
    /// per spool directory: what `relay` drains and `--check-config` checks.
    pub fn relay_spools(&self) -> Result<Vec<settings::Spooled>, Problems> {
        let mut spools: Vec<settings::Spooled> = Vec::new();
        for section in std::iter::once(None).chain(self.jurisdictions.iter().map(Some)) {
            let spooled = settings::spooled(&self.default, section).map_err(Problems)?;
            if !spools.iter().any(|seen| seen.relay.spool_dir == spooled.relay.spool_dir) {
                spools.push(spooled);
            }
        }
        Ok(spools)
    }

    /// Every usable section's settings, `Default` alone first (when it is usable), each with
    /// its `Jurisdiction` uri.
    pub fn section_settings(&self) -> Vec<(Option<&str>, Settings)> {
        std::iter::once(None)
            .chain(self.jurisdictions.iter().map(Some))
            .filter_map(|section| {
                let settings = Settings::from_sections(&self.default, section).ok()?;
                Some((section.and_then(|s| s.uri.as_deref()), settings))
            })
            .collect()
    }

    /// Directives this program does not know (a real `dacs.conf` has many), in file order.
    pub fn unknown_directives(&self) -> Vec<&Directive> {
        self.sections()
            .flat_map(|s| &s.directives)
            .filter(|d| !KNOWN_DIRECTIVES.contains(&d.name.as_str()))
            .collect()
    }

    fn sections(&self) -> impl Iterator<Item = &Section> {
        std::iter::once(&self.default).chain(&self.jurisdictions)
    }

    /// With `Jurisdiction` sections, what a request that matches none of them would meet:
    /// `Default` alone must then be complete too. A warning only: every request may match one.
    pub fn default_alone_problems(&self) -> Vec<ConfigError> {
        if self.jurisdictions.is_empty() {
            return Vec::new(); // `check` covers Default alone
        }
        Settings::from_sections(&self.default, None).err().unwrap_or_default()
    }

    /// Every problem `--check-config` reports, each once, in line order: each `Jurisdiction`
    /// merged over `Default` (or `Default` alone when there is none), every regular expression
    /// compiled, and unknown directives that look like a typo of a known one.
    pub fn check(&self) -> Vec<ConfigError> {
        let mut problems: Vec<ConfigError> = Vec::new();
        let mut add = |found: Vec<ConfigError>| {
            for e in found {
                if !problems.contains(&e) {
                    problems.push(e);
                }
            }
        };
        let sections: Vec<Option<&Section>> = if self.jurisdictions.is_empty() {
            vec![None]
        } else {
            self.jurisdictions.iter().map(Some).collect()
        };
        for jurisdiction in sections {
            let whose = jurisdiction
                .and_then(|s| s.uri.as_deref())
                .map_or_else(|| "Default section".to_owned(), |uri| format!("Jurisdiction {uri}"));
            match self.settings_of(jurisdiction, &whose) {
                Ok(_) => {}
                Err(Problems(found)) => add(found),
            }
        }
        add(self.sections().flat_map(settings::compile_problems).collect());
        add(self.unknown_directives().into_iter().filter_map(typo).collect());
        problems.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        problems
    }
}

/// An unknown directive one or two edits from a known one (and not a directive of DACS
/// itself): most likely a typo, which would otherwise be ignored in silence.
fn typo(d: &Directive) -> Option<ConfigError> {
    if parse::DACS_DIRECTIVES.contains(&d.name.as_str()) {
        return None;
    }
    let known = KNOWN_DIRECTIVES.iter().find(|k| edit_distance(k, &d.name) <= 2)?;
    Some(ConfigError::at(d.line, format!("unknown directive {}: did you mean {known}?", d.name)))
}

/// Levenshtein distance (ASCII directive names).
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<u8> = b.bytes().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1).min(row[j] + 1).min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

fn uri_matches(uri: &str, host_path: &str) -> bool {
    let split = |s: &str| -> (String, String) {
        let cut = s.find('/').unwrap_or(s.len());
        (s[..cut].to_ascii_lowercase(), s[cut..].to_owned())
    };
    let (uri_host, uri_path) = split(uri);
    let (host, path) = split(host_path);
    uri_host == host && urls::within(&path, &uri_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"<Configuration>
<Default>
FEDERATION_NAME "EX"
FEDERATION_DOMAIN "ex.org"
JURISDICTION_NAME "ROOT"
</Default>
<Jurisdiction uri="ex.org/cgi-bin/a">
JURISDICTION_NAME "A"
</Jurisdiction>
<Jurisdiction uri="EX.org/cgi-bin/a/deeper">
JURISDICTION_NAME "DEEP"
</Jurisdiction>
</Configuration>"#;

    #[test]
    fn longest_jurisdiction_prefix_wins_on_segment_boundaries() {
        let c = Config::parse(TWO, Source::BuiltIn).unwrap();
        let j = |hp: &str| c.settings(hp).unwrap().rules.jurisdiction_name;
        assert_eq!(j("ex.org/cgi-bin/a/dacs_signout"), "A");
        assert_eq!(j("Ex.Org/cgi-bin/a/deeper/dacs_signout"), "DEEP");
        assert_eq!(j("ex.org/cgi-bin/ab/dacs_signout"), "ROOT");
        assert_eq!(j("other.org/cgi-bin/a/x"), "ROOT");
    }

    #[test]
    fn demo_is_valid() {
        let demo = Config::demo();
        assert!(demo.check().is_empty());
        let s = demo.settings("").unwrap();
        assert_eq!(
            (
                s.rules.federation_name.as_str(),
                s.rules.cookie.domain.clone(),
                s.rules.cookie.secure
            ),
            ("DEMO", None, false)
        );
    }
}
