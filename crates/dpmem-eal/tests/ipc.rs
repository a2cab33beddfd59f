//! The inter-process channel within one process: a `--no-huge` primary (any machine, any
//! user) and stand-in peers bound in its runtime directory, to check what a primary does with
//! peers that never answer, die mid-request or died long ago. Real secondaries are in
//! `ipc_multiprocess.rs`.

mod common;

use std::os::fd::OwnedFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use dpmem_eal::ipc::{IpcError, IpcMessage, PRIMARY_SOCKET};
use dpmem_eal::{Eal, ErrorKind};
use dpmem_sys::datagram::DatagramSocket;
use dpmem_sys::dir_handle::DirHandle;

/// A socket named as a secondary's in `eal`'s runtime directory, that nobody serves.
fn stand_in_peer(eal: &Eal, name: &str) -> (DirHandle, DatagramSocket) {
    let dir = DirHandle::open_anchor(eal.runtime_dir().unwrap()).unwrap();
    let socket = DatagramSocket::bind_in(&dir, name).unwrap();
    (dir, socket)
}

#[test]
fn the_primary_serves_its_socket_while_it_lives_and_removes_it_when_dropped() {
    let eal = no_huge_eal("ipc_life", 8);
    let ipc = eal.ipc().unwrap();
    assert_eq!(ipc.socket_name(), PRIMARY_SOCKET);
    let socket = ipc.socket_path();
    assert!(socket.exists());
    assert_eq!(socket.parent(), eal.runtime_dir());
    assert!(ipc.peers().unwrap().is_empty());

    // With no peer, a request ends at once with nothing sent, whatever its timeout.
    let message = IpcMessage::new("nobody", b"x").unwrap();
    let start = Instant::now();
    let replies = ipc.request_sync(&message, Duration::from_secs(30)).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!((replies.sent, replies.received()), (0, 0));
    // A timeout past the clock's range is no panic.
    assert_eq!(ipc.request_sync(&message, Duration::MAX).unwrap().sent, 0);
    let (tx, rx) = mpsc::channel();
    ipc.request_async(&message, Duration::from_secs(30), move |r| {
        tx.send((r.sent, std::thread::current().name().map(str::to_owned)))
            .unwrap();
    })
    .unwrap();
    let (sent, thread) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(sent, 0);
    assert_eq!(
        thread.as_deref(),
        Some("dpmem-mp"),
        "callbacks run on the control thread"
    );
    assert_eq!(ipc.send(&message).unwrap(), 0);

    ipc.register_action("act", |_| {}).unwrap();
    assert_eq!(
        ipc.register_action("act", |_| {}).unwrap_err().kind(),
        ErrorKind::Exist
    );
    ipc.unregister_action("act").unwrap();
    assert_eq!(
        ipc.unregister_action("act").unwrap_err().kind(),
        ErrorKind::NoEnt
    );
    assert_eq!(
        ipc.register_action(&"a".repeat(64), |_| {})
            .unwrap_err()
            .kind(),
        ErrorKind::NameTooLong
    );
    let dir = eal.runtime_dir().unwrap().to_path_buf();
    drop(eal);
    assert!(!socket.exists());
    assert!(!dir.exists(), "nothing left in the runtime directory");
}

#[test]
fn in_memory_has_no_channel() {
    let _serial = hugepage_lock();
    if !hugepages_available("in_memory_has_no_channel", 2) {
        return;
    }
    let eal = Eal::init(args(&[
        "--in-memory",
        "-m",
        "2",
        "--file-prefix",
        &unique_prefix("ipc_mem"),
    ]))
    .unwrap();
    let err = eal.ipc().unwrap_err();
    assert!(matches!(err, IpcError::Disabled(_)));
    assert_eq!(err.kind(), ErrorKind::NotSup);
    assert_eq!(dpmem_eal::EalError::from(err).kind(), ErrorKind::NotSup);
    assert!(eal.runtime_dir().is_none());
}

#[test]
fn a_message_reaches_a_peer_with_its_descriptors() {
    let eal = no_huge_eal("ipc_send", 8);
    let ipc = eal.ipc().unwrap();
    let (dir, peer) = stand_in_peer(&eal, "mp_socket_4000000000_0");
    assert_eq!(ipc.peers().unwrap(), ["mp_socket_4000000000_0"]);
    let fds: Vec<OwnedFd> = (0..8)
        .map(|_| std::fs::File::open("/dev/null").unwrap().into())
        .collect();
    let message = IpcMessage::new("note", &[7; 256])
        .unwrap()
        .with_fds(fds)
        .unwrap();
    assert_eq!(ipc.send(&message).unwrap(), 1);
    let mut buf = vec![0u8; 1024];
    let datagram = loop {
        if let Some(d) = peer.recv(&mut buf).unwrap() {
            break d;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(datagram.fds.len(), 8);
    assert!(buf[..datagram.len].windows(4).any(|w| w == b"note"));
    // A stand-in leaves its file, as a process that died would: the test removes it.
    drop(peer);
    dir.remove_file("mp_socket_4000000000_0").unwrap();
}

#[test]
fn a_silent_peer_times_out_and_a_dead_one_is_noticed_at_once() {
    let eal = no_huge_eal("ipc_dead", 8);
    let ipc = eal.ipc().unwrap();
    let message = IpcMessage::new("question", b"?").unwrap();

    // Alive but never answering: waited for until the timeout, then named.
    let (_dir, silent) = stand_in_peer(&eal, "mp_socket_4000000001_0");
    let start = Instant::now();
    let replies = ipc
        .request_sync(&message, Duration::from_millis(200))
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!((replies.sent, replies.received()), (1, 0));
    assert_eq!(replies.timed_out, ["mp_socket_4000000001_0"]);
    assert_eq!(replies.unanswered(), ["mp_socket_4000000001_0 (timed out)"]);

    // Dying mid-request: noticed long before the timeout, its socket removed.
    let socket = eal.runtime_dir().unwrap().join("mp_socket_4000000001_0");
    let start = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(Duration::from_millis(100));
            drop(silent);
        });
        let replies = ipc.request_sync(&message, Duration::from_secs(30)).unwrap();
        assert_eq!((replies.sent, replies.received()), (1, 0));
        assert_eq!(replies.died, ["mp_socket_4000000001_0"]);
    });
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(!socket.exists());

    // Dead before the request: skipped, not counted as sent, its socket removed.
    let (dir, gone) = stand_in_peer(&eal, "mp_socket_4000000002_0");
    drop(gone);
    assert!(dir.path().join("mp_socket_4000000002_0").exists());
    let replies = ipc.request_sync(&message, Duration::from_secs(30)).unwrap();
    assert_eq!(replies.sent, 0);
    assert_eq!(replies.skipped, ["mp_socket_4000000002_0"]);
    assert!(!dir.path().join("mp_socket_4000000002_0").exists());
}

#[test]
fn a_starting_primary_removes_sockets_left_by_dead_processes() {
    let prefix = unique_prefix("ipc_stale");
    let args = args(&["--no-huge", "-m", "8", "--file-prefix", &prefix]);
    let eal = Eal::init(args.clone()).unwrap();
    let dir = eal.runtime_dir().unwrap().to_path_buf();
    let (_handle, left) = stand_in_peer(&eal, "mp_socket_4000000003_0");
    drop(left);
    // The stand-in's file stays (as a killed secondary's would) until a primary starts.
    drop(eal);
    assert!(dir.join("mp_socket_4000000003_0").exists());
    let eal = Eal::init(args).unwrap();
    assert!(!dir.join("mp_socket_4000000003_0").exists());

    // Housekeeping removes dead sockets only: the live primary's stays.
    let (_handle, left) = stand_in_peer(&eal, "mp_socket_4000000003_1");
    drop(left);
    assert_eq!(
        dpmem_eal::ipc::remove_dead_sockets(&dir).unwrap(),
        ["mp_socket_4000000003_1"]
    );
    assert!(dir.join(PRIMARY_SOCKET).exists());
    drop(eal);
    assert!(!dir.exists());
}
