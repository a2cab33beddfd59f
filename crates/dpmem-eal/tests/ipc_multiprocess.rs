//! The inter-process channel between real processes: a primary and two secondaries (this
//! test binary re-executed). Requests gather both secondaries' replies, synchronously and
//! asynchronously; descriptors cross in both directions and are usable; one-way messages go
//! both ways; a peer without the action and a peer killed mid-request are counted without
//! waiting out the timeout; a secondary's own requests reach the primary.

mod common;

use std::io::{BufRead, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::*;
use dpmem_eal::ipc::{IpcError, IpcMessage, TypedMessage, PRIMARY_SOCKET};
use dpmem_eal::{Eal, ErrorKind};
use dpmem_testkit::ChildTest;

const ENV_PREFIX: &str = "DPMEM_TEST_IPC_PREFIX";
const ENV_ROLE: &str = "DPMEM_TEST_IPC_ROLE";
const LIMIT: Duration = Duration::from_secs(60);

/// A typed request: two numbers to add.
struct Sum(u64, u64);
/// Its reply.
struct Total(u64);

impl TypedMessage for Sum {
    const NAME: &'static str = "test_sum";
    fn encode(self) -> (Vec<u8>, Vec<OwnedFd>) {
        let mut params = self.0.to_le_bytes().to_vec();
        params.extend_from_slice(&self.1.to_le_bytes());
        (params, Vec::new())
    }
    fn decode(params: &[u8], _fds: Vec<OwnedFd>) -> Result<Self, String> {
        let number = |at: usize| {
            params
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .ok_or("16 bytes expected")
        };
        Ok(Sum(number(0)?, number(8)?))
    }
}

impl TypedMessage for Total {
    const NAME: &'static str = "test_total";
    fn encode(self) -> (Vec<u8>, Vec<OwnedFd>) {
        (self.0.to_le_bytes().to_vec(), Vec::new())
    }
    fn decode(params: &[u8], _fds: Vec<OwnedFd>) -> Result<Self, String> {
        let bytes = params.try_into().map_err(|_| "8 bytes expected")?;
        Ok(Total(u64::from_le_bytes(bytes)))
    }
}

/// A memfd holding `text`.
fn memfd_with(text: &str) -> OwnedFd {
    let fd = rustix::fs::memfd_create("dpmem-ipc-test", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let file = std::fs::File::from(fd);
    file.write_all_at(text.as_bytes(), 0).unwrap();
    file.into()
}

/// What a received descriptor's file holds.
fn read_fd(fd: OwnedFd) -> String {
    let file = std::fs::File::from(fd);
    let mut buf = vec![0u8; 64];
    let n = file.read_at(&mut buf, 0).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

fn spawn_secondary(prefix: &str, role: &str) -> ChildTest {
    let mut child = ChildTest::spawn(
        &std::env::current_exe().unwrap(),
        "ipc_secondary_body",
        |c| {
            c.env(ENV_PREFIX, prefix).env(ENV_ROLE, role);
        },
    );
    child.wait_for_line(&format!("secondary {role} ready"), LIMIT);
    child
}

#[test]
fn requests_messages_and_descriptors_cross_three_processes() {
    let _serial = hugepage_lock();
    if !hugepages_available("requests_messages_and_descriptors_cross_three_processes", 8) {
        return;
    }
    let prefix = unique_prefix("ipc_mp");
    let eal = Eal::init(args(&["-m", "8", "--file-prefix", &prefix])).unwrap();
    let runtime_dir = eal.runtime_dir().unwrap().to_path_buf();
    let ipc = eal.ipc().unwrap();
    assert_eq!(ipc.socket_name(), PRIMARY_SOCKET);
    ipc.register_action("test_echo", |incoming| {
        let text = format!(
            "primary:{}",
            String::from_utf8_lossy(incoming.message().params())
        );
        incoming
            .reply(IpcMessage::new("test_echo", text.as_bytes()).unwrap())
            .unwrap();
    })
    .unwrap();
    ipc.register_typed(|Sum(a, b), _peer| Some(Total(a + b)))
        .unwrap();
    let (acks_tx, acks) = mpsc::channel::<(String, String)>();
    let acks_tx = Mutex::new(acks_tx);
    ipc.register_action("test_ack", move |incoming| {
        let mut fds = incoming.message_mut().take_fds();
        let text = fds.pop().map(read_fd).unwrap_or_default();
        acks_tx
            .lock()
            .unwrap()
            .send((incoming.peer().to_owned(), text))
            .unwrap();
    })
    .unwrap();

    let mut a = spawn_secondary(&prefix, "a");
    let mut b = spawn_secondary(&prefix, "b");
    assert_eq!(ipc.peers().unwrap().len(), 2);

    // Synchronous: both answer.
    let hello = IpcMessage::new("test_echo", b"hi").unwrap();
    let replies = ipc.request_sync(&hello, Duration::from_secs(10)).unwrap();
    assert_eq!((replies.sent, replies.received()), (2, 2), "{replies:?}");
    let mut texts: Vec<String> = replies
        .replies
        .iter()
        .map(|r| String::from_utf8_lossy(r.message.params()).into_owned())
        .collect();
    texts.sort();
    assert_eq!(texts, ["a:hi", "b:hi"]);

    // Typed.
    let totals = ipc
        .request_typed::<Sum, Total>(Sum(40, 2), Duration::from_secs(10))
        .unwrap();
    assert_eq!(totals.replies.len(), 2);
    assert!(totals.replies.iter().all(|(_, Total(t))| *t == 42));

    // Asynchronous: the callback gets both replies.
    let (done_tx, done) = mpsc::channel();
    ipc.request_async(&hello, Duration::from_secs(10), move |replies| {
        done_tx.send(replies).unwrap();
    })
    .unwrap();
    let replies = done.recv_timeout(LIMIT).unwrap();
    assert_eq!((replies.sent, replies.received()), (2, 2), "{replies:?}");

    // Descriptors both ways: a memfd the primary wrote, read by each secondary, which
    // answers with a memfd of its own.
    let with_fd = IpcMessage::new("test_read_fd", b"")
        .unwrap()
        .with_fds(vec![memfd_with("written by the primary")])
        .unwrap();
    let mut replies = ipc.request_sync(&with_fd, Duration::from_secs(10)).unwrap();
    assert_eq!(replies.received(), 2, "{replies:?}");
    let mut seen = Vec::new();
    for reply in &mut replies.replies {
        assert_eq!(reply.message.params(), b"written by the primary");
        let mut fds = reply.message.take_fds();
        assert_eq!(fds.len(), 1);
        seen.push(read_fd(fds.pop().unwrap()));
    }
    seen.sort();
    assert_eq!(seen, ["written by secondary a", "written by secondary b"]);

    // One way, to every secondary; each answers one way, with a descriptor.
    let note = IpcMessage::new("test_note", b"").unwrap();
    assert_eq!(ipc.send(&note).unwrap(), 2);
    let mut got: Vec<String> = (0..2)
        .map(|_| acks.recv_timeout(LIMIT).unwrap().1)
        .collect();
    got.sort();
    assert_eq!(got, ["note seen by a", "note seen by b"]);

    // A name nobody has an action for: both say so at once.
    let start = Instant::now();
    let unknown = IpcMessage::new("test_nobody_has_this", b"").unwrap();
    let replies = ipc.request_sync(&unknown, Duration::from_secs(30)).unwrap();
    assert_eq!((replies.sent, replies.received()), (2, 0));
    assert_eq!(replies.no_action.len(), 2);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    // From within an action a synchronous request is refused, an asynchronous one is not.
    let nested = IpcMessage::new("test_nested", b"").unwrap();
    let replies = ipc.request_sync(&nested, Duration::from_secs(10)).unwrap();
    assert_eq!(replies.received(), 2, "{replies:?}");
    assert!(replies
        .replies
        .iter()
        .all(|r| r.message.params() == b"sync refused, async sent"));

    // Over the limits: refused when built, so never sent.
    let long = IpcMessage::new(&"n".repeat(64), b"").unwrap_err();
    assert_eq!(long.kind(), ErrorKind::NameTooLong);
    let params = IpcMessage::new("test_echo", &[0; 257]).unwrap_err();
    assert_eq!(params.kind(), ErrorKind::Inval);
    let fds = (0..9).map(|i| memfd_with(&i.to_string())).collect();
    let too_many = IpcMessage::new("test_echo", b"").unwrap().with_fds(fds);
    assert!(matches!(
        too_many,
        Err(IpcError::TooManyFds { count: 9, .. })
    ));

    // A peer killed mid-request: counted as died, not waited for; its socket removed.
    let b_socket = {
        let peers = ipc.peers().unwrap();
        let own = format!("mp_socket_{}_", b.pid());
        runtime_dir.join(peers.iter().find(|p| p.starts_with(&own)).unwrap())
    };
    let hang = IpcMessage::new("test_hang", b"").unwrap();
    let start = Instant::now();
    let replies = std::thread::scope(|s| {
        let request = s.spawn(|| ipc.request_sync(&hang, Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(300));
        dpmem_sys::process::ProcessHandle::open(b.pid())
            .unwrap()
            .kill()
            .unwrap();
        request.join().unwrap().unwrap()
    });
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!((replies.sent, replies.received()), (2, 0), "{replies:?}");
    assert_eq!(
        replies.no_action.len(),
        1,
        "a has no such action: {replies:?}"
    );
    assert_eq!(
        replies.died,
        [b_socket.file_name().unwrap().to_str().unwrap()]
    );
    assert!(!b_socket.exists());
    assert!(b.wait(LIMIT).is_some_and(|status| !status.success()));
    // The survivor still answers; the dead one is no longer a peer.
    let replies = ipc.request_sync(&hello, Duration::from_secs(10)).unwrap();
    assert_eq!((replies.sent, replies.received()), (1, 1), "{replies:?}");

    let a_transcript = a.assert_passed(LIMIT);
    assert!(a_transcript.contains("secondary a ready"));
    drop(eal);
    assert!(!runtime_dir.exists(), "runtime directory left behind");
    // The killed secondary's telemetry socket went with the primary's.
    let telemetry_dir = dpmem_eal::telemetry::dpdk_runtime_dir(&prefix);
    assert!(
        !telemetry_dir.exists(),
        "{} left behind",
        telemetry_dir.display()
    );
    let mount = mount_2m().unwrap();
    assert!(files_with_prefix(&mount, &prefix).is_empty());
}

#[test]
#[ignore = "run by requests_messages_and_descriptors_cross_three_processes in a child process"]
fn ipc_secondary_body() {
    let prefix = std::env::var(ENV_PREFIX).expect("run by the primary test");
    let role = std::env::var(ENV_ROLE).unwrap();
    let eal = attach_secondary(&prefix);
    let ipc = eal.ipc().unwrap();
    assert!(ipc.socket_name().starts_with("mp_socket_"));
    assert_eq!(ipc.peers().unwrap(), [PRIMARY_SOCKET]);

    let me = role.clone();
    ipc.register_action("test_echo", move |incoming| {
        let text = format!(
            "{me}:{}",
            String::from_utf8_lossy(incoming.message().params())
        );
        incoming
            .reply(IpcMessage::new("test_echo", text.as_bytes()).unwrap())
            .unwrap();
    })
    .unwrap();
    ipc.register_typed(|Sum(a, b), peer| {
        assert_eq!(peer, PRIMARY_SOCKET);
        Some(Total(a + b))
    })
    .unwrap();
    let me = role.clone();
    ipc.register_action("test_read_fd", move |incoming| {
        let mut fds = incoming.message_mut().take_fds();
        let text = read_fd(fds.pop().unwrap());
        let reply = IpcMessage::new("test_read_fd", text.as_bytes())
            .unwrap()
            .with_fds(vec![memfd_with(&format!("written by secondary {me}"))])
            .unwrap();
        incoming.reply(reply).unwrap();
    })
    .unwrap();
    let me = role.clone();
    ipc.register_action("test_note", move |incoming| {
        assert!(!incoming.is_request());
        // A one-way message cannot be replied to; the answer goes one way too.
        let refused = incoming.reply(IpcMessage::new("x", b"").unwrap());
        assert!(matches!(refused, Err(IpcError::CannotReply { .. })));
        let ack = IpcMessage::new("test_ack", b"")
            .unwrap()
            .with_fds(vec![memfd_with(&format!("note seen by {me}"))])
            .unwrap();
        assert_eq!(incoming.channel().send(&ack).unwrap(), 1);
    })
    .unwrap();
    ipc.register_action("test_nested", |incoming| {
        let inner = IpcMessage::new("test_echo", b"inner").unwrap();
        let sync = incoming
            .channel()
            .request_sync(&inner, Duration::from_secs(1));
        let async_sent = incoming
            .channel()
            .request_async(&inner, Duration::from_secs(1), |_| {});
        let text = match (sync, async_sent) {
            (Err(IpcError::SyncFromAction), Ok(())) => "sync refused, async sent",
            _ => "wrong",
        };
        incoming
            .reply(IpcMessage::new("test_nested", text.as_bytes()).unwrap())
            .unwrap();
    })
    .unwrap();
    if role == "b" {
        // Stuck until the primary kills this process.
        ipc.register_action("test_hang", |_| std::thread::sleep(Duration::from_secs(60)))
            .unwrap();
    }

    // This secondary's own requests go to the primary.
    let replies = ipc
        .request_sync(
            &IpcMessage::new("test_echo", role.as_bytes()).unwrap(),
            LIMIT,
        )
        .unwrap();
    assert_eq!((replies.sent, replies.received()), (1, 1), "{replies:?}");
    assert_eq!(replies.replies[0].peer, PRIMARY_SOCKET);
    assert_eq!(
        replies.replies[0].message.params(),
        format!("primary:{role}").as_bytes()
    );
    let total = ipc.request_typed::<Sum, Total>(Sum(1, 2), LIMIT).unwrap();
    assert!(matches!(total.replies.as_slice(), [(_, Total(3))]));
    let unknown = ipc
        .request_sync(&IpcMessage::new("test_nothing", b"").unwrap(), LIMIT)
        .unwrap();
    assert_eq!(unknown.no_action, [PRIMARY_SOCKET]);
    let (tx, rx) = mpsc::channel();
    ipc.request_async(
        &IpcMessage::new("test_echo", b"async").unwrap(),
        LIMIT,
        move |replies| tx.send(replies.received()).unwrap(),
    )
    .unwrap();
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), 1);

    println!("secondary {role} ready");
    std::io::stdout().flush().unwrap();
    // Serve until the parent closes stdin.
    for line in std::io::stdin().lock().lines() {
        if line.is_err() {
            break;
        }
    }
    let socket = ipc.socket_path();
    drop(eal);
    assert!(!socket.exists());
}
