//! The operator's log files (one per test namespace or benchmark run, JSON lines) and the suite's
//! own tracing output.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// `base/name`, created if missing: where a suite keeps its operators' logs.
pub fn log_dir(base: &Path, name: &str) -> Result<PathBuf, Error> {
    let dir = base.join(name);
    std::fs::create_dir_all(&dir).map_err(Error::io(format!("log dir {}", dir.display())))?;
    Ok(dir)
}

/// Opens `path` for appending (created if missing): every incarnation of an operator writes to
/// one file, so a test failure shows them all in order.
pub fn append(path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(Error::io(format!("log file {}", path.display())))
}

/// Creates (or empties) `path`: a run whose log is read back on its own.
pub fn create(path: &Path) -> Result<File, Error> {
    File::create(path).map_err(Error::io(format!("log file {}", path.display())))
}

/// The log so far (empty if there is none yet).
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The last `n` lines of `text` that `keep` accepts, each cut to `width` bytes.
pub fn tail(text: &str, n: usize, width: usize, keep: impl Fn(&str) -> bool) -> Vec<String> {
    let lines: Vec<&str> = text.lines().filter(|l| keep(l)).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| truncate(l, width))
        .collect()
}

/// `s` cut to at most `max` bytes at a character boundary, with an ellipsis when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The suite's own tracing (its kube client's complaints) at `filter`, into the test output;
/// once per process, later calls are no-ops.
pub fn init_tracing(filter: &str) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_accepted_lines_in_order() {
        let text = "a1\nb2\na3\na4\nb5";
        assert_eq!(tail(text, 2, 100, |l| l.starts_with('a')), ["a3", "a4"]);
        assert_eq!(tail(text, 10, 100, |_| true).len(), 5);
        assert!(tail("", 3, 100, |_| true).is_empty());
    }

    #[test]
    fn truncate_cuts_at_a_character_boundary() {
        assert_eq!(truncate("short", 10), "short");
        assert_eq!(truncate("abcdef", 3), "abc…");
        // 'é' is two bytes: a cut inside it backs off to before it
        assert_eq!(truncate("aé", 2), "a…");
    }

    #[test]
    fn append_keeps_what_was_written_and_create_empties() {
        let dir = std::env::temp_dir().join(format!("test-support-logs-{}", std::process::id()));
        let dir = log_dir(&dir, "x").expect("log dir");
        let path = dir.join("op.log");
        std::fs::write(&path, "one\n").expect("written");
        {
            use std::io::Write;
            let mut f = append(&path).expect("append");
            writeln!(f, "two").expect("appended");
        }
        assert_eq!(read(&path), "one\ntwo\n");
        create(&path).expect("create");
        assert_eq!(read(&path), "");
        let _ = std::fs::remove_dir_all(dir.parent().expect("parent"));
    }
}
