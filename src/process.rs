//! What a program is handed besides its environment and argv: its standard streams, its
//! clock, and the configuration path it falls back to.

use std::io::{Read, Write};
use std::path::Path;

use crate::time::Clock;

/// The standard streams.
pub struct Streams<'a> {
    pub stdin: &'a mut dyn Read,
    pub stdout: &'a mut dyn Write,
    pub stderr: &'a mut dyn Write,
}

/// The world a run sees: the programs pass the system clock and `/etc/dacs-signout/dacs.conf`;
/// tests pass their own.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub clock: &'a dyn Clock,
    pub default_conf: &'a Path,
}
