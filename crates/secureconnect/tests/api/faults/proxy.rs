//! A TCP fault proxy: listens on a free port of 127.0.0.1 and forwards every connection to a
//! target, in a mode that can be switched while it runs.
//!
//! - `Pass`: bytes flow unchanged.
//! - `Delay(d)`: every chunk is forwarded `d` after it arrived, in both directions (a round trip
//!   costs `2 d` more; throughput is not limited).
//! - `Stall`: connections are accepted, nothing is read or forwarded; what was already read is
//!   held. Back in `Pass`, everything held flows on (a network that froze, then thawed).
//! - `Reset`: every open connection is reset (RST) now, and every new one as soon as it is
//!   accepted.
//! - `Refuse`: the listener is closed (connecting fails with ECONNREFUSED) and every open
//!   connection is reset: a stopped server. Leaving `Refuse` listens on the same port again.
//!
//! One task per connection, no task per chunk. Dropping the proxy closes everything.

use std::{
    collections::VecDeque,
    net::SocketAddr,
    time::{Duration, Instant},
};
use tokio::{
    io::AsyncWriteExt,
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Pass,
    Delay(Duration),
    Stall,
    Reset,
    Refuse,
}

impl Mode {
    fn delay(self) -> Duration {
        match self {
            Mode::Delay(d) => d,
            _ => Duration::ZERO,
        }
    }
    fn kills(self) -> bool {
        matches!(self, Mode::Reset | Mode::Refuse)
    }
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `target`, starting in `Pass`.
    pub async fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (mode, rx) = watch::channel(Mode::Pass);
        let task = tokio::spawn(accept_loop(listener, addr, target, rx));
        FaultProxy { addr, mode, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    pub fn mode(&self) -> Mode {
        *self.mode.borrow()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    addr: SocketAddr,
    target: SocketAddr,
    mut mode: watch::Receiver<Mode>,
) {
    // Owned here: aborting this task aborts every connection.
    let mut conns = tokio::task::JoinSet::new();
    let mut listener = Some(listener);
    loop {
        while conns.try_join_next().is_some() {}
        let now = *mode.borrow_and_update();
        if now == Mode::Refuse {
            listener = None;
            if mode.changed().await.is_err() {
                return;
            }
            continue;
        }
        let l = match &listener {
            Some(l) => l,
            None => match TcpListener::bind(addr).await {
                Ok(l) => listener.insert(l),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        tokio::select! {
            r = l.accept() => match r {
                Ok((client, _)) => {
                    let _ = client.set_nodelay(true);
                    conns.spawn(connection(client, target, mode.clone()));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            r = mode.changed() => if r.is_err() { return },
        }
    }
}

/// Resets a socket: SO_LINGER 0, then close, so the peer sees RST.
fn reset(s: TcpStream) {
    let _ = s.set_zero_linger();
    drop(s);
}

/// Waits until the mode is neither `Stall` nor killing; false when the connection must die.
async fn wait_flowing(mode: &mut watch::Receiver<Mode>) -> bool {
    loop {
        let m = *mode.borrow_and_update();
        if m.kills() {
            return false;
        }
        if m != Mode::Stall {
            return true;
        }
        if mode.changed().await.is_err() {
            return false;
        }
    }
}

const CHUNK: usize = 16 * 1024;
const MAX_QUEUED: usize = 64;

/// One direction of a connection: chunks read and not yet written, with their due times.
#[derive(Default)]
struct Lane {
    queue: VecDeque<(Instant, Vec<u8>)>,
    /// Bytes of the front chunk already written.
    written: usize,
    eof: bool,
    shut: bool,
}

impl Lane {
    fn due(&self) -> Option<Instant> {
        self.queue.front().map(|(t, _)| *t)
    }
    fn done(&self) -> bool {
        self.eof && self.queue.is_empty()
    }
}

enum Event {
    ModeChanged,
    Readable(usize),
    Writable(usize),
    Due,
    Closed,
}

async fn connection(client: TcpStream, target: SocketAddr, mut mode: watch::Receiver<Mode>) {
    if *mode.borrow() == Mode::Reset {
        return reset(client);
    }
    // Stalled: accepted, but not even connected onwards until the stall ends.
    if !wait_flowing(&mut mode).await {
        return reset(client);
    }
    let Ok(upstream) = TcpStream::connect(target).await else {
        return reset(client);
    };
    let _ = upstream.set_nodelay(true);
    let mut socks = [client, upstream];
    // lanes[0]: client → upstream (read from socks[0], written to socks[1]); lanes[1]: back.
    let mut lanes = [Lane::default(), Lane::default()];
    let mut buf = vec![0u8; CHUNK];
    loop {
        let m = *mode.borrow_and_update();
        if m.kills() {
            let [a, b] = socks;
            reset(a);
            reset(b);
            return;
        }
        if lanes[0].done() && lanes[1].done() {
            return;
        }
        let flowing = m != Mode::Stall;
        let now = Instant::now();
        let due_now = |l: &Lane| l.due().is_some_and(|t| t <= now);
        let next_due = lanes
            .iter()
            .filter_map(Lane::due)
            .filter(|t| *t > now)
            .min();
        let ev = {
            let (s0, s1) = (&socks[0], &socks[1]);
            let can_read = |i: usize| !lanes[i].eof && lanes[i].queue.len() < MAX_QUEUED;
            tokio::select! {
                r = mode.changed() => if r.is_err() { Event::Closed } else { Event::ModeChanged },
                r = s0.readable(), if flowing && can_read(0) => if r.is_ok() { Event::Readable(0) } else { Event::Closed },
                r = s1.readable(), if flowing && can_read(1) => if r.is_ok() { Event::Readable(1) } else { Event::Closed },
                r = s1.writable(), if flowing && due_now(&lanes[0]) => if r.is_ok() { Event::Writable(0) } else { Event::Closed },
                r = s0.writable(), if flowing && due_now(&lanes[1]) => if r.is_ok() { Event::Writable(1) } else { Event::Closed },
                _ = sleep_until(next_due), if flowing && next_due.is_some() => Event::Due,
            }
        };
        match ev {
            Event::ModeChanged | Event::Due => {}
            Event::Closed => return,
            Event::Readable(i) => match socks[i].try_read(&mut buf) {
                Ok(0) => lanes[i].eof = true,
                Ok(n) => {
                    let due = Instant::now() + m.delay();
                    lanes[i].queue.push_back((due, buf[..n].to_vec()));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            },
            Event::Writable(i) => {
                let lane = &mut lanes[i];
                let Some((_, chunk)) = lane.queue.front() else {
                    continue;
                };
                match socks[1 - i].try_write(&chunk[lane.written..]) {
                    Ok(n) => {
                        lane.written += n;
                        if lane.written == chunk.len() {
                            lane.queue.pop_front();
                            lane.written = 0;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        }
        // A direction that ended and drained passes its FIN on.
        for i in 0..2 {
            if lanes[i].done() && !lanes[i].shut {
                lanes[i].shut = true;
                let _ = socks[1 - i].shutdown().await;
            }
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    if let Some(t) = t {
        tokio::time::sleep_until(t.into()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An echo server on a free port.
    async fn echo() -> (SocketAddr, JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    loop {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                if s.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        (addr, task)
    }

    async fn roundtrip(
        s: &mut TcpStream,
        msg: &[u8],
        within: Duration,
    ) -> std::io::Result<Vec<u8>> {
        s.write_all(msg).await?;
        let mut got = vec![0u8; msg.len()];
        match tokio::time::timeout(within, s.read_exact(&mut got)).await {
            Ok(r) => r.map(|_| got),
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    #[tokio::test]
    async fn pass_forwards_both_ways_and_passes_eof() {
        let (target, _echo) = echo().await;
        let p = FaultProxy::start(target).await;
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let got = roundtrip(&mut s, &big, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got, big);
        s.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut rest))
            .await
            .expect("EOF passed through")
            .unwrap();
        assert_eq!(n, 0);
    }

    #[tokio::test]
    async fn delay_adds_latency_per_direction() {
        let (target, _echo) = echo().await;
        let p = FaultProxy::start(target).await;
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        let t = Instant::now();
        roundtrip(&mut s, b"fast", Duration::from_secs(2))
            .await
            .unwrap();
        assert!(t.elapsed() < Duration::from_millis(100));
        p.set(Mode::Delay(Duration::from_millis(150)));
        let t = Instant::now();
        roundtrip(&mut s, b"slow", Duration::from_secs(2))
            .await
            .unwrap();
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < Duration::from_millis(900),
            "{took:?}"
        );
        // Latency, not a throughput limit: ten pipelined chunks still cost one round trip.
        let t = Instant::now();
        for _ in 0..10 {
            s.write_all(b"x").await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut got = [0u8; 10];
        s.read_exact(&mut got).await.unwrap();
        assert!(
            t.elapsed() < Duration::from_millis(700),
            "{:?}",
            t.elapsed()
        );
    }

    #[tokio::test]
    async fn stall_holds_bytes_and_releases_them() {
        let (target, _echo) = echo().await;
        let p = FaultProxy::start(target).await;
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        roundtrip(&mut s, b"before", Duration::from_secs(2))
            .await
            .unwrap();
        p.set(Mode::Stall);
        assert_eq!(p.mode(), Mode::Stall);
        let err = roundtrip(&mut s, b"held", Duration::from_millis(300)).await;
        assert_eq!(err.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
        // A new connection is accepted but goes nowhere.
        let mut fresh = TcpStream::connect(p.addr)
            .await
            .expect("accepted while stalled");
        fresh.write_all(b"new").await.unwrap();
        p.set(Mode::Pass);
        let mut got = [0u8; 4];
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got, b"held", "held bytes flow on after the stall");
        let mut got = [0u8; 3];
        tokio::time::timeout(Duration::from_secs(2), fresh.read_exact(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&got, b"new");
    }

    #[tokio::test]
    async fn reset_kills_open_and_new_connections() {
        let (target, _echo) = echo().await;
        let p = FaultProxy::start(target).await;
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        roundtrip(&mut s, b"hi", Duration::from_secs(2))
            .await
            .unwrap();
        p.set(Mode::Reset);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            roundtrip(&mut s, b"gone", Duration::from_secs(2))
                .await
                .is_err()
        );
        // New connections are accepted and reset at once.
        let mut n = TcpStream::connect(p.addr).await.unwrap();
        let r = roundtrip(&mut n, b"x", Duration::from_secs(2)).await;
        assert!(r.is_err() && r.unwrap_err().kind() != std::io::ErrorKind::TimedOut);
        p.set(Mode::Pass);
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        roundtrip(&mut s, b"back", Duration::from_secs(2))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn refuse_stops_listening_and_listens_again_on_the_same_port() {
        let (target, _echo) = echo().await;
        let p = FaultProxy::start(target).await;
        let mut s = TcpStream::connect(p.addr).await.unwrap();
        roundtrip(&mut s, b"hi", Duration::from_secs(2))
            .await
            .unwrap();
        p.set(Mode::Refuse);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            roundtrip(&mut s, b"gone", Duration::from_secs(2))
                .await
                .is_err()
        );
        let e = TcpStream::connect(p.addr).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        p.set(Mode::Pass);
        let mut back = None;
        for _ in 0..50 {
            if let Ok(s) = TcpStream::connect(p.addr).await {
                back = Some(s);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut s = back.expect("listening again");
        roundtrip(&mut s, b"back", Duration::from_secs(2))
            .await
            .unwrap();
    }
}
