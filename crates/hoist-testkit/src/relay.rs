//! A TCP relay in front of a daemon's unix socket that can hold one kind of answer: requests
//! whose first line contains a given path get the first bytes of their answer, then nothing
//! until the test opens the gate (the daemon blocks on its full socket meanwhile), then the rest
//! or a cut connection. Everything else passes untouched. Tests use it to put a client into a
//! known state mid-answer: an export held while another process works, a stream cut on cue.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// What a held answer does once the gate opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterGate {
    /// The rest of the answer is passed on as the daemon sends it.
    Pass,
    /// Both connections are cut: the client sees its answer end part-way.
    Cut,
    /// Not an answer but the request is held: the daemon sees it only once the gate opens (so
    /// a test can change the daemon's state between a client's previous request and this one),
    /// and its answer passes untouched.
    Request,
}

/// A running relay (its threads live as long as the test process).
pub struct GatedRelay {
    addr: SocketAddr,
    gate: Arc<Gate>,
}

/// The one-shot gate: the relay says when it holds an answer, the test opens it.
#[derive(Default)]
struct Gate {
    /// (an answer is held, the gate is open)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Gate {
    fn hold(&self) {
        let Ok(mut guard) = self.state.lock() else {
            return;
        };
        guard.0 = true;
        self.changed.notify_all();
        while !guard.1 {
            match self.changed.wait(guard) {
                Ok(g) => guard = g,
                Err(_) => return,
            }
        }
    }
}

impl GatedRelay {
    /// Relay `127.0.0.1:PORT` to `socket`. Answers to requests whose first line contains `path`
    /// stop after `hold_after` bytes until [`GatedRelay::open`], then do as `after` says (with
    /// [`AfterGate::Request`], the request itself waits and `hold_after` is not used).
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub fn start(socket: &Path, path: &'static str, hold_after: u64, after: AfterGate) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let socket = socket.to_path_buf();
        let gate = Arc::new(Gate::default());
        let shared = gate.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let Ok(daemon) = UnixStream::connect(&socket) else {
                    continue;
                };
                let gate = shared.clone();
                std::thread::spawn(move || {
                    relay_one(client, daemon, path, hold_after, after, &gate);
                });
            }
        });
        GatedRelay { addr, gate }
    }

    /// The relay's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `tcp://ADDR`, for `DOCKER_HOST`.
    pub fn docker_host(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// Wait (at most `timeout`) until an answer is held; whether one is.
    pub fn wait_held(&self, timeout: Duration) -> bool {
        let Ok(guard) = self.gate.state.lock() else {
            return false;
        };
        match self
            .gate
            .changed
            .wait_timeout_while(guard, timeout, |(held, _)| !*held)
        {
            Ok((guard, _)) => guard.0,
            Err(_) => false,
        }
    }

    /// Let held answers go on (or be cut, as the relay was started).
    pub fn open(&self) {
        if let Ok(mut guard) = self.gate.state.lock() {
            guard.1 = true;
        }
        self.gate.changed.notify_all();
    }
}

/// One client connection: forward its request head (it decides whether to hold), then both
/// directions.
fn relay_one(
    mut client: TcpStream,
    mut daemon: UnixStream,
    path: &str,
    hold_after: u64,
    after: AfterGate,
    gate: &Gate,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(2).any(|w| w == b"\r\n") {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let line_end = head.windows(2).position(|w| w == b"\r\n").unwrap_or(0);
    let held = String::from_utf8_lossy(&head[..line_end]).contains(path);
    if held && after == AfterGate::Request {
        gate.hold();
    }
    if daemon.write_all(&head).is_err() {
        return;
    }
    let (Ok(mut client_in), Ok(mut daemon_out)) = (client.try_clone(), daemon.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut daemon_out);
        let _ = daemon_out.shutdown(Shutdown::Write);
    });
    if held && after != AfterGate::Request {
        let _ = std::io::copy(&mut (&mut daemon).take(hold_after), &mut client);
        gate.hold();
        if after == AfterGate::Cut {
            let _ = client.shutdown(Shutdown::Both);
            let _ = daemon.shutdown(Shutdown::Both);
            return;
        }
    }
    let _ = std::io::copy(&mut daemon, &mut client);
    let _ = client.shutdown(Shutdown::Both);
}
