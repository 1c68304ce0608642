//! Integration tests: the built binary, run as a CGI program.

mod support;

mod browser;
#[cfg(all(target_os = "linux", target_env = "gnu", target_arch = "x86_64"))]
mod build;
mod cli;
mod dacs_conf;
mod driveby;
mod errors;
mod formats;
mod fuzz_corpus;
mod guard;
mod handler;
mod hub;
mod install;
mod layers;
mod props;
mod receiver;
mod registry;
mod relay;
mod servers;
mod signout;
mod spool;
