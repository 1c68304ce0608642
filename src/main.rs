//! `dacs_signout`: the signout CGI program. Thin: all behaviour lives in the library
//! (`dacs_signout::signout`). Its command line (`--check-config`, `relay`, `registry`, `demo`)
//! is `dacs_signout_cli`'s, to which it hands any run that is not a CGI request.
//!
//! A CGI program pays for a process start on every request, so this entry point skips the Rust
//! runtime's start-up (`#![no_main]`, a C `main`): that start-up reads `/proc/self/maps` to find
//! the main thread's stack guard and installs a stack-overflow handler on an alternate signal
//! stack, which together cost about 100,000 instructions and five system calls, more than the
//! whole signout (see BENCHMARKS.md). `dacs_signout::start` keeps the one piece of it the
//! programs rely on: `SIGPIPE` ignored.

// Under `cargo test` the bin is built with libtest's own `main` (it has no unit tests): the C
// entry point below is then left out, or it would run the program with `--list`.
#![cfg_attr(not(test), no_main)]
#![cfg(not(test))]

use std::ffi::{c_char, c_int};

// SAFETY: the symbol `main` is the C entry point that the C runtime calls once, with the
// process's argc and argv; `#![no_main]` means nothing else defines it.
#[allow(unsafe_code)] // audited: the entry point
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: argc and argv are the C runtime's, as `start` requires.
    unsafe { dacs_signout::start(argc, argv, dacs_signout::signout) }
}
