//! Channel ends handed over by a fake governor: fds sent with a frame as the governor sends
//! them (one sendmsg with the frame's first bytes), and opened here.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rebeam_proto::{
    encode, ActorRef, ChannelGrant, Command, ErrorKind, Frame, Gating, Request, Response, Route, Target,
};
use rebeam_shm::{ChannelFds, PeerWatch, Receiver, Sender};

use crate::tests::{connected, request_id};

const WAIT: Duration = Duration::from_secs(5);

/// A channel between this test and the client (both in this process): the fds of the client's
/// end, its grant, and the test's own end.
pub(crate) fn channel(id: u64) -> (Vec<OwnedFd>, ChannelGrant, (Sender, Receiver)) {
    channel_watching(id, std::process::id())
}

/// As `channel`, with the client's end watching process `peer` as the other end.
pub(crate) fn channel_watching(id: u64, peer: u32) -> (Vec<OwnedFd>, ChannelGrant, (Sender, Receiver)) {
    let (to_client, from_client) = (ChannelFds::create(4096).unwrap(), ChannelFds::create(4096).unwrap());
    let me = PeerWatch::new(peer).unwrap();
    let fds: Vec<OwnedFd> = from_client
        .fds()
        .into_iter()
        .chain(to_client.fds())
        .chain([me.as_fd()])
        .map(|fd| fd.try_clone_to_owned().unwrap())
        .collect();
    let grant = ChannelGrant { id, peer_pid: peer, send_len: from_client.len as u64, recv_len: to_client.len as u64 };
    let ours = (Sender::open(to_client, me.try_clone().unwrap()).unwrap(), Receiver::open(from_client, me).unwrap());
    (fds, grant, ours)
}

pub(crate) fn send_with_fds(s: &UnixStream, frame: &Frame, fds: &[OwnedFd]) {
    let bytes = encode(frame).unwrap();
    let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
    let n = rebeam_shm::fdpass::send_fds(s, &bytes, &borrowed).unwrap();
    use std::io::Write;
    (&*s).write_all(&bytes[n..]).unwrap();
}

pub(crate) fn route(grant: ChannelGrant, fresh: bool) -> Response {
    let actor = ActorRef { id: 9, name: Some("counter".into()) };
    Response::Route(Ok(Route { actor, gating: Gating::default(), channel: grant, fresh }))
}

/// How many of this process's fds refer to the same file as `fd`, a memfd (each has an inode
/// of its own, unlike eventfds, so tests running alongside do not count).
fn copies_of(fd: &OwnedFd) -> usize {
    use std::os::unix::fs::MetadataExt;
    let inode = |raw: &str| std::fs::metadata(format!("/proc/self/fd/{raw}")).ok().map(|m| (m.dev(), m.ino()));
    let want = inode(&fd.as_raw_fd().to_string());
    assert!(want.is_some());
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter(|e| inode(e.as_ref().unwrap().file_name().to_str().unwrap()) == want)
        .count()
}

#[test]
fn a_route_with_its_fds_gives_an_open_end_that_reaches_the_peer() {
    let (client, mut s) = connected();
    let pending = client.start_request(Request::Route { target: Target::Name("counter".into()) }).unwrap();
    let (req, _) = request_id(&mut s);
    let (fds, grant, (mut tx, mut rx)) = channel(42);
    send_with_fds(&s, &Frame::Response { req, body: route(grant.clone(), true) }, &fds);
    assert_eq!(pending.wait(Some(WAIT)).unwrap(), route(grant, true));
    assert!(client.has_channel(42), "the end was opened");
    // The client now calls over it (see `direct_tests` for the rules of that path).
    let _ = (&mut tx, &mut rx);
}

#[test]
fn a_channel_opened_by_a_peer_is_kept_and_its_command_queued() {
    let (client, s) = connected();
    let (fds, grant, _ours) = channel(7);
    send_with_fds(&s, &Frame::Command(Command::ChannelOpened(grant.clone())), &fds);
    assert_eq!(client.next_command(Some(WAIT)), Some(Command::ChannelOpened(grant)));
    assert!(client.has_channel(7));
}

#[test]
fn a_route_without_its_fds_is_refused() {
    let (client, mut s) = connected();
    let pending = client.start_request(Request::Route { target: Target::Name("counter".into()) }).unwrap();
    let (req, _) = request_id(&mut s);
    let (_fds, grant, _ours) = channel(5);
    send_with_fds(&s, &Frame::Response { req, body: route(grant, true) }, &[]);
    match pending.wait(Some(WAIT)).unwrap() {
        Response::Route(Err(info)) => assert_eq!(info.kind, ErrorKind::BadRequest, "{info:?}"),
        other => panic!("expected a refused route, got {other:?}"),
    }
    assert!(!client.has_channel(5));
}

#[test]
fn fds_with_a_frame_that_names_none_are_closed() {
    let (client, mut s) = connected();
    let pending = client.start_request(Request::BocStats).unwrap();
    let (req, _) = request_id(&mut s);
    let stray = rustix::fs::memfd_create("rebeam-stray", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
    let (fds, grant, _ours) = channel(3);
    // A stray fd, then a route that is not fresh but comes with a full set anyway.
    send_with_fds(&s, &Frame::Response { req, body: Response::Updated(true) }, &[stray.try_clone().unwrap()]);
    assert_eq!(pending.wait(Some(WAIT)).unwrap(), Response::Updated(true));
    let pending = client.start_request(Request::Route { target: Target::Actor(9) }).unwrap();
    let (req, _) = request_id(&mut s);
    let segment = fds[0].try_clone().unwrap();
    send_with_fds(&s, &Frame::Response { req, body: route(grant.clone(), false) }, &fds);
    assert_eq!(pending.wait(Some(WAIT)).unwrap(), route(grant, false));
    drop(fds);
    assert_eq!(copies_of(&stray), 1, "the stray fd was closed");
    assert_eq!(copies_of(&segment), 2, "only this test's own ends hold the segment");
    assert!(!client.has_channel(3));
}
