//! What a program is handed besides its environment and argv: its standard streams, its
//! clock, and the configuration path it falls back to.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

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

/// The program that holds `dacs_signout`'s command line (`--check-config`, `relay`, `registry`,
/// `demo`) and the relay's delivery child, installed beside it. `dacs_signout` itself is only
/// the CGI program, so that a request does not map the TLS client and the registry's stores it
/// never uses (BENCHMARKS.md, "The build"); it hands every command line to this one.
pub const CLI_PROGRAM: &str = "dacs_signout_cli";

/// `name` in the directory of the running executable (symlinks resolved): where
/// `scripts/install` and cargo put the programs, together.
pub fn beside_this(name: &str) -> std::io::Result<PathBuf> {
    Ok(std::env::current_exe()?.with_file_name(name))
}
