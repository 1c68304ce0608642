//! `dacs_signout`: thin. The environment, argv, stdin, stdout and stderr in; the exit code out.
//! All behaviour lives in the library (`dacs_signout::run`).
//!
//! A CGI program pays for a process start on every request, so this entry point skips the Rust
//! runtime's start-up (`#![no_main]`, a C `main`): that start-up reads `/proc/self/maps` to find
//! the main thread's stack guard and installs a stack-overflow handler on an alternate signal
//! stack, which together cost about 100,000 instructions and five system calls, more than the
//! whole signout (see BENCHMARKS.md). The one piece of it this program relies on is kept:
//! `SIGPIPE` is ignored, so a client that went away makes a write fail (exit 1), not kill the
//! process.

// Under `cargo test` the bin is built with libtest's own `main` (it has no unit tests): the C
// entry point below is then left out, or it would run the program with `--list`.
#![cfg_attr(not(test), no_main)]
#![cfg(not(test))]

use std::ffi::{CStr, c_char, c_int};
use std::io::{self, Write};

use dacs_signout::{Env, Streams};

// SAFETY: the symbol `main` is the C entry point that the C runtime calls once, with the
// process's argc and argv; `#![no_main]` means nothing else defines it.
#[allow(unsafe_code)] // audited: the entry point, `signal`, and reading argv
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: `signal` with `SIG_IGN` installs no handler code; it only changes the
    // disposition of SIGPIPE, as std's runtime start-up does, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // SAFETY: the C runtime passes `argc` valid pointers to NUL-terminated strings in `argv`,
    // alive for the whole process.
    let args: Vec<String> = (1..usize::try_from(argc).unwrap_or(0))
        .map(|i| unsafe { CStr::from_ptr(*argv.add(i)) }.to_string_lossy().into_owned())
        .collect();
    let env = Env::from_os(std::env::vars_os());
    let mut stdout = io::stdout().lock();
    let streams = Streams {
        stdin: &mut io::stdin().lock(),
        stdout: &mut stdout,
        stderr: &mut io::stderr().lock(),
    };
    let code = dacs_signout::run(&env, &args, streams);
    // std's runtime would flush stdout at exit; without it, flush here (a failure changes
    // nothing: the CGI path has already flushed and reported its own write errors).
    let _ = stdout.flush();
    code
}
