//! Seed 002 start-up, end to end: a coordinator and three participants as real processes,
//! started from configuration files, driven in the seed's RESP dialect over raw sockets. Every
//! process is killed when the test ends, also when it fails (which prints their logs' tails).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kv::client::{Client, ClientConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod cluster_support;

use cluster_support::{free_addrs, print_tail, Proc};

/// How long the system may take to form, elect, or recover from a kill.
const SETTLE: Duration = Duration::from_secs(60);

/// How long one reply may take (the coordinator's clients give up after 5 s).
const REPLY: Duration = Duration::from_secs(15);

const SEED: &str = env!("CARGO_BIN_EXE_kvstore2pcsystem");
const KV: &str = env!("CARGO_BIN_EXE_kv");

/// Starts `program` with `--config_path config`.
fn spawn(program: &str, name: &str, config: &Path, dir: &Path) -> Proc {
    let args = ["--config_path".to_owned(), config.display().to_string()];
    Proc::spawn_program(program, name, &args, &[], dir, Stdio::null())
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kv-seed002-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the test directory");
    dir
}

/// A coordinator and its participants; see the file's documentation.
struct System {
    dir: PathBuf,
    coordinator: SocketAddr,
    participants: Vec<SocketAddr>,
    coordinator_conf: PathBuf,
    coordinator_proc: Option<Proc>,
    participant_procs: Vec<Option<Proc>>,
    dead: Vec<Proc>,
    restarts: usize,
}

impl System {
    /// Writes the files and starts the participants, then (a moment later, so they wait for
    /// it) the coordinator.
    fn start(name: &str, participants: usize) -> System {
        let dir = temp_dir(name);
        let addrs = free_addrs(1 + participants);
        let (coordinator, participants) = (addrs[0], addrs[1..].to_vec());
        let mut text = format!(
            "! Coordinator configuration\n!\n! Mode of process, coordinator OR participant\nmode coordinator\n!\ncoordinator_info {coordinator}\n!\n! Address and port information of all participants.\n"
        );
        for p in &participants {
            text.push_str(&format!("participant_info {p}\n"));
        }
        let coordinator_conf = dir.join("coordinator.conf");
        std::fs::write(&coordinator_conf, text).expect("write the coordinator's file");
        let participant_procs = participants
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let conf = dir.join(format!("participant{}.conf", i + 1));
                let text = format!(
                    "!\n! Participant configuration\n!\nmode participant\n!\nparticipant_info {p}\n!\ncoordinator_info {coordinator}\n"
                );
                std::fs::write(&conf, text).expect("write a participant's file");
                Some(spawn(SEED, &format!("participant{}", i + 1), &conf, &dir))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let coordinator_proc = Some(spawn(SEED, "coordinator", &coordinator_conf, &dir));
        System {
            dir,
            coordinator,
            participants,
            coordinator_conf,
            coordinator_proc,
            participant_procs,
            dead: Vec::new(),
            restarts: 0,
        }
    }

    /// `kill -9` of the coordinator, then a new one from the same file (run as `kv`, so both
    /// binaries are exercised).
    fn restart_coordinator(&mut self) {
        if let Some(mut old) = self.coordinator_proc.take() {
            old.kill();
            self.dead.push(old);
        }
        self.restarts += 1;
        let name = format!("coordinator-{}", self.restarts + 1);
        let fresh = spawn(KV, &name, &self.coordinator_conf, &self.dir);
        self.coordinator_proc = Some(fresh);
    }

    /// `kill -9` of the participant at `addr`.
    fn kill_participant(&mut self, addr: SocketAddr) {
        let i = self
            .participants
            .iter()
            .position(|&p| p == addr)
            .expect("a participant of this system");
        let mut proc = self.participant_procs[i].take().expect("still running");
        proc.kill();
        self.dead.push(proc);
    }

    /// Starts the participant at `addr` again (after [`System::kill_participant`]).
    fn restart_participant(&mut self, addr: SocketAddr) {
        let i = self
            .participants
            .iter()
            .position(|&p| p == addr)
            .expect("a participant of this system");
        assert!(self.participant_procs[i].is_none(), "killed first");
        let conf = self.dir.join(format!("participant{}.conf", i + 1));
        let name = format!("participant{}-again", i + 1);
        self.participant_procs[i] = Some(spawn(SEED, &name, &conf, &self.dir));
    }

    /// The native address of the group's leader, as the participants report it.
    async fn leader(&self) -> SocketAddr {
        let client = Client::connect(self.participants.clone(), ClientConfig::default())
            .expect("addresses given");
        let deadline = Instant::now() + SETTLE;
        loop {
            if let Ok(status) = client.cluster_status().await {
                if let [group] = status.groups.as_slice() {
                    assert_eq!(
                        group.members.len(),
                        self.participants.len(),
                        "one group of all"
                    );
                    let leader = group.members.iter().find(|m| Some(m.id) == group.leader);
                    if let Some(leader) = leader {
                        return leader.addr;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no leader within {SETTLE:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for System {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut procs: Vec<&Proc> = self.coordinator_proc.iter().collect();
            procs.extend(self.participant_procs.iter().flatten());
            procs.extend(self.dead.iter());
            procs.into_iter().for_each(print_tail);
        }
    }
}

/// A RESP array of bulk strings.
fn cmd(words: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", words.len()).into_bytes();
    for w in words {
        out.extend_from_slice(format!("${}\r\n{w}\r\n", w.len()).as_bytes());
    }
    out
}

/// The length of the first complete RESP reply in `buf`, if it holds one.
fn complete(buf: &[u8]) -> Option<usize> {
    let line_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let after = line_end + 2;
    let number = || {
        std::str::from_utf8(&buf[1..line_end])
            .ok()?
            .parse::<i64>()
            .ok()
    };
    match buf.first()? {
        b'+' | b'-' | b':' => Some(after),
        b'$' => match number()? {
            n if n < 0 => Some(after),
            n => {
                let end = after + n as usize + 2;
                (buf.len() >= end).then_some(end)
            }
        },
        b'*' => {
            let mut at = after;
            for _ in 0..number()?.max(0) {
                at += complete(&buf[at..])?;
            }
            Some(at)
        }
        _ => None,
    }
}

/// Sends `request` on a fresh connection and returns the reply, or `None` if there was none
/// in time (the coordinator is down or restarting).
async fn ask(addr: SocketAddr, request: &[u8]) -> Option<Vec<u8>> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        stream.write_all(request).await.ok()?;
        let mut buf = Vec::new();
        loop {
            if let Some(n) = complete(&buf) {
                buf.truncate(n);
                return Some(buf);
            }
            let mut chunk = [0u8; 512];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(REPLY, exchange).await.ok().flatten()
}

/// Sends `request` until the answer is not `-ERROR` (the system is forming, electing or the
/// coordinator restarting), and returns that answer.
async fn settled(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + SETTLE;
    loop {
        match ask(addr, request).await {
            Some(reply) if reply != b"-ERROR\r\n" => return reply,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "no answer but -ERROR to {:?} within {SETTLE:?}",
            String::from_utf8_lossy(request)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_and_three_participants_survive_kills() {
    let mut system = System::start("kills", 3);
    let c = system.coordinator;
    const VALUE: &[u8] = b"*2\r\n$5\r\nhello\r\n$5\r\nworld\r\n";
    const NIL: &[u8] = b"*1\r\n$3\r\nnil\r\n";

    let set = cmd(&["SET", "k", "hello", "world"]);
    assert_eq!(text(&settled(c, &set).await), "+OK\r\n");
    let get = cmd(&["GET", "k"]);
    assert_eq!(text(&settled(c, &get).await), text(VALUE));
    assert_eq!(
        text(&settled(c, &cmd(&["GET", "missing"])).await),
        text(NIL)
    );
    assert_eq!(text(&settled(c, &cmd(&["SET", "d", "x"])).await), "+OK\r\n");
    let del = cmd(&["DEL", "d", "missing"]);
    assert_eq!(text(&settled(c, &del).await), ":1\r\n");
    assert_eq!(text(&settled(c, &del).await), ":0\r\n");
    let lower = ask(c, &cmd(&["set", "k", "v"])).await.expect("an answer");
    assert_eq!(
        text(&lower),
        "-ERROR\r\n",
        "the commands are case sensitive"
    );

    system.restart_coordinator();
    assert_eq!(
        text(&settled(c, &get).await),
        text(VALUE),
        "after a coordinator restart"
    );

    let leader = system.leader().await;
    system.kill_participant(leader);
    let set2 = cmd(&["SET", "k2", "still", "here"]);
    assert_eq!(
        text(&settled(c, &set2).await),
        "+OK\r\n",
        "after the leader died"
    );
    assert_eq!(text(&settled(c, &get).await), text(VALUE));

    // A coordinator restarted while a participant is gone still finds the group.
    system.restart_coordinator();
    let get2 = cmd(&["GET", "k2"]);
    assert_eq!(
        text(&settled(c, &get2).await),
        "*2\r\n$5\r\nstill\r\n$4\r\nhere\r\n"
    );
    assert_eq!(text(&settled(c, &del).await), ":0\r\n");

    // The killed participant comes back: the system keeps serving.
    system.restart_participant(leader);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let set3 = cmd(&["SET", "k3", "back"]);
    assert_eq!(
        text(&settled(c, &set3).await),
        "+OK\r\n",
        "after a participant came back"
    );
    assert_eq!(text(&settled(c, &get).await), text(VALUE));
}

#[test]
fn a_malformed_file_names_its_line_and_fails() {
    let dir = temp_dir("malformed");
    let conf = dir.join("bad.conf");
    std::fs::write(
        &conf,
        "! a comment\nmode coordinator\ncoordinator_info 127.0.0.1:8001\nfoo bar\n",
    )
    .expect("write the file");
    for program in [SEED, KV] {
        let out = Command::new(program)
            .arg("--config_path")
            .arg(&conf)
            .stdin(Stdio::null())
            .output()
            .expect("run");
        assert!(!out.status.success(), "{program} accepted a malformed file");
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("line 4: unknown key \"foo\""),
            "{program}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{program}: {stderr}");
    }
    let missing = dir.join("absent.conf");
    let out = Command::new(SEED)
        .arg("--config_path")
        .arg(&missing)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("absent.conf"));
    let _ = std::fs::remove_dir_all(&dir);
}
