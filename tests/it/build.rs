//! The build people get (issue #13): on *-linux-gnu, `.cargo/config.toml` makes every program a
//! static, non-PIE executable, so that a CGI request pays no dynamic loader (BENCHMARKS.md).
//! The tests run the programs cargo built for them, with the same configuration as
//! `cargo build --release`: checking their form here checks the configuration took effect.

use crate::support::{BIN, CLI, GUARD, RECEIVER};

/// The ELF type (`e_type`) and whether a program header asks for an interpreter (`PT_INTERP`,
/// the dynamic loader).
fn elf_form(path: &str) -> (u16, bool) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF", "{path} is not an ELF file");
    assert_eq!(bytes[4], 2, "{path}: a 64-bit ELF file");
    assert_eq!(bytes[5], 1, "{path}: little-endian");
    let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap());
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(32) as usize, u16_at(54) as usize, u16_at(56) as usize);
    const PT_INTERP: u32 = 3;
    let interp = (0..phnum).any(|i| u32_at(phoff + i * phentsize) == PT_INTERP);
    (u16_at(16), interp)
}

#[test]
fn every_program_is_a_static_non_pie_executable() {
    const ET_EXEC: u16 = 2;
    for program in [BIN, CLI, RECEIVER, GUARD] {
        assert_eq!(
            elf_form(program),
            (ET_EXEC, false),
            "{program}: expected a static non-PIE executable (ET_EXEC, no interpreter); \
             is .cargo/config.toml in effect (RUSTFLAGS set in the environment replaces it)?"
        );
    }
}

/// `dacs_signout` is the CGI program alone: run from a shell, it hands the command line to
/// `dacs_signout_cli` beside it, and the commands answer as they always did.
#[test]
fn the_command_line_is_handed_to_dacs_signout_cli() {
    use std::process::Command;
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program).args(args).env_clear().output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    for args in [&["--help"][..], &["--version"], &["--check-config", "/nonexistent/dacs.conf"]] {
        assert_eq!(run(BIN, args), run(CLI, args), "{args:?}");
    }
    assert!(run(BIN, &["--help"]).1.contains("dacs_signout relay"));

    // Alone, without its command line: the CGI still serves; a command says what is missing.
    let dir = crate::support::fresh_dir("dacs-signout-alone");
    let alone = dir.join("dacs_signout");
    std::fs::copy(BIN, &alone).unwrap();
    let out = Command::new(&alone).arg("relay").env_clear().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(127), "{stderr}");
    assert!(stderr.contains("dacs_signout_cli, installed beside it"), "{stderr}");
    let out = Command::new(&alone)
        .env_clear()
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("REQUEST_METHOD", "GET")
        .env("QUERY_STRING", "FORMAT=JSON")
        .env("HTTP_COOKIE", "DACS:DEMO::DEMO:alice=x")
        .output()
        .unwrap();
    assert!(
        out.stdout.starts_with(b"Status: 200 OK\r\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
