//! `dacs_guard`: the FastCGI daemon that refuses revoked credentials on every request to
//! protected content (SPEC §13). Thin: the behaviour is `dacs_signout::guard`.

#![cfg_attr(not(test), no_main)]
#![cfg(not(test))]

use std::ffi::{c_char, c_int};

// SAFETY: the symbol `main` is the C entry point that the C runtime calls once, with the
// process's argc and argv; `#![no_main]` means nothing else defines it.
#[allow(unsafe_code)] // audited: the entry point
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: argc and argv are the C runtime's, as `start` requires.
    unsafe { dacs_signout::start(argc, argv, dacs_signout::guard) }
}
