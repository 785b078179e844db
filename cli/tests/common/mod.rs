//! `collector serve` as its own process, for the CLI's test binaries.
// Each test binary that includes this module uses only part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `collector serve` on an embedded store in `DIR/data`; killed when dropped.
pub struct Server {
    pub child: Child,
    /// `host:port` it listens on.
    pub addr: String,
    /// What it printed on stderr up to and including its "listening on" line.
    pub preamble: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `collector serve` on a free port with this JWT secret (no daily archive run, no
/// backend or log level from the caller's environment) and wait until it listens.
pub fn serve(dir: &Path, secret: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_collector"))
        .args(["serve", "--addr", "127.0.0.1:0"])
        .env("COLLECTOR_DATA_DIR", dir.join("data"))
        .env("COLLECTOR_JWT_SECRET", secret)
        .env("COLLECTOR_ARCHIVE_AT", "off")
        .env_remove("COLLECTOR_BACKEND")
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start collector serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut preamble = Vec::new();
    let addr = loop {
        let line = lines.next().expect("serve printed its address").expect("stderr line");
        let addr = line.split("listening on http://").nth(1).and_then(|rest| rest.split_whitespace().next());
        let addr = addr.map(str::to_owned);
        preamble.push(line);
        if let Some(addr) = addr {
            break addr;
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr, preamble }
}
