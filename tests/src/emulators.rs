//! The emulators, started and stopped by the code that needs them, on loopback only:
//! Dynoxide (DynamoDB) embedded in this process, one per caller; moto (SQS and EventBridge) as a
//! child process from the project's virtualenv, shared by the tests of one test binary.

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// The repository root (this crate lives in `tests/`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// A free loopback port, chosen by the kernel.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("bind loopback")
}

/// SDK configuration for an emulator endpoint: fixed region and dummy credentials, no lookups.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "emulator"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// An in-memory Dynoxide serving the DynamoDB API on a loopback port until dropped.
pub struct Dynoxide {
    pub endpoint: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Dynoxide {
    /// Start on `port`, or on a free one when `None`. Must run inside a Tokio runtime.
    pub async fn start(port: Option<u16>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.unwrap_or(0))).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let database = dynoxide::Database::memory().map_err(|e| std::io::Error::other(e.to_string()))?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            if let Err(err) = dynoxide::server::serve_with_shutdown(listener, database, shutdown).await {
                eprintln!("dynoxide stopped: {err}");
            }
        });
        Ok(Self { endpoint, stop: Some(stop) })
    }
}

impl Drop for Dynoxide {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A moto server child process. It is started under a small shell watchdog that kills it when
/// this process goes away, so no test run leaves one behind even if it never reaches `Drop`.
pub struct Moto {
    pub endpoint: String,
    child: Child,
}

#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    #[error("moto_server not found at {0}: run tests/bin/setup first")]
    NotInstalled(PathBuf),
    #[error("moto did not start: {0}")]
    Start(String),
}

impl Moto {
    pub fn binary() -> PathBuf {
        std::env::var_os("MOTO_SERVER").map(PathBuf::from).unwrap_or_else(|| repo_root().join(".venv/bin/moto_server"))
    }

    pub fn start(port: Option<u16>) -> Result<Self, MotoError> {
        let binary = Self::binary();
        if !binary.exists() {
            return Err(MotoError::NotInstalled(binary));
        }
        let port = port.unwrap_or_else(free_port);
        let watchdog = format!(
            "\"$0\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 & moto=$!; \
             while kill -0 {parent} 2>/dev/null && kill -0 $moto 2>/dev/null; do sleep 1; done; kill $moto 2>/dev/null",
            parent = std::process::id()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(watchdog)
            .arg(&binary)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| MotoError::Start(e.to_string()))?;
        let moto = Self { endpoint: format!("http://127.0.0.1:{port}"), child };
        moto.wait_until_ready(port)?;
        Ok(moto)
    }

    fn wait_until_ready(&self, port: u16) -> Result<(), MotoError> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(MotoError::Start(format!("nothing listening on port {port} after 60 s")))
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Killing the watchdog's shell leaves moto to notice nothing; kill the group instead.
        let _ = Command::new("pkill").arg("-P").arg(self.child.id().to_string()).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One moto per test binary, started on first use.
pub fn shared_moto() -> &'static str {
    static MOTO: std::sync::OnceLock<Moto> = std::sync::OnceLock::new();
    &MOTO.get_or_init(|| Moto::start(None).unwrap_or_else(|e| panic!("{e}"))).endpoint
}
