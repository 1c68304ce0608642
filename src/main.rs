use std::io;

use dacs_signout::cgi::Env;

fn main() {
    let env = Env::from_os(std::env::vars_os());
    let args: Vec<String> = std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned()).collect();
    let code =
        dacs_signout::run(&env, &args, &mut io::stdin().lock(), &mut io::stdout().lock(), &mut io::stderr().lock());
    std::process::exit(code);
}
