//! A page in Debian's headless Chromium, driven by `tests/browser/dashboard.mjs` (Playwright,
//! pinned in `tests/browser/package.json`, installed by `tests/bin/setup`): one JSON line per
//! command over the driver's stdin and stdout. The browser ends with the value.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The folder of the driver and its pinned packages.
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

pub struct Browser {
    child: Child,
    commands: ChildStdin,
    answers: Lines<BufReader<ChildStdout>>,
}

impl Browser {
    /// Opens `url` with `authorization` on every request the page makes; the browser and what
    /// the navigation answered (`status`, `headers`).
    pub async fn open(url: &str, authorization: Option<&str>) -> Result<(Self, Value), String> {
        let mut command = Command::new("node");
        command.arg(browser_dir().join("dashboard.mjs")).arg(url);
        if let Some(authorization) = authorization {
            command.env("DASHBOARD_AUTHORIZATION", authorization);
        }
        // Not killed on drop: a dropped browser closes the driver's stdin, and the driver then
        // closes Chromium itself (killed, it would leave Chromium running).
        command.current_dir(browser_dir()).stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child =
            command.spawn().map_err(|e| format!("node (tests/bin/setup installs the browser driver): {e}"))?;
        let commands = child.stdin.take().ok_or("no stdin")?;
        let answers = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let mut browser = Self { child, commands, answers };
        let opened = browser.answer().await?;
        Ok((browser, opened))
    }

    async fn answer(&mut self) -> Result<Value, String> {
        let line = tokio::time::timeout(Duration::from_secs(60), self.answers.next_line())
            .await
            .map_err(|_| "the browser driver said nothing for 60 s".to_owned())?
            .map_err(|e| e.to_string())?
            .ok_or("the browser driver ended (see its stderr above)")?;
        let answer: Value = serde_json::from_str(&line).map_err(|e| format!("{e}: {line}"))?;
        match answer.get("error") {
            Some(error) => Err(format!("the browser driver: {error}")),
            None => Ok(answer),
        }
    }

    async fn command(&mut self, line: &str) -> Result<Value, String> {
        self.commands.write_all(format!("{line}\n").as_bytes()).await.map_err(|e| e.to_string())?;
        self.answer().await
    }

    /// What the page shows after its next completed read of the figures (or its refusal).
    pub async fn snapshot(&mut self) -> Result<Value, String> {
        self.command("snapshot").await
    }

    /// Clicks the range button of `days` days; once the page has drawn that range, how many
    /// milliseconds it took.
    pub async fn choose_range(&mut self, days: u32) -> Result<f64, String> {
        let drawn = self.command(&format!("range {days}")).await?;
        drawn["drawn_ms"].as_f64().ok_or_else(|| format!("no time in {drawn}"))
    }

    /// Loads the page again; when it drew its first figures and finished loading itself
    /// (`drawn_ms`, `response_end_ms`, `dom_content_loaded_ms` from navigation start) and its size.
    pub async fn reload(&mut self) -> Result<Value, String> {
        self.command("reload").await
    }

    /// Saves a PNG of the whole page at `path`.
    pub async fn screenshot(&mut self, path: &Path) -> Result<(), String> {
        self.command(&format!("screenshot {}", path.display())).await.map(drop)
    }

    pub async fn close(mut self) {
        let _ = self.commands.write_all(b"quit\n").await;
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
    }
}
