//! The emulators, started and stopped by the code that needs them, on loopback only:
//! Dynoxide (DynamoDB) embedded in this process, one per caller; LocalStack's open-source core
//! (SQS, EventBridge, S3, KMS, CloudFormation) as a host process from the project's virtualenv,
//! shared by the tests of one test binary; moto only as the benchmarks' point of comparison.

use std::io::{Read, Write};
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
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
    orderflow::aws::loader()
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
        let (database, _) = Self::indexed_memory_database()?;
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

impl Dynoxide {
    /// An in-memory database whose stream table is indexed. Dynoxide keeps stream records in a
    /// SQLite table without an index on the sequence number, so every write (which looks up the
    /// last sequence number) and every GetRecords (which sorts by it) reads every record ever
    /// written: a flash sale's stream of tens of thousands of records slowed bare transactions
    /// from ~3,000/s to ~125/s. The database is a named shared-cache memory database, so a second
    /// connection (the same SQLite Dynoxide is built with) can add the indexes the queries use.
    /// Also returns the database's URI.
    fn indexed_memory_database() -> std::io::Result<(dynoxide::Database, String)> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let uri = format!("file:dynoxide-{}-{n}?mode=memory&cache=shared", std::process::id());
        let database = dynoxide::Database::new(&uri).map_err(|e| std::io::Error::other(e.to_string()))?;
        let side = rusqlite::Connection::open(&uri).map_err(std::io::Error::other)?;
        side.execute_batch(
            "CREATE INDEX IF NOT EXISTS orderflow_stream_last
                 ON _stream_records (table_name, CAST(sequence_number AS INTEGER));
             CREATE INDEX IF NOT EXISTS orderflow_stream_reads
                 ON _stream_records (table_name, shard_id, CAST(sequence_number AS INTEGER));",
        )
        .map_err(std::io::Error::other)?;
        Ok((database, uri))
    }
}

impl Drop for Dynoxide {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("{0} not found: run tests/bin/setup first")]
    NotInstalled(PathBuf),
    #[error("{name} did not start: {reason}")]
    Start { name: &'static str, reason: String },
}

/// A host process that dies with this one: a small shell watchdog, in its own process group so a
/// Ctrl-C aimed at us does not stop it first, kills it (and removes its scratch directory) once
/// this process is gone, so no run leaves one behind even if it never reaches `Drop` (a shared
/// emulator in a `static` never does).
struct Supervised {
    child: Child,
    watchdog: Child,
}

impl Supervised {
    fn spawn(mut command: Command, scratch: &Path) -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;
        let mut child = command.stdin(Stdio::null()).spawn()?;
        // Only a vanished parent means "kill": a child that exits on its own leaves its PID free
        // for reuse, and the watchdog must not signal a stranger.
        let script = "while kill -0 \"$1\" 2>/dev/null && kill -0 \"$2\" 2>/dev/null; do sleep 1; done; \
                      if ! kill -0 \"$1\" 2>/dev/null; then kill \"$2\" 2>/dev/null; sleep 2; kill -9 \"$2\" 2>/dev/null; fi; \
                      rm -rf \"$3\"";
        let watchdog = Command::new("sh")
            .args(["-c", script, "watchdog"])
            .arg(std::process::id().to_string())
            .arg(child.id().to_string())
            .arg(scratch)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match watchdog {
            Ok(watchdog) => Ok(Self { child, watchdog }),
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(err)
            }
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// LocalStack's open-source core running on the host (no Docker, no auth token), bound to one
/// loopback port. Services load lazily on their first call.
pub struct LocalStack {
    pub endpoint: String,
    /// Always `Some` until dropped.
    process: Option<Supervised>,
    scratch: PathBuf,
}

impl LocalStack {
    /// What the project uses: SQS and EventBridge now, S3 (presigned uploads) and KMS (personal
    /// data) for the issues that need them, CloudFormation to deploy the template and CloudWatch
    /// for its alarms.
    pub const SERVICES: [&'static str; 6] = ["sqs", "events", "s3", "kms", "cloudformation", "cloudwatch"];

    /// The virtualenv's interpreter (`tests/bin/setup` makes it), or `ORDERFLOW_VENV_PYTHON`.
    pub fn python() -> PathBuf {
        std::env::var_os("ORDERFLOW_VENV_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".venv/bin/python"))
    }

    /// Start on `port`, or on a free one when `None`, and wait until every service answers.
    /// Services load on their first call.
    pub fn start(port: Option<u16>) -> Result<Self, EmulatorError> {
        Self::spawn(port, false)
    }

    /// As [`LocalStack::start`], with every service loaded before it reports healthy, so whatever
    /// a service opens when it loads is open by then.
    pub fn start_with_every_service_loaded() -> Result<Self, EmulatorError> {
        Self::spawn(None, true)
    }

    fn spawn(port: Option<u16>, eager: bool) -> Result<Self, EmulatorError> {
        let python = Self::python();
        if !python.exists() {
            return Err(EmulatorError::NotInstalled(python));
        }
        let start_error = |reason: String| EmulatorError::Start { name: "LocalStack", reason };
        let port = port.unwrap_or_else(free_port);
        // Taken by someone else (another LocalStack, say): our gateway would fail quietly while
        // the health probe got the other one's answer.
        drop(StdListener::bind(("127.0.0.1", port)).map_err(|e| start_error(format!("port {port}: {e}")))?);
        let listen = format!("127.0.0.1:{port}");
        let scratch = std::env::temp_dir().join(format!("orderflow-localstack-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&scratch).map_err(|e| start_error(e.to_string()))?;
        let log = std::fs::File::create(scratch.join("localstack.log")).map_err(|e| start_error(e.to_string()))?;
        let mut command = Command::new(&python);
        command
            .args(["-m", "localstack.runtime.main"])
            .env("SERVICES", Self::SERVICES.join(","))
            .env("EAGER_SERVICE_LOADING", if eager { "1" } else { "0" })
            // Hypercorn binds the host it is given; the default (twisted) gateway bound 0.0.0.0.
            .env("GATEWAY_SERVER", "hypercorn")
            .env("GATEWAY_LISTEN", &listen)
            // Queue URLs and other self-references name this address, not a *.localstack.cloud
            // host that does not resolve here.
            .env("LOCALSTACK_HOST", &listen)
            .env("SQS_ENDPOINT_STRATEGY", "path")
            // Presigned S3 URLs are checked as S3 checks them (signature, signed headers, expiry)
            // against the harness's `test` secret, so a wrongly signed upload URL fails the tests.
            .env("S3_SKIP_SIGNATURE_VALIDATION", "0")
            .env("OVERRIDE_IN_DOCKER", "0")
            // No DNS server (it would bind port 53 on every address), no telemetry, no downloads.
            .env("DNS_ADDRESS", "0")
            .env("DISABLE_EVENTS", "1")
            .env("SKIP_SSL_CERT_DOWNLOAD", "1")
            .env("SKIP_INFRA_DOWNLOADS", "1")
            .env("FILESYSTEM_ROOT", &scratch)
            .stdout(log.try_clone().map_err(|e| start_error(e.to_string()))?)
            .stderr(log);
        let process = Supervised::spawn(command, &scratch).map_err(|e| start_error(e.to_string()))?;
        let mut localstack = Self { endpoint: format!("http://{listen}"), process: Some(process), scratch };
        localstack.wait_until_healthy(port).map_err(|reason| {
            let log = std::fs::read_to_string(localstack.scratch.join("localstack.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            start_error(format!(
                "{reason}\n--- last lines of its log ---\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ))
        })?;
        Ok(localstack)
    }

    /// The emulator's process id, to inspect what it listens on.
    pub fn pid(&self) -> u32 {
        self.process.as_ref().map_or(0, |p| p.child.id())
    }

    /// LocalStack's own report of its services (`/_localstack/health`).
    pub fn health(&self) -> Result<serde_json::Value, String> {
        let port = self.endpoint.rsplit(':').next().and_then(|p| p.parse().ok()).ok_or("endpoint has no port")?;
        let body = http_get(port, "/_localstack/health")?;
        serde_json::from_str(&body).map_err(|e| format!("health is not JSON: {e}"))
    }

    /// Every service we asked for is available (or already running).
    pub fn serves_everything(health: &serde_json::Value) -> bool {
        Self::SERVICES.iter().all(|s| matches!(health["services"][s].as_str(), Some("available" | "running")))
    }

    /// Healthy, and the gateway that answered is ours: the port is among our process's sockets.
    fn wait_until_healthy(&mut self, port: u16) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut last = String::from("no answer");
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.process.as_mut().map(|p| p.child.try_wait()) {
                return Err(format!("exited with {status}"));
            }
            match self.health() {
                Ok(health) if Self::serves_everything(&health) => {
                    let ours = listening_sockets(self.pid()).map_err(|e| e.to_string())?;
                    if ours.iter().any(|socket| socket.address.port() == port) {
                        return Ok(());
                    }
                    last = format!("something else answers on port {port}");
                }
                Ok(health) => last = health.to_string(),
                Err(err) => last = err,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("not healthy after 120 s: {last}"))
    }
}

/// One plain HTTP/1.0 GET on loopback, for readiness probes that must not need a runtime.
fn http_get(port: u16, path: &str) -> Result<String, String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no HTTP response")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(head.lines().next().unwrap_or_default().to_owned());
    }
    Ok(body.to_owned())
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        // Stop the process first, then remove its files.
        drop(self.process.take());
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// One LocalStack per test binary, started on first use; tests isolate themselves by deploying
/// their own CloudFormation stack into it. A failed start is remembered, not retried per test.
pub fn shared_localstack() -> &'static LocalStack {
    static LOCALSTACK: std::sync::OnceLock<Result<LocalStack, String>> = std::sync::OnceLock::new();
    match LOCALSTACK.get_or_init(|| LocalStack::start(None).map_err(|e| e.to_string())) {
        Ok(localstack) => localstack,
        Err(err) => panic!("{err}"),
    }
}

/// moto's server, for the benchmarks only: they print its bare SQS and EventBridge rates beside
/// LocalStack's, measured in the same run. `tests/bin/setup --with-moto` installs it.
pub struct Moto {
    pub endpoint: String,
    _process: Supervised,
}

impl Moto {
    pub fn start() -> Result<Self, EmulatorError> {
        let binary = repo_root().join(".venv-moto/bin/moto_server");
        if !binary.exists() {
            return Err(EmulatorError::NotInstalled(binary));
        }
        let port = free_port();
        let scratch = std::env::temp_dir().join(format!("orderflow-moto-{}-{port}", std::process::id()));
        let mut command = Command::new(&binary);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]).stdout(Stdio::null()).stderr(Stdio::null());
        let process = Supervised::spawn(command, &scratch)
            .map_err(|e| EmulatorError::Start { name: "moto", reason: e.to_string() })?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(EmulatorError::Start {
                    name: "moto",
                    reason: format!("nothing on port {port} after 60 s"),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Self { endpoint: format!("http://127.0.0.1:{port}"), _process: process })
    }
}

/// A socket a process serves on: a listening TCP socket, or an unconnected UDP one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServingSocket {
    pub protocol: &'static str,
    pub address: std::net::SocketAddr,
}

impl std::fmt::Display for ServingSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.protocol, self.address)
    }
}

/// The sockets a process (and its child processes) serves on, read from /proc: its socket
/// inodes from `/proc/<pid>/fd`, matched against the LISTEN rows of `/proc/net/tcp{,6}` and the
/// unconnected rows of `/proc/net/udp{,6}`. A table the kernel does not offer (no IPv6) is empty.
pub fn listening_sockets(pid: u32) -> std::io::Result<Vec<ServingSocket>> {
    let mut inodes = std::collections::HashSet::new();
    for pid in with_descendants(pid) {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { continue };
        for fd in fds.flatten() {
            let target = std::fs::read_link(fd.path()).unwrap_or_default();
            let target = target.to_string_lossy();
            if let Some(inode) = target.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                inodes.insert(inode.to_owned());
            }
        }
    }
    const TCP_LISTEN: &str = "0A";
    const UDP_UNCONNECTED: &str = "07";
    let tables =
        [("tcp", "/proc/net/tcp"), ("tcp", "/proc/net/tcp6"), ("udp", "/proc/net/udp"), ("udp", "/proc/net/udp6")];
    let mut sockets = Vec::new();
    for (protocol, table) in tables {
        let text = match std::fs::read_to_string(table) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        for row in text.lines().skip(1) {
            let columns: Vec<&str> = row.split_whitespace().collect();
            let serving = match protocol {
                "tcp" => columns.get(3) == Some(&TCP_LISTEN),
                _ => columns.get(3) == Some(&UDP_UNCONNECTED) && columns.get(2).is_some_and(|r| r.ends_with(":0000")),
            };
            if columns.len() > 9 && serving && inodes.contains(columns[9]) {
                let address = parse_proc_address(columns[1]).ok_or_else(|| std::io::Error::other(row.to_owned()))?;
                sockets.push(ServingSocket { protocol, address });
            }
        }
    }
    Ok(sockets)
}

fn with_descendants(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut next = 0;
    while next < all.len() {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", all[next])).into_iter().flatten().flatten();
        for task in tasks {
            let children = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            all.extend(children.split_whitespace().filter_map(|c| c.parse::<u32>().ok()));
        }
        next += 1;
    }
    all
}

/// `0100007F:1F90` (IPv4) or the 32-hex-digit IPv6 form, to an address. The kernel prints each
/// 32-bit word of the address as a number in the machine's byte order.
fn parse_proc_address(text: &str) -> Option<std::net::SocketAddr> {
    let (host, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    if host.len() % 8 != 0 {
        return None;
    }
    let bytes: Vec<u8> = (0..host.len() / 8)
        .map(|i| u32::from_str_radix(&host[i * 8..i * 8 + 8], 16).map(u32::to_ne_bytes))
        .collect::<Result<Vec<_>, _>>()
        .ok()?
        .concat();
    let ip: std::net::IpAddr = match bytes.len() {
        4 => std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).into(),
        16 => std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).into(),
        _ => return None,
    };
    Some(std::net::SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynoxides_stream_queries_use_the_indexes_we_add() {
        let (_database, uri) = Dynoxide::indexed_memory_database().unwrap();
        let side = rusqlite::Connection::open(&uri).unwrap();
        // The two queries Dynoxide 3.2 runs on its stream table (storage.rs), as it runs them.
        let plan = |sql: &str| -> String {
            let mut statement = side.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let rows = statement.query_map([], |row| row.get::<_, String>(3)).unwrap();
            rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
        };
        let last = plan(
            "SELECT COALESCE(MAX(CAST(sequence_number AS INTEGER)), 0) + 1 FROM _stream_records WHERE table_name = 't'",
        );
        assert!(last.contains("orderflow_stream_last"), "{last}");
        let reads = plan(
            "SELECT event_name FROM _stream_records WHERE table_name = 't' AND shard_id = 's' \
             AND CAST(sequence_number AS INTEGER) > 5 ORDER BY CAST(sequence_number AS INTEGER) ASC LIMIT 100",
        );
        assert!(reads.contains("orderflow_stream_reads") && !reads.contains("TEMP B-TREE"), "{reads}");
    }

    #[test]
    fn proc_net_addresses_read_as_the_kernel_wrote_them() {
        assert_eq!(parse_proc_address("0100007F:11F7"), Some("127.0.0.1:4599".parse().unwrap()));
        assert_eq!(parse_proc_address("00000000:07E8"), Some("0.0.0.0:2024".parse().unwrap()));
        assert_eq!(parse_proc_address("00000000000000000000000001000000:1F90"), Some("[::1]:8080".parse().unwrap()));
        assert_eq!(parse_proc_address("00000000000000000000000000000000:0050"), Some("[::]:80".parse().unwrap()));
        assert_eq!(parse_proc_address("nonsense"), None);
    }
}
