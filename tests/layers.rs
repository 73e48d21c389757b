//! The core's layering, read from its source: pyo3 only in the binding, and no module that
//! imports one that imports it back (test code aside).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The core's source files, without the files that hold only tests.
fn core_files(src: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    sources(src, &mut files);
    files.retain(|path| {
        let relative = path.strip_prefix(src).unwrap();
        !relative.components().any(|c| c.as_os_str() == "tests")
            && relative.file_name().is_some_and(|n| n != "tests.rs")
    });
    assert!(files.len() > 30, "too few source files: {files:?}");
    files
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's code without its tests and comments.
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => &text,
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module a file belongs to, as the layers go: `pass`, `web`, `signals` and `py` are one
/// module each with their folders; every other file is one.
fn module_of(src: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_owned()
}

#[test]
fn pyo3_is_only_in_the_binding() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for path in core_files(&src) {
        let module = module_of(&src, &path);
        if module == "py" || module == "lib" {
            continue;
        }
        assert!(
            !code(&path).contains("pyo3"),
            "{} uses pyo3; only src/py/ may",
            path.display()
        );
    }
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = core_files(&src);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let modules: BTreeSet<String> = files.iter().map(|p| module_of(&src, p)).collect();
    for path in &files {
        let from = module_of(&src, path);
        let text = code(path);
        for module in &modules {
            if *module != from && text.contains(&format!("crate::{module}::")) {
                edges
                    .entry(from.clone())
                    .or_default()
                    .insert(module.clone());
            }
        }
    }
    // Depth-first search for a path back to where it started.
    for start in &modules {
        let mut stack: Vec<Vec<&String>> = vec![vec![start]];
        let mut seen = BTreeSet::new();
        while let Some(path) = stack.pop() {
            let last = *path.last().unwrap();
            for next in edges.get(last).into_iter().flatten() {
                assert!(next != start, "a circle: {path:?} -> {next}");
                if seen.insert(next) {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
    }
}
