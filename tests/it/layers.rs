//! The layering of `src/` (README, "Architecture"): a module imports only modules that come
//! before it in [`LAYERS`]. The crate root (`lib.rs`, which declares them all) and the binaries
//! (which use the public API) are the top.

use std::path::Path;

/// Bottom to top.
const LAYERS: &[&str] = &[
    "version",
    "error",
    "time",
    "process",
    "urls",
    "log",
    "safe_fs",
    "spool",
    "credentials",
    "cgi",
    "fastcgi",
    "policy",
    "render",
    "registry",
    "relay",
    "config",
    "receiver",
    "hub",
    "signout",
    "guard",
    "cli",
];

/// The top-level modules a source text names after `crate::` (in `use crate::x::…`,
/// `use crate::{x, y::…}` and paths in code), comments left out.
fn imports(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines().map(str::trim_start).filter(|l| !l.starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                found.extend(inner.split(',').filter_map(|item| ident(item.trim())));
            } else if let Some(name) = ident(rest) {
                found.push(name);
            }
        }
    }
    found
}

fn ident(text: &str) -> Option<String> {
    let name: String = text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty() && name != "self").then_some(name)
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let rank = |name: &str| LAYERS.iter().position(|l| *l == name);
    let mut violations = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str().to_str().unwrap();
        let module = top.trim_end_matches(".rs");
        if matches!(module, "lib" | "main" | "bin") {
            continue;
        }
        let own = rank(module).unwrap_or_else(|| {
            panic!("src/{top} is not in LAYERS: place it in the layering (and the README)")
        });
        for imported in imports(&std::fs::read_to_string(file).unwrap()) {
            match rank(&imported) {
                Some(r) if r < own || imported == module => {}
                Some(_) => {
                    violations.push(format!("src/{} imports {imported}", relative.display()))
                }
                None => {} // an item of the crate root, e.g. a re-export
            }
        }
    }
    assert!(violations.is_empty(), "imports that run up the layers:\n{}", violations.join("\n"));
}

#[test]
fn the_readme_states_the_same_order() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let order = LAYERS.join(" → ");
    assert!(readme.contains(&order), "the README's Architecture section should list: {order}");
}

#[test]
fn the_import_scanner_sees_every_form() {
    let text = "use crate::cgi::Env;\nuse crate::{error::Error, log};\n// use crate::cli;\n\
                let x = crate::time::rfc3339(0);\nuse crate::relay::{self, Plan};";
    assert_eq!(imports(text), ["cgi", "error", "log", "time", "relay"]);
}
