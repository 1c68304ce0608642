//! The signout decision: what to expire and where the browser goes. Pure: no I/O.

use std::path::PathBuf;

use url::Url;

use super::driveby;
use super::handler::{self, HandlerDirective};
use crate::cgi::Request;
use crate::config::Settings;
use crate::credentials::expiry::set_cookie;
use crate::credentials::{Filter, Selection};
use crate::error::Error;
use crate::render::Format;

/// What the HTML answer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Page {
    /// `Status: 302` to this absolute URL (a CGI `Location` that is a bare path would be a
    /// server-side redirect, and the browser would never see the expiring cookies).
    Redirect(String),
    /// `SIGNOUT_HANDLER "file PATH"`: read at the edge, sent as the page.
    File(PathBuf),
    /// `SIGNOUT_HANDLER "message TEXT"`.
    Message(String),
    /// The built-in page (and every XML and JSON answer).
    BuiltIn,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    pub selection: Selection<'a>,
    /// One `Set-Cookie` value per expired cookie.
    pub set_cookies: Vec<String>,
    pub page: Page,
    /// How the handler was decided, for the log line.
    pub handler_note: String,
}

pub fn decide<'a>(request: &'a Request, settings: &Settings) -> Result<Decision<'a>, Error> {
    driveby::check(&request.fetch, settings.cross_site)?;
    let filter = Filter {
        username: request.args.username.clone(),
        jurisdiction: request.args.jurisdiction.clone(),
    };
    let selection = Selection::select(
        &request.cookie_header,
        &settings.federation_name,
        &filter,
        settings.name_compare,
    );
    let syntax = request.args.cookie_syntax.unwrap_or(settings.cookie_syntax);
    let set_cookies =
        selection.expired_names().map(|name| set_cookie(name, &settings.cookie, syntax)).collect();
    let (page, handler_note) = page(request, settings, !selection.removed.is_empty())?;
    Ok(Decision { selection, set_cookies, page, handler_note })
}

fn page(
    request: &Request,
    settings: &Settings,
    removed_any: bool,
) -> Result<(Page, String), Error> {
    let asked = request.args.handler.as_deref();
    let configured = settings.signout_handler.as_ref();
    if asked.is_none() && configured.is_none() {
        return Ok((Page::BuiltIn, "none".into()));
    }
    if request.args.format != Format::Html {
        return Ok((Page::BuiltIn, "ignored-not-html".into()));
    }
    // As DACS does: the handler is for someone who was signed in.
    if !removed_any {
        return Ok((Page::BuiltIn, "unused-nothing-removed".into()));
    }
    // Normalised (lowercase host, IDNA, default port dropped) as rule origins are.
    let own_origin = request
        .server
        .origin()
        .and_then(|o| Url::parse(&o).ok())
        .map(|u| u.origin().ascii_serialization());
    let redirect = |url: Url| {
        Page::Redirect(handler::location(
            url,
            &settings.federation_name,
            &settings.jurisdiction_name,
        ))
    };
    let mut note = String::new();
    if let Some(candidate) = asked {
        let verdict =
            handler::allowed(candidate, &settings.allow, own_origin.as_deref()).map_err(|e| {
                Error::internal(
                    "the signout service is misconfigured",
                    format!("SIGNOUT_HANDLER_ALLOW: {e}"),
                )
            })?;
        match verdict {
            Ok(url) => return Ok((redirect(url), "argument".into())),
            Err(refusal) => note = format!("refused-{}/", refusal.as_str()),
        }
    }
    let page = match configured {
        None => {
            note.push_str("builtin");
            Page::BuiltIn
        }
        Some(HandlerDirective::Url(target)) => {
            let base = own_origin.as_deref().and_then(|o| Url::parse(o).ok());
            let url = Url::parse(target).or_else(|e| base.ok_or(e).and_then(|b| b.join(target)));
            match url {
                Ok(url) => {
                    note.push_str("directive-url");
                    redirect(url)
                }
                Err(_) => {
                    note.push_str("directive-url-unresolved");
                    Page::BuiltIn
                }
            }
        }
        Some(HandlerDirective::File(path)) => {
            note.push_str("directive-file");
            Page::File(path.clone())
        }
        Some(HandlerDirective::Message(text)) => {
            note.push_str("directive-message");
            Page::Message(text.clone())
        }
    };
    Ok((page, note))
}
