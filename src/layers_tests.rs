//! The layers of this crate, checked: every `crate::x` path in `src/` must point to the same or a
//! lower layer, no two top-level modules may import each other in a loop, nor two files of one
//! folder through `super::`. The core crate (`crates/core`) is the bottom; the compiler already
//! refuses its imports from up here. A new top-level module fails this test until it is given a
//! layer below.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// From the bottom up. A module may use its own layer and every layer below it.
const LAYERS: &[(&str, &[&str])] = &[
    // Re-exported from crates/core: pure data and decisions, no IO.
    (
        "core",
        &[
            "config", "duration", "exit", "field", "guard", "model", "plan", "report", "schedule",
            "selector", "source", "tuning",
        ],
    ),
    // The crate's error (it carries reqwest's and kube's), progress events, the resource types.
    ("base", &["error", "progress", "crd"]),
    // One module per outside system, each knowing nothing of policies.
    (
        "edges",
        &[
            "http",
            "gateway",
            "discover",
            "metrics",
            "server",
            "telemetry",
        ],
    ),
    // A policy checked into what a sweep is given, and where its secrets come from.
    ("policy", &["policy", "secrets"]),
    // The long-lived engine and the sweep it runs.
    ("engine", &["engine", "sweep"]),
    // Kubernetes: discovery through the API, and the one step that resolves credentials.
    ("kubernetes", &["k8s", "prepare"]),
    // The front doors, and the command line over them.
    (
        "front doors",
        &["runner", "controller", "validate", "inspect"],
    ),
    ("command line", &["cli"]),
];

/// Files that belong to no module: the crate root and the binary.
const ROOTS: &[&str] = &["lib.rs", "main.rs", "layers_tests.rs"];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file under `src/` belongs to: `src/sweep/act.rs` → `sweep`, and
/// `src/metrics_tests.rs` (its tests, by `#[path]`) → `metrics`.
fn module_of(relative: &Path) -> String {
    let first = relative.components().next().unwrap().as_os_str();
    let name = first.to_string_lossy();
    let name = name.trim_end_matches(".rs");
    name.strip_suffix("_tests").unwrap_or(name).to_string()
}

/// The line without its comment, so a doc link or a remark is not an import.
fn code_of(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

/// Every top-level module named by a `crate::` path in `text`, with its line: `crate::x::y`,
/// and each item of `crate::{x, y::z}` (over several lines too).
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    paths_after(text, "crate::")
}

/// The first segment after each `prefix` (`crate::` or `super::`) in `text`, with its line, as
/// [`crate_paths`] describes.
fn paths_after(text: &str, prefix: &str) -> Vec<(usize, String)> {
    let code: Vec<&str> = text.lines().map(code_of).collect();
    let joined = code.join("\n");
    let mut found = Vec::new();
    let mut rest = joined.as_str();
    let mut offset = 0;
    while let Some(i) = rest.find(prefix) {
        let at = offset + i;
        let preceded = joined[..at].chars().next_back();
        let after = &joined[at + prefix.len()..];
        let line = joined[..at].matches('\n').count() + 1;
        // `$crate::` in a macro and `pushgateway_janitor_core::` are not this crate's paths.
        if !preceded.is_some_and(|c| c == '$' || c == '_' || c.is_alphanumeric()) {
            if let Some(group) = after.strip_prefix('{') {
                for name in group_heads(group) {
                    found.push((line, name));
                }
            } else {
                found.push((line, ident(after)));
            }
        }
        offset = at + prefix.len();
        rest = &joined[offset..];
    }
    found.retain(|(_, name)| !name.is_empty() && name != "self");
    found
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The first segment of each item of a `{...}` group, up to its closing brace.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut start = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => start = true,
            c if start && !c.is_whitespace() => {
                heads.push(ident(&group[i..]));
                start = false;
            }
            _ => {}
        }
    }
    heads
}

/// Top-level modules that import each other in a loop, each loop as its modules in order.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    fn reaches(
        edges: &BTreeMap<String, BTreeSet<String>>,
        from: &str,
        to: &str,
        seen: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> bool {
        for next in edges.get(from).into_iter().flatten() {
            if next == to {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if reaches(edges, next, to, seen, path) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut found: Vec<Vec<String>> = Vec::new();
    for start in edges.keys() {
        let mut path = vec![start.clone()];
        if reaches(edges, start, start, &mut BTreeSet::new(), &mut path) {
            let mut members = path.clone();
            members.sort();
            if !found.iter().any(|c| {
                let mut c = c.clone();
                c.sort();
                c == members
            }) {
                found.push(path);
            }
        }
    }
    found
}

/// What the check finds in the files under `src`: upward imports as `file:line: ...`, modules
/// with no layer, and circles.
fn violations(src: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    let mut problems = Vec::new();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src).unwrap();
        if ROOTS.iter().any(|r| relative == Path::new(r)) {
            continue;
        }
        let module = module_of(relative);
        let shown = Path::new("src").join(relative).display().to_string();
        let Some(own) = layer_of(&module) else {
            problems.push(format!("{shown}: module `{module}` has no layer in LAYERS"));
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, target) in crate_paths(&text) {
            if target == module || target.chars().next().is_some_and(char::is_uppercase) {
                // Its own module, or a name the crate root re-exports (`crate::Error`).
                continue;
            }
            let Some(theirs) = layer_of(&target) else {
                problems.push(format!("{shown}:{line}: `crate::{target}` has no layer"));
                continue;
            };
            if theirs > own {
                problems.push(format!(
                    "{shown}:{line}: `{module}` ({}) imports `crate::{target}` ({}), a layer above",
                    LAYERS[own].0, LAYERS[theirs].0
                ));
            }
            edges.entry(module.clone()).or_default().insert(target);
        }
    }
    for circle in circles(&edges) {
        problems.push(format!("circle: {} -> {}", circle.join(" -> "), circle[0]));
    }
    problems.extend(sibling_circles(src, &files_under(src)));
    problems
}

fn files_under(src: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    files.sort();
    files
}

/// Files of one folder that import each other in a loop through `super::` (`sweep/act.rs` and
/// `sweep/confirm.rs`, say), each loop named by its files. A folder's `mod.rs` and test files are
/// left out: a parent declares its children, and a test may import anything.
fn sibling_circles(src: &Path, files: &[PathBuf]) -> Vec<String> {
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let stem = file.file_stem().unwrap().to_string_lossy().to_string();
        if stem == "mod" || stem.ends_with("_tests") {
            continue;
        }
        let dir = file.parent().unwrap();
        let node = |name: &str| {
            let shown = Path::new("src").join(dir.strip_prefix(src).unwrap());
            shown.join(format!("{name}.rs")).display().to_string()
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (_, target) in paths_after(&text, "super::") {
            let sibling = dir.join(format!("{target}.rs")).is_file()
                || dir.join(&target).join("mod.rs").is_file();
            if sibling && target != stem && !target.ends_with("_tests") {
                edges.entry(node(&stem)).or_default().insert(node(&target));
            }
        }
    }
    circles(&edges)
        .into_iter()
        .map(|c| format!("circle of files: {} -> {}", c.join(" -> "), c[0]))
        .collect()
}

#[test]
fn no_import_runs_up_a_layer_and_no_modules_import_each_other_in_a_loop() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let problems = violations(&src);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_sees_grouped_multi_line_and_nested_paths_but_not_comments() {
    let text = "use crate::{\n    engine::Engine,\n    gateway::{self, Gateway},\n    Error,\n};\n\
                // crate::validate in a remark\nlet x = crate::sweep::run(); /// [`crate::runner`]\n\
                $crate::inspect!();\nlet y = pushgateway_janitor_core::plan::Policy;";
    let names: Vec<(usize, String)> = crate_paths(text);
    assert_eq!(
        names,
        [
            (1, "engine".to_string()),
            (1, "gateway".to_string()),
            (1, "Error".to_string()),
            (7, "sweep".to_string()),
        ]
    );
}

#[test]
fn an_upward_import_and_a_circle_are_each_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("gateway")).unwrap();
    std::fs::write(src.join("gateway/mod.rs"), "use crate::http::Egress;\n").unwrap();
    std::fs::write(
        src.join("http.rs"),
        "//! Docs.\n\nuse crate::gateway::Gateway;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("plan.rs"),
        "fn f() {\n    crate::sweep::run();\n}\n",
    )
    .unwrap();
    std::fs::write(src.join("attic.rs"), "").unwrap();
    let problems = violations(src);
    assert_eq!(
        problems,
        [
            "src/attic.rs: module `attic` has no layer in LAYERS",
            "src/plan.rs:2: `plan` (core) imports `crate::sweep` (engine), a layer above",
            "circle: gateway -> http -> gateway",
        ]
    );
}

#[test]
fn files_of_one_folder_importing_each_other_are_a_circle() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir(src.join("sweep")).unwrap();
    std::fs::write(src.join("sweep/mod.rs"), "mod act;\nmod confirm;\n").unwrap();
    std::fs::write(
        src.join("sweep/act.rs"),
        "use super::confirm::{confirm, ToConfirm};\n",
    )
    .unwrap();
    std::fs::write(src.join("sweep/confirm.rs"), "use super::act::Acted;\n").unwrap();
    std::fs::write(src.join("sweep/act_tests.rs"), "use super::act::Job;\n").unwrap();
    let problems = sibling_circles(src, &files_under(src));
    assert_eq!(
        problems,
        ["circle of files: src/sweep/act.rs -> src/sweep/confirm.rs -> src/sweep/act.rs"]
    );
}
