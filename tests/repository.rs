//! The repository stands alone: a clone builds and tests with nothing beside it. Every file the
//! code, the tests and the scripts read is inside it, so no text may point outside: no absolute
//! path of the machine the repository sits on, and no path climbing out of the repository's root.
//! And the README's test command is what CI runs.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every text file of the repository, build outputs and VCS data left out.
fn text_files() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if !matches!(name.as_str(), ".git" | "target" | "corpus" | "artifacts") {
                    walk(&path, out);
                }
            } else if kind.is_file()
                // a git worktree's `.git` is a file naming the main checkout's VCS data
                && name != ".git"
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                out.push((path, text));
            }
        }
    }
    let mut out = Vec::new();
    walk(&root(), &mut out);
    assert!(out.len() > 50, "walked only {} files", out.len());
    out
}

#[test]
fn no_text_points_outside_the_repository() {
    let root = root();
    let parent = root
        .parent()
        .expect("the repository has a parent folder")
        .to_string_lossy()
        .into_owned();
    let own = root.to_string_lossy().into_owned();
    // the parent folder as an absolute path prefix, and the climb out of the root that was used
    // (spelled in two parts, so this file does not hold the text it looks for)
    let forbidden = [
        format!("{}/", parent.trim_end_matches('/')),
        format!("../{}", "shared"),
    ];
    let mut found = Vec::new();
    for (path, text) in text_files() {
        for (n, line) in text.lines().enumerate() {
            for f in &forbidden {
                // the repository's own absolute path is fine (it is what a clone has)
                let outside = line
                    .match_indices(f.as_str())
                    .any(|(i, _)| !line[i..].starts_with(&own));
                if outside {
                    found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "text pointing outside the repository:\n{}",
        found.join("\n")
    );
}

#[test]
fn ci_runs_the_readmes_test_command() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    let commands: Vec<&str> = readme
        .split("```sh\n")
        .nth(1)
        .expect("README starts with a sh block")
        .split("```")
        .next()
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(
        commands,
        ["deploy/local/sandbox.sh", "tests/run-all.sh"],
        "README's first block: the sandbox, then every test"
    );
    let ci = std::fs::read_to_string(root().join(".ci/run")).expect(".ci/run");
    let runs: Vec<&str> = ci
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with('#') && !l.starts_with("set ") && !l.starts_with("cd ")
        })
        .collect();
    assert_eq!(
        runs,
        ["exec tests/run-all.sh"],
        ".ci/run runs exactly the README's test command"
    );
}

#[test]
fn the_contract_files_are_in_the_repository() {
    let dir = root().join("confluent-client/openapi");
    for file in [
        "iam-v2-invitations.openapi.yaml",
        "iam-v2-role-bindings.openapi.yaml",
        "README.md",
    ] {
        let text =
            std::fs::read_to_string(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            text.contains("ccloud-sdk-go-v2"),
            "{file} names where it comes from"
        );
    }
}

/// The names a manifest's `[dependencies]` table lists (normal dependencies only: not dev- or
/// build-dependencies, not a `[target.…]` table).
fn normal_dependencies(manifest: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(manifest)).expect(manifest);
    let mut names = Vec::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
        } else if inside && let Some((name, _)) = line.split_once('=') {
            let name = name.trim();
            if !name.is_empty() && !name.starts_with('#') {
                // `tokio.workspace = true` names `tokio`
                names.push(name.split('.').next().unwrap_or(name).to_owned());
            }
        }
    }
    names
}

#[test]
fn the_crates_keep_their_layering() {
    let operator = normal_dependencies("Cargo.toml");
    let client = normal_dependencies("confluent-client/Cargo.toml");
    let mock = normal_dependencies("confluent-mock/Cargo.toml");
    assert!(
        operator.contains(&"confluent-client".to_owned()),
        "{operator:?}"
    );
    assert!(client.contains(&"reqwest".to_owned()), "{client:?}");
    assert!(mock.contains(&"axum".to_owned()), "{mock:?}");
    // the shipped binary links no test double, nor the server stack only the mock needs
    for name in ["confluent-mock", "hyper", "hyper-util"] {
        assert!(
            !operator.contains(&name.to_owned()),
            "operator depends on {name}"
        );
    }
    // the client knows nothing of Kubernetes or of the operator; the mock nothing of the operator
    for name in [
        "kube",
        "k8s-openapi",
        "confluent-invitation-operator",
        "confluent-mock",
    ] {
        assert!(
            !client.contains(&name.to_owned()),
            "client depends on {name}"
        );
    }
    for name in ["kube", "k8s-openapi", "confluent-invitation-operator"] {
        assert!(!mock.contains(&name.to_owned()), "mock depends on {name}");
    }
}
