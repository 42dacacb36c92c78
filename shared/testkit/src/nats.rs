//! A private `nats-server -js` for one test: its own port and store directory, so a
//! test may stop and start it without touching anyone else's server (nor the one a
//! developer's stack uses).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A NATS JetStream server of one test, killed (and its store removed) when dropped.
#[derive(Debug)]
pub struct PrivateNats {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

fn binary() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path
        .or_else(|| {
            ["/usr/sbin/nats-server", "/usr/local/bin/nats-server"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.is_file())
        })
        .expect("these tests need nats-server (Debian: apt-get install nats-server)")
}

impl PrivateNats {
    /// Starts a server on a free loopback port with a fresh store.
    ///
    /// # Panics
    /// When `nats-server` is not installed or does not start.
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("fusion-nats-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("nats store dir");
        let mut nats = Self {
            child: None,
            port,
            dir,
        };
        nats.resume();
        nats
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would); its store stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store; returns once it accepts.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(binary())
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nats-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
