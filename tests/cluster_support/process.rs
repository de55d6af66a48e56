//! Child processes of a test: started with their standard error in a log file, killed when
//! dropped, their logs' tails printed when a test fails; and free loopback ports to give them.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};

/// One child process, killed (SIGKILL) if still running when dropped.
pub struct Proc {
    /// What the test calls it (its log file is named after it).
    pub name: String,
    /// Where its standard error goes.
    pub log: PathBuf,
    child: Child,
}

impl Proc {
    /// Starts `kv` with `args`, logging to `dir/<name>.log`.
    pub fn spawn(name: &str, args: &[String], dir: &Path) -> Proc {
        Proc::spawn_env(name, args, &[], dir)
    }

    /// Like [`Proc::spawn`], with these environment variables.
    pub fn spawn_env(name: &str, args: &[String], env: &[(&str, String)], dir: &Path) -> Proc {
        Proc::spawn_with(name, args, env, dir, Stdio::null())
    }

    /// Like [`Proc::spawn`], standard output going to `stdout`.
    pub fn spawn_to(name: &str, args: &[String], dir: &Path, stdout: Stdio) -> Proc {
        Proc::spawn_with(name, args, &[], dir, stdout)
    }

    /// Like [`Proc::spawn`], with these environment variables and standard output.
    pub fn spawn_with(
        name: &str,
        args: &[String],
        env: &[(&str, String)],
        dir: &Path,
        stdout: Stdio,
    ) -> Proc {
        Proc::spawn_program(env!("CARGO_BIN_EXE_kv"), name, args, env, dir, stdout)
    }

    /// Starts `program` (any of the crate's binaries) with `args` and `env`, its standard
    /// error going to `dir/<name>.log`, its standard input closed.
    pub fn spawn_program(
        program: &str,
        name: &str,
        args: &[String],
        env: &[(&str, String)],
        dir: &Path,
        stdout: Stdio,
    ) -> Proc {
        let log = dir.join(format!("{}.log", name.replace(' ', "-")));
        let file = File::create(&log).expect("create log file");
        let child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(file)
            .spawn()
            .expect("start kv");
        Proc {
            name: name.to_owned(),
            log,
            child,
        }
    }

    /// Its exit status if it has exited by itself (reaping it), else `None`.
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, then reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The next port to probe. Ports are taken below Linux's ephemeral range (32768 and up), so
/// outgoing sockets and anything bound with port 0 can never take one a test has planned for
/// a node; a per-process start spreads concurrent test processes apart.
static NEXT_PORT: AtomicU16 = AtomicU16::new(0);

const FIRST_PORT: u16 = 12_000;
const LAST_PORT: u16 = 32_000;

/// `n` loopback addresses whose ports were free when probed (a port another program grabs in
/// between shows as a bind error in that process's log).
pub fn free_addrs(n: usize) -> Vec<SocketAddr> {
    let span = LAST_PORT - FIRST_PORT;
    let start = FIRST_PORT + (std::process::id() % u32::from(span)) as u16;
    let _ = NEXT_PORT.compare_exchange(0, start, Ordering::SeqCst, Ordering::SeqCst);
    let mut found = Vec::with_capacity(n);
    for _ in 0..span {
        let port = NEXT_PORT.fetch_add(1, Ordering::SeqCst);
        let port = FIRST_PORT + (port - FIRST_PORT) % span;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if TcpListener::bind(addr).is_ok() {
            found.push(addr);
            if found.len() == n {
                return found;
            }
        }
    }
    panic!("fewer than {n} free ports between {FIRST_PORT} and {LAST_PORT}");
}

/// Prints the last 30 lines of `p`'s log to standard error.
pub fn print_tail(p: &Proc) {
    let text = std::fs::read_to_string(&p.log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(30).collect();
    eprintln!("---- {} ({}) last lines ----", p.name, p.log.display());
    for line in tail.into_iter().rev() {
        eprintln!("{line}");
    }
}
