//! `dacs_signout_cli`: `dacs_signout`'s command line (`--check-config`, `relay`, `registry`,
//! `demo`) and the relay's delivery child (`relay --deliver`), with the TLS client and the
//! registry's stores; also the whole signout CGI program, as `dacs_signout` was before it
//! left those out (BENCHMARKS.md, "The build"). `dacs_signout` run from a shell execs this
//! program, installed beside it, so operators keep typing `dacs_signout relay`. Thin: the
//! behaviour is `dacs_signout::run`; the entry point is `src/main.rs`'s.

#![cfg_attr(not(test), no_main)]
#![cfg(not(test))]

use std::ffi::{c_char, c_int};

// SAFETY: the symbol `main` is the C entry point that the C runtime calls once, with the
// process's argc and argv; `#![no_main]` means nothing else defines it.
#[allow(unsafe_code)] // audited: the entry point
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: argc and argv are the C runtime's, as `start` requires.
    unsafe { dacs_signout::start(argc, argv, dacs_signout::run) }
}
