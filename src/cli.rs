//! The command line (no `GATEWAY_INTERFACE`): `--check-config`, `demo`, `--version`, `--help`.

use std::io::Write;
use std::path::Path;

use crate::cgi::Env;
use crate::config::{Config, DEFAULT_PATH};

const USAGE: &str = "\
usage: dacs_signout --check-config [FILE]   check a configuration (default: $DACS_SIGNOUT_CONF,
                                           else /etc/dacs-signout/dacs.conf, else the built-in demo)
       dacs_signout demo [--port N]          serve a local demo portal on 127.0.0.1 (default port 8421)
       dacs_signout --version | --help

Run by a web server (GATEWAY_INTERFACE set), dacs_signout is the DACS signout CGI program and
ignores its arguments. See README.md.
";

pub fn run(env: &Env, args: &[String], stdout: &mut dyn Write, stderr: &mut dyn Write) -> i32 {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["--version" | "-V"] => {
            let _ = writeln!(stdout, "dacs_signout {}", crate::VERSION);
            0
        }
        ["--help" | "-h"] => {
            let _ = stdout.write_all(USAGE.as_bytes());
            0
        }
        ["--check-config"] => check_config(env, None, stdout),
        ["--check-config", file] => check_config(env, Some(Path::new(file)), stdout),
        ["demo"] => crate::demo::run(8421, stdout, stderr),
        ["demo", "--port", port] => match port.parse() {
            Ok(port) => crate::demo::run(port, stdout, stderr),
            Err(_) => usage_error(stderr, &format!("not a port number: {port}")),
        },
        [] => usage_error(stderr, "not run as CGI (GATEWAY_INTERFACE is unset) and no command given"),
        [other, ..] => usage_error(stderr, &format!("unknown command {other}")),
    }
}

fn usage_error(stderr: &mut dyn Write, message: &str) -> i32 {
    let _ = writeln!(stderr, "dacs_signout: {message}\n\n{USAGE}");
    2
}

/// Prints every problem with its line, then the directives it ignores. Exit 1 on a problem.
fn check_config(env: &Env, file: Option<&Path>, out: &mut dyn Write) -> i32 {
    let loaded = match file {
        Some(path) => Config::load_file(path),
        None if env.is_set("DACS_SIGNOUT_CONF") => Config::load(env),
        None if Path::new(DEFAULT_PATH).exists() => Config::load_file(Path::new(DEFAULT_PATH)),
        None => Ok(Config::demo()),
    };
    let config = match loaded {
        Ok(config) => config,
        Err((source, e)) => {
            let _ = writeln!(out, "{source}: {e}");
            return 1;
        }
    };
    let problems = config.check();
    for problem in &problems {
        let _ = writeln!(out, "{}: {problem}", config.source);
    }
    let unknown = config.unknown_directives();
    if !unknown.is_empty() {
        let _ = writeln!(out, "{}: unknown directives (ignored):", config.source);
        for d in unknown {
            let _ = writeln!(out, "  line {}: {}", d.line, d.name);
        }
    }
    if problems.is_empty() {
        let _ = writeln!(out, "{}: ok", config.source);
        0
    } else {
        1
    }
}
