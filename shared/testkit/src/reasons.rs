//! A context's error catalogue against its contract: the reasons its code can give
//! (its `REASONS`) must be exactly those its proto comments list after `Reasons:` (or
//! `Reasons on every RPC:`), so a client reading the contract is never surprised.

use std::collections::BTreeSet;
use std::path::Path;

/// The reasons listed in the comments of the proto files in `dir`: the UPPER_SNAKE
/// words after each `Reasons:` (or `Reasons on every RPC:`), up to the next full stop.
///
/// # Panics
/// When `dir` cannot be read.
pub fn listed_in_protos(dir: &Path) -> BTreeSet<String> {
    let mut listed = BTreeSet::new();
    for entry in std::fs::read_dir(dir).expect("the context's proto directory") {
        let path = entry.expect("a proto file").path();
        if path.extension().is_none_or(|e| e != "proto") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("a readable proto file");
        let comments = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("//"))
            .collect::<Vec<_>>()
            .join(" ");
        for after in comments.split("Reasons").skip(1) {
            let Some((head, list)) = after.split_once(':') else {
                continue;
            };
            if head.len() > 20 {
                continue;
            }
            let list = list.split('.').next().unwrap_or_default();
            listed.extend(
                list.split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
                    .filter(|w| w.len() > 2)
                    .map(str::to_owned),
            );
        }
    }
    listed
}

/// Asserts that `reasons` (a context's catalogue) and the reasons listed in the protos
/// of `dir` are the same set.
///
/// # Panics
/// When they differ, naming the reasons on either side only.
pub fn assert_catalogue_matches(dir: &Path, reasons: &[&str]) {
    let listed = listed_in_protos(dir);
    assert!(
        !listed.is_empty(),
        "no `Reasons:` lists in {}",
        dir.display()
    );
    let missing: Vec<_> = reasons.iter().filter(|r| !listed.contains(**r)).collect();
    assert!(
        missing.is_empty(),
        "reasons no RPC comment lists: {missing:?}"
    );
    let unknown: Vec<_> = listed
        .iter()
        .filter(|r| !reasons.contains(&r.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "listed reasons the code never gives: {unknown:?}"
    );
}
