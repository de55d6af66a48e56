//! Seed 001's `update_view` with real processes, the way the seed's harness drives it: four
//! nodes with `K=2`, keys written, then a fifth node started with a `VIEW` of five and added
//! through another node (it becomes a proxy), a sixth likewise (the two form a third
//! partition and slots move to it), then a partition member removed (back to two partitions).
//! After every answer, every node agrees on the partitions and their members, and every key
//! reads back with its value through every node.

mod cluster_support;
mod seed001_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use futures::StreamExt;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use cluster_support::Seed001Cluster;
use seed001_support::{call, members};

/// Keys written before the view changes.
const KEYS: usize = 300;
/// Requests in flight at once.
const CONCURRENCY: usize = 8;
/// The seed's `partition_id` of a proxy.
const PROXY: i64 = -1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_are_added_and_removed_with_update_view() {
    let mut cluster = Seed001Cluster::start("seed001-view-change", 4, 2);
    cluster.wait_until_led().await;
    let start = agreed_partitions(&cluster.view).await;
    assert_eq!(start.keys().copied().collect::<Vec<_>>(), [0, 1]);
    let keys = write_keys(&cluster.view).await;
    assert_eq!(partitions_of(&keys), [0, 1]);

    // A fifth node: a proxy (K=2 needs a second new node for a partition).
    let fifth = cluster.start_node();
    let added = add(cluster.view[1], fifth).await;
    assert_eq!(
        added,
        json!({"result": "success", "partition_id": PROXY, "number_of_partitions": 2})
    );
    assert_eq!(agreed_partitions(&cluster.view).await, start);
    assert_eq!(partition_id(fifth).await, PROXY);
    read_back(&cluster.view, &keys).await;

    // A sixth: with the fifth, a third partition, which takes a third of the slots.
    let sixth = cluster.start_node();
    let added = add(cluster.view[2], sixth).await;
    assert_eq!(
        added,
        json!({"result": "success", "partition_id": 2, "number_of_partitions": 3})
    );
    let three = agreed_partitions(&cluster.view).await;
    assert_eq!(three.keys().copied().collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(three[&2], [fifth, sixth]);
    assert_eq!(
        (three[&0].clone(), three[&1].clone()),
        (start[&0].clone(), start[&1].clone())
    );
    let moved = read_back(&cluster.view, &keys).await;
    let on_new = moved.iter().filter(|&&p| p == 2).count();
    assert!(
        on_new * 5 >= KEYS && on_new * 2 <= KEYS,
        "{on_new} of {KEYS} keys on the new partition, expected about a third"
    );

    // Remove a member of partition 1: five nodes make two partitions and a proxy.
    let leaving = cluster.view[2];
    let removed = remove(cluster.view[0], leaving).await;
    assert_eq!(
        removed,
        json!({"result": "success", "number_of_partitions": 2})
    );
    cluster.forget(leaving);
    let two = agreed_partitions(&cluster.view).await;
    assert_eq!(two.len(), 2, "{two:?}");
    assert!(two.values().all(|m| m.len() == 2 && !m.contains(&leaving)));
    let mut proxies = Vec::new();
    for &node in &cluster.view {
        if partition_id(node).await == PROXY {
            proxies.push(node);
        }
    }
    assert_eq!(proxies.len(), 1, "one proxy left: {proxies:?}");
    let after = read_back(&cluster.view, &keys).await;
    let ids: Vec<i64> = two.keys().copied().collect();
    assert!(
        after.iter().all(|p| ids.contains(p)),
        "keys on {ids:?} only"
    );
}

/// `update_view?type=add` of `node`, asked of `via`; the JSON answer.
async fn add(via: SocketAddr, node: SocketAddr) -> Value {
    let form = format!("ip_port={node}");
    let got = call(via, "PUT", "/kv-store/update_view?type=add", Some(&form)).await;
    assert_eq!(got.status, 200, "add {node} via {via}: {}", got.body);
    got.body
}

/// `update_view?type=remove` of `node`, asked of `via`; the JSON answer.
async fn remove(via: SocketAddr, node: SocketAddr) -> Value {
    let form = format!("ip_port={node}");
    let got = call(via, "PUT", "/kv-store/update_view?type=remove", Some(&form)).await;
    assert_eq!(got.status, 200, "remove {node} via {via}: {}", got.body);
    got.body
}

/// The partition `node` says it belongs to.
async fn partition_id(node: SocketAddr) -> i64 {
    let got = call(node, "GET", "/kv-store/get_partition_id", None).await;
    assert_eq!(got.status, 200, "{node}: {}", got.body);
    got.body["partition_id"].as_i64().expect("a partition id")
}

/// The partitions and their members as every node of `view` answers them, checked equal.
async fn agreed_partitions(view: &[SocketAddr]) -> BTreeMap<i64, Vec<SocketAddr>> {
    let mut agreed: Option<BTreeMap<i64, Vec<SocketAddr>>> = None;
    for &node in view {
        let all = call(node, "GET", "/kv-store/get_all_partition_ids", None).await;
        assert_eq!(all.status, 200, "{node}: {}", all.body);
        let ids: Vec<i64> =
            serde_json::from_value(all.body["partition_id_list"].clone()).expect("a list of ids");
        let mut partitions = BTreeMap::new();
        for id in ids {
            let form = format!("partition_id={id}");
            let got = call(node, "GET", "/kv-store/get_partition_members", Some(&form)).await;
            assert_eq!(got.status, 200, "{node}, partition {id}: {}", got.body);
            let addrs: Vec<SocketAddr> =
                serde_json::from_value(got.body["partition_members"].clone())
                    .expect("a list of ip:port");
            assert_eq!(got.body, members(&addrs));
            partitions.insert(id, addrs);
        }
        match &agreed {
            None => agreed = Some(partitions),
            Some(first) => assert_eq!(&partitions, first, "{node} disagrees with {}", view[0]),
        }
    }
    agreed.expect("a view of at least one node")
}

/// A key written: its value.
struct Written {
    key: String,
    value: String,
}

/// PUTs [`KEYS`] random keys, each through a random node.
async fn write_keys(view: &[SocketAddr]) -> Vec<(Written, i64)> {
    let mut rng = SmallRng::seed_from_u64(0x5eed_0011);
    let plan: Vec<(Written, SocketAddr)> = (0..KEYS)
        .map(|i| {
            let key = format!("key-{:016x}", rng.gen::<u64>());
            let value = format!("value-{i}-{:08x}", rng.gen::<u32>());
            (Written { key, value }, view[rng.gen_range(0..view.len())])
        })
        .collect();
    futures::stream::iter(plan)
        .map(|(w, node)| async move {
            let form = format!("val={}&causal_payload=", w.value);
            let put = call(node, "PUT", &format!("/kv-store/{}", w.key), Some(&form)).await;
            assert_eq!(put.status, 200, "PUT {} via {node}: {}", w.key, put.body);
            let partition = put.body["partition_id"].as_i64().expect("a partition id");
            (w, partition)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}

/// The partitions keys were written to, sorted and deduplicated.
fn partitions_of(keys: &[(Written, i64)]) -> Vec<i64> {
    let mut ids: Vec<i64> = keys.iter().map(|(_, p)| *p).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// GETs every key through every node of `view`: each answers the value written, and all
/// agree on the key's partition; returns each key's partition.
async fn read_back(view: &[SocketAddr], keys: &[(Written, i64)]) -> Vec<i64> {
    futures::stream::iter(keys)
        .map(|(w, _)| async move {
            let mut partition = None;
            for &node in view {
                let get = call(node, "GET", &format!("/kv-store/{}", w.key), None).await;
                assert_eq!(get.status, 200, "GET {} via {node}: {}", w.key, get.body);
                assert_eq!(get.body["value"], w.value.as_str(), "{} via {node}", w.key);
                let p = get.body["partition_id"].as_i64().expect("a partition id");
                assert_eq!(*partition.get_or_insert(p), p, "{} via {node}", w.key);
            }
            partition.expect("at least one node")
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await
}
