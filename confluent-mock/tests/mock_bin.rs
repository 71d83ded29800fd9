//! The `confluent-mock` binary: prints its address once bound, serves the API with the
//! configured credentials, and exits cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test]
async fn binary_serves_and_stops_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_confluent-mock"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--token",
            "tok-a",
            "--token",
            "tok-b",
        ])
        .args(["--api-key", "k1", "--api-secret", "s1"])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base = line
        .trim()
        .strip_prefix("confluent-mock listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let http = reqwest::Client::new();
    let url = format!("{base}/iam/v2/invitations");
    let ok = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(
        ok(http
            .get(&url)
            .basic_auth("k1", Some("s1"))
            .send()
            .await
            .unwrap()),
        200
    );
    assert_eq!(
        ok(http.get(&url).bearer_auth("tok-b").send().await.unwrap()),
        200
    );
    // the default key is replaced by the given one
    let r = http
        .get(&url)
        .basic_auth("mock-key", Some("mock-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok(r), 401);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "{exit:?}");
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    for secret in ["s1", "tok-a", "tok-b"] {
        assert!(
            !logs
                .split(|c: char| !c.is_alphanumeric() && c != '-')
                .any(|w| w == secret),
            "credential {secret} logged:\n{logs}"
        );
    }
}

#[test]
fn mismatched_key_pairs_are_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_confluent-mock"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "a",
            "--api-key",
            "b",
        ])
        .args(["--api-secret", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pairs"));
}
