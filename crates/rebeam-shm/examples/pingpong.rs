//! Measures the channel against a Unix socket between two processes of this machine.
//!
//! `cargo run --release -p rebeam-shm --example pingpong`: a 64-byte record ping-ponged
//! [`ROUND_TRIPS`] times over a ring with eventfd doorbells (no spin, then each budget in
//! [`SPIN_BUDGETS_US`]) and over a Unix socketpair, round-trip p50/p99; then one-way throughput
//! of 64 B, 1 KiB and 1 MiB records over each. The child is this binary again, its socket
//! inherited. Both ends of a ring run spin the same budget. The throughput receiver copies each record out
//! once (as a deserialiser would read it), the sender copies it in once.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use rebeam_shm::fdpass::{recv_fds, send_fds};
use rebeam_shm::{ChannelFds, PeerWatch, Receiver, Sender};

const ROUND_TRIPS: usize = 100_000;
const WARM_UP: usize = 2_000;
const RECORD: usize = 64;
const SPIN_BUDGETS_US: [u64; 3] = [2, 10, 50];
/// (record size, records sent) for the throughput rows: 256 MiB each.
const THROUGHPUT: [(usize, usize); 3] = [(64, 4 << 20), (1024, 256 << 10), (1 << 20, 256)];
/// Holds a 1 MiB record (a record is at most half the ring).
const CAPACITY: usize = 4 << 20;
const WAIT: Duration = Duration::from_secs(30);
const SOCKET_ENV: &str = "REBEAM_SHM_PINGPONG_SOCKET";
/// Set (to anything) to pin the parent to CPU 0 and the child to CPU 1, measuring "across
/// cores" instead of wherever the scheduler puts the two.
const PIN_ENV: &str = "REBEAM_SHM_PINGPONG_PIN";

/// Pins this process to `cpu` when `PIN_ENV` asks for it.
fn pin(cpu: usize) {
    if std::env::var_os(PIN_ENV).is_some() {
        let mut set = rustix::thread::CpuSet::new();
        set.set(cpu);
        rustix::thread::sched_setaffinity(None, &set).unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Ok(raw) = std::env::var(SOCKET_ENV) {
        // SAFETY: the parent left this fd open for us; nothing else here owns it.
        let socket = unsafe { UnixStream::from_raw_fd(raw.parse().unwrap()) };
        pin(1);
        return child(&args, socket);
    }
    pin(0);
    let placement = if std::env::var_os(PIN_ENV).is_some() { "pinned to CPUs 0 and 1" } else { "unpinned" };
    println!("rebeam-shm pingpong: {ROUND_TRIPS} round trips of {RECORD} B, two processes, {placement}");
    for us in [0].into_iter().chain(SPIN_BUDGETS_US) {
        let label = match us {
            0 => "ring + eventfd, no spin".to_owned(),
            us => format!("ring + eventfd, spin {us} us"),
        };
        let (ends, rx) = spawn_ring("echo", us);
        print_latency(&label, ring_rtt(ends, rx));
    }
    print_latency("unix socketpair", socket_rtt());
    for (size, count) in THROUGHPUT {
        let (tx, rx) = spawn_ring("sink", 0);
        let mbs = ring_throughput(tx, rx, size, count);
        let sock = socket_throughput(size, count);
        let per_s = |mbs: f64| mbs * 1e6 / size as f64 / 1e6;
        println!(
            "one way, {size:>7} B records: ring {mbs:8.0} MB/s ({:7.2} M/s), socket {sock:8.0} MB/s ({:7.2} M/s)",
            per_s(mbs),
            per_s(sock)
        );
    }
}

struct Ends {
    tx: Sender,
    child: std::process::Child,
}

fn spawn_with(socket: &UnixStream, role: &str, arg: u64) -> std::process::Child {
    let raw = socket.as_raw_fd();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([role, &arg.to_string()]).env(SOCKET_ENV, raw.to_string());
    // SAFETY: only fcntl, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            rustix::io::fcntl_setfd(BorrowedFd::borrow_raw(raw), rustix::io::FdFlags::empty())?;
            Ok(())
        })
    };
    cmd.spawn().unwrap()
}

fn spawn_ring(role: &str, spin_us: u64) -> (Ends, Receiver) {
    let (mine, theirs) = UnixStream::pair().unwrap();
    let child = spawn_with(&theirs, role, spin_us);
    drop(theirs);
    let (down, up) = (ChannelFds::create(CAPACITY).unwrap(), ChannelFds::create(CAPACITY).unwrap());
    let lens = [down.len as u64, up.len as u64].map(u64::to_le_bytes).concat();
    // Our own pidfd goes last, so the child watches us without looking up a pid number.
    let me = PeerWatch::new(std::process::id()).unwrap();
    let fds: Vec<BorrowedFd<'_>> = down.fds().into_iter().chain(up.fds()).chain([me.as_fd()]).collect();
    send_fds(&mine, &lens, &fds).unwrap();
    let tx = Sender::open(down, PeerWatch::new(child.id()).unwrap()).unwrap();
    let mut rx = Receiver::open(up, PeerWatch::new(child.id()).unwrap()).unwrap();
    rx.set_spin(Duration::from_micros(spin_us));
    (Ends { tx, child }, rx)
}

fn ring_rtt(ends: Ends, mut rx: Receiver) -> Vec<Duration> {
    let Ends { mut tx, mut child } = ends;
    let msg = [7u8; RECORD];
    let mut out = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..WARM_UP + ROUND_TRIPS {
        let t = Instant::now();
        tx.send(&[&msg], WAIT).unwrap();
        let got = rx.recv(WAIT).unwrap();
        assert_eq!(got.len(), RECORD);
        drop(got);
        if i >= WARM_UP {
            out.push(t.elapsed());
        }
    }
    tx.send(&[], WAIT).unwrap();
    child.wait().unwrap();
    out
}

fn ring_throughput(ends: Ends, mut rx: Receiver, size: usize, count: usize) -> f64 {
    let Ends { mut tx, mut child } = ends;
    let msg = vec![3u8; size];
    let t = Instant::now();
    for _ in 0..count {
        tx.send(&[&msg], WAIT).unwrap();
    }
    tx.send(&[], WAIT).unwrap();
    let total = u64::from_le_bytes(rx.recv(WAIT).unwrap()[..8].try_into().unwrap());
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(total as usize, size * count);
    child.wait().unwrap();
    total as f64 / secs / 1e6
}

fn socket_rtt() -> Vec<Duration> {
    let (mut mine, theirs) = UnixStream::pair().unwrap();
    let mut child = spawn_with(&theirs, "sock-echo", 0);
    drop(theirs);
    let (msg, mut buf) = ([7u8; RECORD], [0u8; RECORD]);
    let mut out = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..WARM_UP + ROUND_TRIPS {
        let t = Instant::now();
        mine.write_all(&msg).unwrap();
        mine.read_exact(&mut buf).unwrap();
        if i >= WARM_UP {
            out.push(t.elapsed());
        }
    }
    drop(mine);
    child.wait().unwrap();
    out
}

fn socket_throughput(size: usize, count: usize) -> f64 {
    let (mut mine, theirs) = UnixStream::pair().unwrap();
    let mut child = spawn_with(&theirs, "sock-sink", size as u64);
    drop(theirs);
    let msg = vec![3u8; size];
    let t = Instant::now();
    for _ in 0..count {
        mine.write_all(&msg).unwrap();
    }
    mine.shutdown(std::net::Shutdown::Write).unwrap();
    let mut total = [0u8; 8];
    mine.read_exact(&mut total).unwrap();
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(u64::from_le_bytes(total) as usize, size * count);
    child.wait().unwrap();
    size as f64 * count as f64 / secs / 1e6
}

fn print_latency(what: &str, mut rtts: Vec<Duration>) {
    rtts.sort();
    let at = |q: usize| rtts[rtts.len() * q / 100].as_secs_f64() * 1e6;
    println!("{what:<28} p50 {:6.2} us   p99 {:6.2} us", at(50), at(99));
}

fn child(args: &[String], mut socket: UnixStream) {
    let arg: u64 = args[1].parse().unwrap();
    match args[0].as_str() {
        "sock-echo" => {
            let mut buf = [0u8; RECORD];
            while socket.read_exact(&mut buf).is_ok() {
                socket.write_all(&buf).unwrap();
            }
        }
        "sock-sink" => {
            let mut buf = vec![0u8; arg as usize];
            let mut total = 0u64;
            loop {
                match socket.read(&mut buf).unwrap() {
                    0 => break,
                    n => total += n as u64,
                }
            }
            socket.write_all(&total.to_le_bytes()).unwrap();
        }
        role => {
            let mut lens = [0u8; 16];
            let (_, mut fds) = recv_fds(&socket, &mut lens).unwrap();
            let parent = PeerWatch::from_pidfd(fds.pop().unwrap()).unwrap();
            let up_fds = fds.split_off(3);
            let len = |i: usize| u64::from_le_bytes(lens[i * 8..i * 8 + 8].try_into().unwrap()) as usize;
            let mut rx =
                Receiver::open(ChannelFds::from_fds(fds, len(0)).unwrap(), parent.try_clone().unwrap()).unwrap();
            let mut tx = Sender::open(ChannelFds::from_fds(up_fds, len(1)).unwrap(), parent).unwrap();
            rx.set_spin(Duration::from_micros(arg));
            if role == "echo" {
                loop {
                    let record = rx.recv(WAIT).unwrap();
                    if record.is_empty() {
                        return;
                    }
                    let copy: [u8; RECORD] = (*record).try_into().unwrap();
                    drop(record);
                    tx.send(&[&copy], WAIT).unwrap();
                }
            }
            let (mut total, mut copy) = (0u64, Vec::with_capacity(1 << 20));
            loop {
                let record = rx.recv(WAIT).unwrap();
                if record.is_empty() {
                    break;
                }
                copy.clear();
                copy.extend_from_slice(&record);
                total += copy.len() as u64;
            }
            tx.send(&[&total.to_le_bytes()], WAIT).unwrap();
        }
    }
}
