//! The signout decision: drive-by rules, handler policy, and what to expire. Pure: the rules
//! come in as [`Rules`], built by `config` from a `dacs.conf` section.

pub mod driveby;
pub mod handler;
pub mod signout;

pub use signout::{Decision, HandlerNote, Page, Verdict, decide};

use crate::credentials::{CookieAttributes, CookieSyntax, NameCompare};
use driveby::CrossSite;
use handler::{AllowRule, HandlerDirective};

/// What a signout obeys: one jurisdiction's directives, interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub federation_name: String,
    pub jurisdiction_name: String,
    /// `FEDERATION_DOMAIN` as configured (reported in the output even with `COOKIE_NO_DOMAIN`).
    pub federation_domain: Option<String>,
    pub cookie: CookieAttributes,
    pub name_compare: NameCompare,
    pub cookie_syntax: CookieSyntax,
    pub signout_handler: Option<HandlerDirective>,
    pub allow: Vec<AllowRule>,
    pub cross_site: CrossSite,
    /// The `Clear-Site-Data` header value, when enabled.
    pub clear_site_data: Option<String>,
    /// `SIGNOUT_CLIENT "ID URL"`: Keyrock's registered apps and their sign-out URLs.
    pub clients: Vec<(String, String)>,
}
