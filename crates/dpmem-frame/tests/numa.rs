//! NUMA placement of sessions on this one-node machine: a session asked onto a socket with
//! no memory (node 1: the EAL has no memory there, with or without hugepages) falls back to
//! any socket and counts each allocation that did, or is refused when fallback is
//! forbidden, naming the socket and leaving nothing behind; a session asked onto node 0
//! counts none. Ports report the socket of the lcore or thread that opened them, and
//! sessions built for a port take it before their builder's.

mod common;
use common::SMALL;

use dpmem_dma::borrow::DmaBorrower;
use dpmem_eal::{Eal, Socket};
use dpmem_frame::{
    rx_pool, FrameError, LoopbackPort, NumaPlacement, PortSocket, RxSession, TxSession, UdpPort,
    DEFAULT_RX_QUEUE,
};

fn no_huge_eal(tag: &str) -> Eal {
    common::eal("nu", tag, &["--no-huge", "-m", "64", "-l", "0-1"])
}

/// The socket the EAL has memory on (this machine has one).
fn home(eal: &Eal) -> Socket {
    let sockets = eal.memory().sockets();
    assert_eq!(sockets.len(), 1, "a one-node machine: {sockets:?}");
    sockets[0]
}

fn tx<'e>(eal: &'e Eal, name: &str, socket: Socket) -> Result<TxSession<'e>, FrameError> {
    TxSession::builder(name)
        .format(SMALL)
        .frames(2)
        .socket(socket)
        .create(eal)
}

/// Every allocation of a TX session of two frames: the frames and three pools.
const TX_ALLOCATIONS: u32 = 2 + 3;

fn fell_back(asked: Socket, allocations: u32, to: Socket) -> NumaPlacement {
    NumaPlacement {
        asked,
        allocations,
        fallbacks: allocations,
        fell_back_to: Some(to),
    }
}

fn stayed(asked: Socket, allocations: u32) -> NumaPlacement {
    NumaPlacement {
        asked,
        allocations,
        fallbacks: 0,
        fell_back_to: None,
    }
}

/// Sessions asked onto node 1 fall back, counted; onto node 0 or any socket, they do not.
fn fallback_is_counted(eal: &Eal) {
    let home = home(eal);
    let away = Socket::Node(1);
    assert!(!eal.memory().sockets().contains(&away));

    let session = tx(eal, "tx1", away).unwrap();
    let numa = session.numa();
    assert_eq!(numa, fell_back(away, TX_ALLOCATIONS, home));
    assert!(numa.fell_back());
    // The memory is really elsewhere: every frame buffer's page is on the home socket.
    for id in 0..session.frame_count() {
        let at = session.location(id).unwrap();
        let seg = eal.memory().virt_to_memseg(at.va).unwrap();
        assert_eq!(seg.socket(), home);
    }
    drop(session);

    assert_eq!(
        tx(eal, "tx0", home).unwrap().numa(),
        stayed(home, TX_ALLOCATIONS)
    );
    assert_eq!(
        tx(eal, "txa", Socket::Any).unwrap().numa(),
        stayed(Socket::Any, TX_ALLOCATIONS)
    );

    let mut borrower = DmaBorrower::new(eal, None).unwrap();
    let rx = RxSession::builder("rx1")
        .format(SMALL)
        .frames(3)
        .socket(away)
        .create(eal, &mut borrower)
        .unwrap();
    assert_eq!(rx.numa(), fell_back(away, 3, home));
    rx.close(&mut borrower).map_err(|(e, _)| e).unwrap();
    let rx = RxSession::builder("rx0")
        .format(SMALL)
        .socket(home)
        .create(eal, &mut borrower)
        .unwrap();
    assert_eq!(rx.numa(), stayed(home, 3));
    rx.close(&mut borrower).map_err(|(e, _)| e).unwrap();
}

/// Forbidden to fall back, sessions asked onto node 1 are refused, naming the socket, and
/// leave no memzone or pool behind.
fn forbidden_fallback_is_refused(eal: &Eal) {
    let away = Socket::Node(1);
    let zones = eal.memzones().count();
    let refused = TxSession::builder("txf")
        .format(SMALL)
        .socket(away)
        .numa_fallback(false)
        .create(eal)
        .unwrap_err();
    match &refused {
        FrameError::NoMemoryOnSocket { socket, what } => {
            assert_eq!(*socket, away);
            assert!(what.contains("txf.f0"), "{what}");
        }
        other => panic!("expected NoMemoryOnSocket, got {other:?}"),
    }
    assert!(refused.to_string().contains("socket 1"), "{refused}");
    assert_eq!(eal.memzones().count(), zones);

    let mut borrower = DmaBorrower::new(eal, None).unwrap();
    let refused = RxSession::builder("rxf")
        .format(SMALL)
        .socket(away)
        .numa_fallback(false)
        .create(eal, &mut borrower)
        .unwrap_err();
    assert!(
        matches!(refused, FrameError::NoMemoryOnSocket { socket, .. } if socket == away),
        "{refused:?}"
    );
    assert_eq!(eal.memzones().count(), zones);

    // Allowed where the memory is: nothing to fall back from.
    let home = TxSession::builder("txh")
        .format(SMALL)
        .socket(home(eal))
        .numa_fallback(false)
        .create(eal)
        .unwrap();
    assert!(!home.numa().fell_back());
}

#[test]
fn a_socket_without_memory_falls_back_counted_without_hugepages() {
    let eal = no_huge_eal("fb");
    fallback_is_counted(&eal);
}

#[test]
fn forbidding_fallback_refuses_a_socket_without_memory_without_hugepages() {
    let eal = no_huge_eal("forbid");
    forbidden_fallback_is_refused(&eal);
}

#[test]
fn a_socket_without_memory_falls_back_counted_on_hugepages() {
    if !dpmem_testkit::hugepages_available("NUMA fallback on hugepages", 16) {
        return;
    }
    let eal = Eal::init([
        "numa-test",
        "--in-memory",
        "-m",
        "16",
        "-l",
        "0-1",
        "--file-prefix",
        &common::prefix("nu", "huge"),
    ])
    .unwrap();
    assert!(eal.memory().page_sizes().iter().all(|&p| p >= 2 << 20));
    fallback_is_counted(&eal);
    forbidden_fallback_is_refused(&eal);
}

#[test]
fn ports_carry_the_socket_they_were_opened_on_into_sessions() {
    let eal = no_huge_eal("ports");
    let home = home(&eal);
    let threads = eal.lcore_threads();
    let worker = threads.worker_ids().next().expect("-l 0-1 has a worker");
    assert_eq!(threads.lcore_socket(worker), Some(home));
    let pool = rx_pool(&eal, "nu.rx", 256).unwrap();

    // Opened on a worker lcore: its socket. Opened on a thread dpmem never tied to a node:
    // unknown.
    let (on_lcore, udp_on_lcore) = threads.scope(|s| {
        s.launch(worker, || {
            (
                LoopbackPort::new(&pool, DEFAULT_RX_QUEUE).unwrap(),
                UdpPort::builder().open(&pool).unwrap(),
            )
        })
        .unwrap()
        .join()
        .unwrap()
    });
    assert_eq!(on_lcore.socket(), home);
    assert_eq!(udp_on_lcore.socket(), home);
    let anywhere = std::thread::scope(|s| {
        s.spawn(|| LoopbackPort::new(&pool, 16).unwrap())
            .join()
            .unwrap()
    });
    assert_eq!(anywhere.socket(), Socket::Any);

    // The port's socket comes before the builder's; an unknown one leaves the builder's.
    let session = TxSession::builder("txp")
        .format(SMALL)
        .frames(2)
        .socket(Socket::Node(1))
        .port(&on_lcore)
        .create(&eal)
        .unwrap();
    assert_eq!(session.numa(), stayed(home, TX_ALLOCATIONS));
    drop(session);
    let session = TxSession::builder("txq")
        .format(SMALL)
        .frames(2)
        .port(&anywhere)
        .socket(Socket::Node(1))
        .create(&eal)
        .unwrap();
    assert_eq!(
        session.numa(),
        fell_back(Socket::Node(1), TX_ALLOCATIONS, home)
    );
    let mut borrower = DmaBorrower::new(&eal, None).unwrap();
    let rx = RxSession::builder("rxp")
        .format(SMALL)
        .socket(Socket::Node(1))
        .port(&udp_on_lcore)
        .create(&eal, &mut borrower)
        .unwrap();
    assert_eq!(rx.numa(), stayed(home, 3));
    rx.close(&mut borrower).map_err(|(e, _)| e).unwrap();
}
