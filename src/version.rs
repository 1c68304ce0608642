//! The program's version: `--version`, and the user agent the hub sees when the browser sent
//! none.

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
