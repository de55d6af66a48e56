//! A group holding well over the perfect link's 16 MiB frame limit still gets new members:
//! its state at the StopSign travels in chunks. A real cluster (one group of three, two
//! standbys) holds 40 values of 1 MiB; two of its members are killed one after the other and
//! each is replaced by a standby, which joins by snapshot; then the last original member is
//! killed too, so only the two new members (a majority) hold the data, and every value is
//! read back through them.

mod cluster_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kv::coordinator::fetch_status;
use kv::native::{MemberStage, StatusReport};
use kv::service::KvService;
use kv_ports::kv::{KvOp, KvResult};

use cluster_support::Cluster;

/// Values written: 40 MiB in all, two and a half times the link's frame limit.
const VALUES: usize = 40;
const VALUE_LEN: usize = 1 << 20;

/// How long one replacement (failure detection, grace, seal, transfer) may take.
const REPLACE_TIMEOUT: Duration = Duration::from_secs(60);

fn key(i: usize) -> Bytes {
    Bytes::from(format!("big-{i}"))
}

/// A distinct 1 MiB value per key.
fn value(i: usize) -> Bytes {
    let mut v = vec![(i % 251) as u8; VALUE_LEN];
    v[..8].copy_from_slice(&(i as u64).to_le_bytes());
    Bytes::from(v)
}

/// The stage and configuration of the group member at `addr`, if it runs one.
async fn member_stage(addr: SocketAddr) -> Option<(MemberStage, u32)> {
    match fetch_status(addr, Duration::from_secs(2)).await {
        Ok(StatusReport::Node(s)) => s.groups.first().map(|g| (g.stage, g.config)),
        _ => None,
    }
}

/// Kills `victim` and waits until one of `standbys` runs the group; returns it, with the
/// time from the kill and the time it spent joining (from its first `Joining` status to
/// `Active`: the seal and the snapshot transfer).
async fn replace(
    cluster: &mut Cluster,
    victim: SocketAddr,
    standbys: &[SocketAddr],
) -> (SocketAddr, Duration, Duration) {
    let killed = Instant::now();
    cluster.kill(victim);
    let mut joining_since: Option<Instant> = None;
    loop {
        for &s in standbys {
            match member_stage(s).await {
                Some((MemberStage::Joining, _)) => {
                    joining_since.get_or_insert_with(Instant::now);
                }
                Some((MemberStage::Active, _)) => {
                    let joined = joining_since.map_or(Duration::ZERO, |t| t.elapsed());
                    return (s, killed.elapsed(), joined);
                }
                _ => {}
            }
        }
        assert!(
            killed.elapsed() < REPLACE_TIMEOUT,
            "no standby took {victim}'s place within {REPLACE_TIMEOUT:?}; logs in {}",
            cluster.log_dir().display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_holding_40_mib_gets_new_members_by_chunked_snapshot() {
    let mut cluster = Cluster::start_with("large-state", 5, 3, &["--grace-ms", "1000"]);
    let status = cluster.wait_until_led().await;
    assert_eq!(
        (status.groups.len(), status.standbys.len()),
        (1, 2),
        "{}",
        status.render()
    );
    let members: Vec<SocketAddr> = status.groups[0].members.iter().map(|n| n.addr).collect();
    let mut standbys: Vec<SocketAddr> = status.standbys.iter().map(|n| n.addr).collect();

    let client = cluster.client();
    let started = Instant::now();
    for i in 0..VALUES {
        let put = KvOp::Put {
            key: key(i),
            value: value(i),
        };
        assert_eq!(client.execute(put).await, Ok(KvResult::Written), "put {i}");
    }
    eprintln!(
        "wrote {VALUES} values of {VALUE_LEN} bytes in {:?}",
        started.elapsed()
    );

    // Two members fail in turn; each is replaced by a standby that joins by snapshot.
    for victim in &members[..2] {
        let (new, since_kill, joining) = replace(&mut cluster, *victim, &standbys).await;
        eprintln!(
            "{new} replaced {victim}: {since_kill:?} after the kill, {joining:?} joining \
             (seal and {} MiB snapshot transfer)",
            (VALUES * VALUE_LEN) >> 20
        );
        standbys.retain(|s| *s != new);
    }

    // The last original member goes too: only the two new members hold the state now.
    cluster.kill(members[2]);
    let client = cluster.client();
    let started = Instant::now();
    for i in 0..VALUES {
        let got = client.execute(KvOp::Get { key: key(i) }).await;
        assert!(
            got == Ok(KvResult::Value(Some(value(i)))),
            "value {i} read back through the new members: {:?}",
            got.map(|r| match r {
                KvResult::Value(v) => format!("value of {:?} bytes", v.map(|b| b.len())),
                other => format!("{other:?}"),
            })
        );
    }
    eprintln!(
        "read the {VALUES} values back through the new members in {:?}",
        started.elapsed()
    );
}
