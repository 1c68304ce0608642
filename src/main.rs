//! Thin: the environment, stdin, stdout and stderr in; the exit code out. All behaviour lives in
//! the library (`dacs_signout::run`).
//!
//! A CGI program pays for a process start on every request, so this entry point skips the Rust
//! runtime's start-up (`#![no_main]`, a C `main`): that start-up reads `/proc/self/maps` to find
//! the main thread's stack guard and installs a stack-overflow handler on an alternate signal
//! stack, which together cost about 100,000 instructions and five system calls, more than the
//! whole signout (see BENCHMARKS.md). The one piece of it this program relies on is kept:
//! `SIGPIPE` is ignored, so a client that went away makes a write fail (exit 1), not kill the
//! process. `std::env` still sees argv and the environment: glibc hands them to std's
//! initialiser in `.init_array`, which the C `main` does not bypass.

// Under `cargo test` the bin is built with libtest's own `main` (it has no unit tests): the C
// entry point below is then left out, or it would run the program with `--list`.
#![cfg_attr(not(test), no_main)]
#![cfg(not(test))]

use std::io::{self, Write};

use dacs_signout::cgi::Env;

/// `signal(2)`: the one libc call std does not make for us when its runtime is skipped.
mod sigpipe {
    const SIGPIPE: i32 = 13;
    const SIG_IGN: usize = 1;

    unsafe extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }

    pub fn ignore() {
        // SAFETY: `signal` with `SIG_IGN` installs no handler code; it only changes the
        // disposition of SIGPIPE, as std's runtime start-up does, before any thread exists.
        unsafe {
            signal(SIGPIPE, SIG_IGN);
        }
    }
}

// SAFETY: the symbol `main` is the C entry point that the C runtime calls once, with the
// process's argc and argv; `#![no_main]` means nothing else defines it.
#[unsafe(no_mangle)]
extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    sigpipe::ignore();
    let env = Env::from_os(std::env::vars_os());
    let args: Vec<String> =
        std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    let mut stdout = io::stdout().lock();
    let code = dacs_signout::run(
        &env,
        &args,
        &mut io::stdin().lock(),
        &mut stdout,
        &mut io::stderr().lock(),
    );
    // std's runtime would flush stdout at exit; without it, flush here (a failure changes
    // nothing: the CGI path has already flushed and reported its own write errors).
    let _ = stdout.flush();
    code
}
