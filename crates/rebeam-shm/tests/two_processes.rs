//! Channels between two real processes: this test binary spawns itself as the peer (the role
//! chosen by an environment variable, the Unix socket inherited as an fd), hands it two channels
//! over SCM_RIGHTS, and checks echoes, SIGKILLs in every state that matters, and that nothing
//! (fd, mapping, name in /dev/shm) outlives a channel.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use rebeam_shm::fdpass::{recv_fds, send_fds};
use rebeam_shm::{ChannelFds, PeerWatch, Receiver, Sender, ShmError};
use rustix::net::{socketpair, AddressFamily, SocketFlags, SocketType};

const ROLE: &str = "REBEAM_SHM_TEST_ROLE";
const SOCKET: &str = "REBEAM_SHM_TEST_SOCKET";
/// Long enough never to be reached by a wait that works; a wait that reaches it fails the test.
const WAIT: Duration = Duration::from_secs(30);
const CAPACITY: usize = 64 * 1024;
/// How long a killer thread lets the test block before it kills the peer.
const KILL_AFTER: Duration = Duration::from_millis(100);

/// The fd counts below are per process, so these tests must not run alongside each other.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn segment_maps() -> Vec<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines().filter(|l| l.contains("rebeam-shm") || l.contains("/dev/shm")).map(str::to_owned).collect()
}

struct Peer {
    process: std::process::Child,
    socket: OwnedFd,
    tx: Sender,
    rx: Receiver,
}

/// Spawns this binary as the peer in `role` and opens a channel each way.
fn spawn(role: &str) -> Peer {
    let (mine, theirs) = socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None).unwrap();
    let raw = theirs.as_raw_fd();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["child_role", "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(SOCKET, raw.to_string())
        .stdout(Stdio::null());
    // SAFETY: runs in the forked child before exec and only calls fcntl, which is
    // async-signal-safe; `raw` is open in the parent until after spawn.
    unsafe {
        cmd.pre_exec(move || {
            rustix::io::fcntl_setfd(BorrowedFd::borrow_raw(raw), rustix::io::FdFlags::empty())?;
            Ok(())
        })
    };
    let process = cmd.spawn().unwrap();
    drop(theirs);
    let (down, up) = (ChannelFds::create(CAPACITY).unwrap(), ChannelFds::create(CAPACITY).unwrap());
    for chan in [&down, &up] {
        send_fds(&mine, &(chan.len as u64).to_le_bytes(), &chan.fds()).unwrap();
    }
    // The child watches us through our pidfd, never through a pid number it would look up.
    let me = PeerWatch::new(std::process::id()).unwrap();
    send_fds(&mine, b"pidfd", &[me.as_fd()]).unwrap();
    let tx = Sender::open(down, PeerWatch::new(process.id()).unwrap()).unwrap();
    let rx = Receiver::open(up, PeerWatch::new(process.id()).unwrap()).unwrap();
    Peer { process, socket: mine, tx, rx }
}

fn await_word(socket: &OwnedFd, word: &[u8]) {
    let mut buf = [0u8; 16];
    let (n, fds) = recv_fds(socket, &mut buf).unwrap();
    assert_eq!((&buf[..n], fds.len()), (word, 0));
}

fn kill_later(pid: u32) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        thread::sleep(KILL_AFTER);
        let pid = rustix::process::Pid::from_raw(pid as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
    })
}

/// Runs `scenario` and checks that it leaves exactly the fds and mappings it found.
fn without_leaks(scenario: impl FnOnce()) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (fds, maps) = (open_fds(), segment_maps());
    scenario();
    assert_eq!(open_fds(), fds, "an fd outlived its channel");
    assert_eq!(segment_maps(), maps, "a mapping outlived its channel");
    let named = std::fs::read_dir("/dev/shm")
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains("rebeam"));
    assert_eq!(named.count(), 0, "segments are never named");
}

#[test]
fn records_of_every_size_echo_and_a_clean_exit_is_peer_gone() {
    without_leaks(|| {
        let mut peer = spawn("echo");
        let maps = segment_maps();
        assert!(!maps.is_empty() && maps.iter().all(|l| l.contains("/memfd:rebeam-shm")), "{maps:?}");
        let max = peer.tx.max_record();
        for len in [1, 7, 8, 9, 64, 1000, 4096, max - 1, max] {
            let sent: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
            let (a, b) = sent.split_at(len / 3);
            peer.tx.send(&[a, b], WAIT).unwrap();
            assert_eq!(&*peer.rx.recv(WAIT).unwrap(), sent);
        }
        // Many small records through the wrap, with the receiver both busy and asleep.
        for i in 0..20_000u32 {
            peer.tx.send(&[&i.to_le_bytes()], WAIT).unwrap();
            assert_eq!(&*peer.rx.recv(WAIT).unwrap(), i.to_le_bytes());
        }
        peer.tx.send(&[], WAIT).unwrap(); // the empty record asks the echo to exit
        assert!(matches!(peer.rx.recv(WAIT), Err(ShmError::PeerGone)));
        assert!(peer.process.wait().unwrap().success());
    });
}

#[test]
fn a_receiver_sigkilled_while_our_ring_to_it_is_full_fails_the_blocked_send() {
    without_leaks(|| {
        let mut peer = spawn("idle");
        await_word(&peer.socket, b"ready");
        let mut sent = 0;
        while peer.tx.try_send(&[&[1; 100]]).is_ok() {
            sent += 1;
        }
        assert!(sent > 0);
        let killer = kill_later(peer.process.id());
        assert!(matches!(peer.tx.send(&[&[1; 100]], WAIT), Err(ShmError::PeerGone)));
        killer.join().unwrap();
        peer.process.wait().unwrap();
    });
}

#[test]
fn a_sender_sigkilled_with_its_ring_to_us_full_leaves_whole_records_then_peer_gone() {
    without_leaks(|| {
        let mut peer = spawn("fill");
        await_word(&peer.socket, b"full");
        let pid = rustix::process::Pid::from_raw(peer.process.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
        peer.process.wait().unwrap();
        let mut got = 0;
        loop {
            match peer.rx.recv(WAIT) {
                Ok(record) => assert_eq!(&*record, [9; 100]),
                Err(ShmError::PeerGone) => break,
                Err(e) => panic!("{e}"),
            }
            got += 1;
        }
        assert_eq!(got, CAPACITY / 112, "a full ring of 100-byte records (108 padded to 112)");
    });
}

#[test]
fn a_sender_sigkilled_while_we_wait_ends_the_wait() {
    without_leaks(|| {
        let mut peer = spawn("idle");
        await_word(&peer.socket, b"ready");
        let killer = kill_later(peer.process.id());
        assert!(matches!(peer.rx.recv(WAIT), Err(ShmError::PeerGone)));
        killer.join().unwrap();
        peer.process.wait().unwrap();
    });
}

/// The peer's side: a no-op unless this binary was spawned by `spawn` with a role.
#[test]
fn child_role() {
    let Ok(role) = std::env::var(ROLE) else { return };
    let raw: i32 = std::env::var(SOCKET).unwrap().parse().unwrap();
    // SAFETY: the parent left this fd open for us and nothing else in this process owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    let channel = || {
        let mut len = [0u8; 8];
        let (_, fds) = recv_fds(&socket, &mut len).unwrap();
        ChannelFds::from_fds(fds, u64::from_le_bytes(len) as usize).unwrap()
    };
    let (down, up) = (channel(), channel());
    let (_, mut pidfd) = recv_fds(&socket, &mut [0u8; 8]).unwrap();
    let parent = PeerWatch::from_pidfd(pidfd.pop().unwrap()).unwrap();
    assert_eq!(parent.pid(), rustix::process::getppid().unwrap().as_raw_nonzero().get() as u32);
    let mut rx = Receiver::open(down, parent.try_clone().unwrap()).unwrap();
    let mut tx = Sender::open(up, parent).unwrap();
    match role.as_str() {
        "echo" => loop {
            let record = rx.recv(WAIT).unwrap().to_vec();
            if record.is_empty() {
                std::process::exit(0);
            }
            tx.send(&[&record], WAIT).unwrap();
        },
        "fill" => {
            while tx.try_send(&[&[9; 100]]).is_ok() {}
            send_fds(socket.as_fd(), b"full", &[]).unwrap();
        }
        "idle" => {
            send_fds(socket.as_fd(), b"ready", &[]).unwrap();
        }
        other => panic!("unknown role {other}"),
    }
    // Wait to be killed (the parent's tests all kill these roles).
    thread::sleep(WAIT);
    std::process::exit(1);
}
