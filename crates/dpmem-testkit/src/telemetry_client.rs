//! Telemetry clients for the tests of the telemetry socket: one of the tests' own (a seqpacket
//! socket through rustix, as DPDK's client does it: one message per request and per answer),
//! and DPDK's `dpdk-telemetry.py` run non-interactively.

use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketType};
use serde_json::Value;

/// The longest answer DPDK's protocol allows (its greeting's `max_output_len`).
pub const MAX_ANSWER: usize = 16 * 1024;

/// How long a client waits for an answer before its test fails (instead of hanging).
pub const ANSWER_LIMIT: Duration = Duration::from_secs(20);

/// DPDK's client, as the Debian `dpdk` package installs it.
pub const DPDK_TELEMETRY_PY: &str = "/usr/bin/dpdk-telemetry.py";

/// A connection to a telemetry socket.
#[derive(Debug)]
pub struct TelemetryClient {
    fd: OwnedFd,
}

impl TelemetryClient {
    /// Connects without reading the greeting.
    pub fn connect_raw(path: &Path) -> TelemetryClient {
        let fd = rustix::net::socket(AddressFamily::UNIX, SocketType::SEQPACKET, None).unwrap();
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(ANSWER_LIMIT),
        )
        .unwrap();
        rustix::net::connect(&fd, &SocketAddrUnix::new(path).unwrap())
            .unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        TelemetryClient { fd }
    }

    /// Connects and reads the greeting.
    pub fn connect(path: &Path) -> (TelemetryClient, Value) {
        let client = TelemetryClient::connect_raw(path);
        let greeting = client.recv().expect("a greeting");
        (client, serde_json::from_slice(&greeting).unwrap())
    }

    /// The next message; `None` when the server closed the connection. Fails on an answer
    /// longer than [`MAX_ANSWER`], and when none comes within [`ANSWER_LIMIT`].
    pub fn recv(&self) -> Option<Vec<u8>> {
        // One byte more than an answer may have, to see one that is too long.
        let mut buf = vec![0u8; MAX_ANSWER + 1];
        let (_, len) = rustix::net::recv(&self.fd, &mut buf[..], RecvFlags::TRUNC)
            .unwrap_or_else(|e| panic!("no answer within {ANSWER_LIMIT:?}: {e}"));
        assert!(len <= MAX_ANSWER, "an answer of {len} bytes");
        (len > 0).then(|| buf[..len].to_vec())
    }

    /// The whole answer to the request `request`.
    pub fn ask_bytes(&self, request: &[u8]) -> Value {
        rustix::net::send(&self.fd, request, SendFlags::empty()).unwrap();
        let answer = self.recv().expect("an answer, not a closed connection");
        serde_json::from_slice(&answer)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&answer)))
    }

    /// The answer to `request`, which must be keyed by the request's command.
    pub fn ask(&self, request: &str) -> Value {
        let answer = self.ask_bytes(request.as_bytes());
        let command = request.split(',').next().unwrap_or_default();
        let object = answer.as_object().expect("an answer is a JSON object");
        assert_eq!(object.len(), 1, "{answer}");
        object
            .get(command)
            .unwrap_or_else(|| panic!("{request}: answer keyed otherwise: {answer}"))
            .clone()
    }
}

/// Whether DPDK's client can run here. Prints why not and returns false, unless
/// `DPMEM_REQUIRE_TELEMETRY_CLIENT=1` (CI), which makes its absence a failure.
pub fn dpdk_telemetry_py_available(test: &str) -> bool {
    let python = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing = match (python, Path::new(DPDK_TELEMETRY_PY).exists()) {
        (true, true) => return true,
        (false, _) => "python3 is not installed",
        (_, false) => "dpdk-telemetry.py is not installed (Debian package dpdk)",
    };
    if std::env::var("DPMEM_REQUIRE_TELEMETRY_CLIENT").as_deref() == Ok("1") {
        panic!("{test}: {missing}, and DPMEM_REQUIRE_TELEMETRY_CLIENT=1");
    }
    eprintln!("skipped {test}: {missing}");
    false
}

/// Runs `dpdk-telemetry.py -f <prefix>` with `requests` on its standard input, one a line (as
/// a person would type them), and returns what it printed for each: one JSON answer a line.
pub fn run_dpdk_telemetry_py(prefix: &str, requests: &[&str]) -> Vec<Value> {
    let mut child = Command::new("python3")
        .args([DPDK_TELEMETRY_PY, "-f", prefix])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3 {DPDK_TELEMETRY_PY}: {e}"));
    let mut stdin = child.stdin.take().expect("piped");
    for request in requests {
        writeln!(stdin, "{request}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dpdk-telemetry.py failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("dpdk-telemetry.py -f {prefix} printed:\n{stdout}");
    let answers: Vec<Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(answers.len(), requests.len(), "{stdout}");
    answers
}
