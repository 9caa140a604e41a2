//! What the template test files share: the repository's template, fresh or broken, and the Rust
//! source of a crate (to check that a function reads what the template gives it). Each test file
//! uses a different part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use aws_template::template::repository_template;
use aws_template::Template;
use serde_json::Value;

/// `infra/aws/template.yaml`, parsed.
pub fn template() -> Template {
    Template::load(&repository_template()).expect("template.yaml parses")
}

/// `infra/aws`.
pub fn template_dir() -> PathBuf {
    repository_template().parent().unwrap().to_owned()
}

/// The workspace root.
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The template with `change` applied.
pub fn broken(change: impl FnOnce(&mut Value)) -> Template {
    let mut template = template();
    change(&mut template.root);
    template
}

/// The Rust source of a crate (its `src/`), concatenated.
pub fn source_of(crate_dir: &Path) -> String {
    let mut text = String::new();
    let mut stack = vec![crate_dir.join("src")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                text.push_str(&std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    text
}
