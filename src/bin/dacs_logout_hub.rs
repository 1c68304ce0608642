//! `dacs_logout_hub`: the logout hub (SPEC §14): a CGI program for senders and receipts, and
//! the command line of its delivery process. Thin: the behaviour is `dacs_signout::hub`; the
//! entry point is `src/main.rs`'s (no Rust runtime start-up, `SIGPIPE` ignored).

#![cfg_attr(not(test), no_main)]
#![cfg(not(test))]

use std::ffi::{c_char, c_int};

// SAFETY: the symbol `main` is the C entry point that the C runtime calls once, with the
// process's argc and argv; `#![no_main]` means nothing else defines it.
#[allow(unsafe_code)] // audited: the entry point
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: argc and argv are the C runtime's, as `start` requires.
    unsafe { dacs_signout::start(argc, argv, dacs_signout::hub) }
}
