//! What the benchmark ran on: the machine, the API server and the operator build, as the report's
//! "Machine and settings" section states them.

use std::path::Path;
use std::process::{Command, Stdio};

/// The machine, the API server and the operator build a run measured, for the report.
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory: String,
    pub kernel: String,
    pub apiserver: String,
    pub operator_version: String,
    pub commit: String,
    pub date: String,
}

impl Machine {
    pub async fn describe(kube: &kube::Client, operator: &Path) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
            .unwrap_or_else(|| "unknown CPU".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or_else(
                || "unknown".into(),
                |kib| format!("{:.1} GiB", kib / 1024.0 / 1024.0),
            );
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!("Linux {}", s.trim()))
            .unwrap_or_else(|_| "unknown kernel".into());
        let apiserver = match kube.apiserver_version().await {
            Ok(v) => format!("{} ({})", v.git_version, v.platform),
            Err(e) => format!("unknown ({e})"),
        };
        let operator_version = command_output(operator.as_os_str(), &["--version"])
            .unwrap_or_else(|| "unknown".into());
        // bench.sh says what it built the operator from; otherwise, the tree as it is now
        let commit = match std::env::var("BENCH_SOURCE").ok().filter(|s| !s.is_empty()) {
            Some(source) => source,
            None => tree_state(env!("CARGO_MANIFEST_DIR")),
        };
        Self {
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu_model,
            memory,
            kernel,
            apiserver,
            operator_version,
            commit,
            date: jiff::Zoned::now().strftime("%Y-%m-%d %H:%M %Z").to_string(),
        }
    }

    pub fn one_line(&self) -> String {
        format!(
            "{} CPUs ({}), {} memory, {}; kube-apiserver {}; {} built from {}",
            self.cpus,
            self.cpu_model,
            self.memory,
            self.kernel,
            self.apiserver,
            self.operator_version,
            self.commit
        )
    }
}

/// The commit of the working tree, and whether it has uncommitted changes.
pub fn tree_state(dir: &str) -> String {
    let Some(commit) = command_output("git".as_ref(), &["-C", dir, "rev-parse", "--short", "HEAD"])
    else {
        return "unknown".into();
    };
    let dirty = command_output(
        "git".as_ref(),
        &["-C", dir, "status", "--porcelain", "--untracked-files=no"],
    )
    .is_some_and(|s| !s.is_empty());
    if dirty {
        format!("commit {commit} + uncommitted changes")
    } else {
        format!("commit {commit}")
    }
}

pub fn command_output(program: &std::ffi::OsStr, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
