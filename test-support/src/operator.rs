//! The operator under test: its real binary as a child process, on a free HTTP port, logging JSON
//! into a file of the suite's; and waiting for it to be ready.

use std::ffi::OsString;
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::net::free_port;

/// How to start one operator process: `<binary> run --http-addr <free port> --log-format json
/// <args>` with only these variables in its environment.
#[derive(Debug)]
pub struct Launch {
    /// The operator binary: `env!("CARGO_BIN_EXE_confluent-invitation-operator")` in the
    /// operator package's tests, or a release build.
    pub binary: PathBuf,
    /// Its `KUBECONFIG`.
    pub kubeconfig: OsString,
    /// Its `CONFLUENT_CLOUD_ENDPOINT`: the mock's base URL.
    pub endpoint: String,
    /// Its default credentials (`CONFLUENT_CLOUD_API_KEY`, `CONFLUENT_CLOUD_API_SECRET`), if any.
    pub credentials: Option<(String, String)>,
    /// Its `RUST_LOG`.
    pub rust_log: String,
    /// Its `POD_NAME` (its identity in leader election).
    pub pod_name: String,
    /// The flags after `run` (scope, resync, concurrency, rate limits, …).
    pub args: Vec<String>,
    /// Where its stdout and stderr go.
    pub log: File,
}

impl Launch {
    /// Starts the process.
    pub fn spawn(self) -> Result<Operator, Error> {
        let (child, http) = self.start()?;
        Ok(Operator {
            child,
            http,
            launch: self,
        })
    }

    /// Starts one process as launched, on a port free at the time of asking.
    fn start(&self) -> Result<(Child, SocketAddr), Error> {
        let http = free_port()?;
        let mut command = Command::new(&self.binary);
        command
            .arg("run")
            .args(["--http-addr", &http.to_string()])
            .args(["--log-format", "json"])
            .args(&self.args)
            .env_clear()
            .env("KUBECONFIG", &self.kubeconfig)
            .env("CONFLUENT_CLOUD_ENDPOINT", &self.endpoint)
            .env("RUST_LOG", &self.rust_log)
            .env("POD_NAME", &self.pod_name)
            .stdin(Stdio::null())
            .stdout(
                self.log
                    .try_clone()
                    .map_err(Error::io("operator log handle"))?,
            )
            .stderr(
                self.log
                    .try_clone()
                    .map_err(Error::io("operator log handle"))?,
            );
        if let Some((key, secret)) = &self.credentials {
            command
                .env("CONFLUENT_CLOUD_API_KEY", key)
                .env("CONFLUENT_CLOUD_API_SECRET", secret);
        }
        let child = command.spawn().map_err(Error::io(format!(
            "operator {} not started",
            self.binary.display()
        )))?;
        Ok((child, http))
    }
}

/// A running operator process; dropping it kills it.
#[derive(Debug)]
pub struct Operator {
    child: Child,
    /// Its /metrics, /healthz and /readyz address.
    pub http: SocketAddr,
    /// How it was started, to start it again the same way.
    launch: Launch,
}

impl Operator {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal (e.g. "TERM", "KILL") to the process.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status();
    }

    /// SIGKILL, like a node failure; waits for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then SIGKILL if it has not stopped within `grace`.
    pub fn stop(&mut self, grace: Duration) {
        self.signal("TERM");
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
    }

    /// Kills the process and starts it again as it was launched (same flags, same log) on a
    /// new free port: for one whose port another process took between the asking and its bind.
    pub fn respawn(&mut self) -> Result<(), Error> {
        self.kill();
        let (child, http) = self.launch.start()?;
        self.child = child;
        self.http = http;
        Ok(())
    }

    /// Whether (and how) the process ended.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `within` for the process to exit; its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The operator's /metrics text (empty if it does not answer).
    pub async fn metrics(&self) -> String {
        match reqwest::get(format!("http://{}/metrics", self.http)).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits until `/readyz` answers 200; [`Error::NeverReady`] if the process exits first or
    /// `within` passes.
    pub async fn wait_ready(&mut self, within: Duration) -> Result<(), Error> {
        let url = format!("http://{}/readyz", self.http);
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = reqwest::get(&url).await
                && r.status().is_success()
            {
                return Ok(());
            }
            let exited = !self.alive();
            if exited || Instant::now() > deadline {
                return Err(Error::NeverReady { exited, within });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}
