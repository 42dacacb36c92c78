//! The layering every context keeps, checked on the source tree: SQL lives in a
//! context's `store` (or `domain`), never in its gRPC handlers; modules depend
//! downward only, so nothing below `grpc/` reaches back up into it and no two handler
//! modules import each other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The repository root (this crate lives in `tests/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Every service crate's `src/` folder.
fn service_sources() -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(repo().join("services"))
        .expect("services/ is readable")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("src").is_dir())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, p.join("src"))
        })
        .collect();
    found.sort();
    found
}

/// The `.rs` files below `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for path in entries.flatten().map(|e| e.path()) {
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The source without line comments, so a comment that names a module or `sqlx`
/// does not count as a use of it.
fn code_of(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn no_grpc_handler_runs_sql_itself() {
    let mut offenders = Vec::new();
    for (_, src) in service_sources() {
        // The handlers: everything in grpc/, and any other module's grpc.rs
        // (identity's AuthService lives in auth/grpc.rs).
        let handlers = rust_files(&src.join("grpc")).into_iter().chain(
            rust_files(&src)
                .into_iter()
                .filter(|f| f.file_name().is_some_and(|n| n == "grpc.rs")),
        );
        for file in handlers {
            if code_of(&file).contains("sqlx") {
                offenders.push(file.strip_prefix(repo()).unwrap().display().to_string());
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "gRPC handlers must leave SQL to the context's store; sqlx is used in: {offenders:#?}"
    );
}

#[test]
fn nothing_below_the_grpc_layer_reaches_back_up_into_it() {
    let mut offenders = Vec::new();
    for (_, src) in service_sources() {
        for file in rust_files(&src) {
            let relative = file.strip_prefix(&src).unwrap();
            let top = relative.components().next().unwrap().as_os_str();
            // The crate root wires the routes; grpc/ is the layer itself.
            if top == "grpc" || top == "lib.rs" || top == "main.rs" {
                continue;
            }
            if code_of(&file).contains("crate::grpc") {
                offenders.push(file.strip_prefix(repo()).unwrap().display().to_string());
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "modules below grpc/ must not depend on it: {offenders:#?}"
    );
}

#[test]
fn no_two_grpc_modules_import_each_other() {
    let mut circles = Vec::new();
    for (service, src) in service_sources() {
        let dir = src.join("grpc");
        let modules: BTreeSet<String> = rust_files(&dir)
            .iter()
            .filter(|f| f.parent() == Some(dir.as_path()))
            .filter_map(|f| f.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .filter(|m| m != "mod")
            .collect();
        let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for module in &modules {
            let code = code_of(&dir.join(format!("{module}.rs")));
            let named = sibling_paths(&code, "super::")
                .into_iter()
                .chain(sibling_paths(&code, "crate::grpc::"));
            for other in named.filter(|o| o != module && modules.contains(o)) {
                imports.entry(module.clone()).or_default().insert(other);
            }
        }
        for (a, targets) in &imports {
            for b in targets {
                if a < b && imports.get(b).is_some_and(|t| t.contains(a.as_str())) {
                    circles.push(format!("{service}: grpc/{a}.rs <-> grpc/{b}.rs"));
                }
            }
        }
    }
    assert!(
        circles.is_empty(),
        "handler modules import each other both ways: {circles:#?}"
    );
}

/// The first path segment of every path that starts with `prefix` in `code`
/// (`super::leads::LeadRow` and `super::{leads, contacts::X}` name `leads` and
/// `contacts`).
fn sibling_paths(code: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in code.match_indices(prefix) {
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item_start = true;
            let mut current = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !current.is_empty() {
                            names.push(std::mem::take(&mut current));
                        }
                        item_start = true;
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 && item_start {
                    if c.is_alphanumeric() || c == '_' {
                        current.push(c);
                    } else if !current.is_empty() {
                        names.push(std::mem::take(&mut current));
                        item_start = false;
                    }
                }
            }
            if !current.is_empty() {
                names.push(current);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                names.push(name);
            }
        }
    }
    names
}

#[test]
fn sibling_paths_read_plain_and_grouped_imports() {
    let code = "use super::{leads::{self, LeadRow}, contacts, API};\nlet x = super::merge::run();";
    assert_eq!(
        sibling_paths(code, "super::"),
        vec!["leads", "contacts", "API", "merge"]
    );
}
