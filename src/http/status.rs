//! The JSON of `GET /status`: the slot map as seed 001 partitions, plus what a probe of every
//! node found (leaders, unreachable and suspected nodes), when there was one.

use kv_ports::ids::NodeId;
use kv_ports::membership::{NodeInfo, SlotMap};
use serde_json::{json, Value};

use crate::client::{short_id, ClusterStatus};

/// The status of the cluster described by `map`, as seen from node `me`, with the leaders and
/// reachability a [`ClusterStatus`] probe found (`probe`), or why there is none
/// (`probe_error`). Node ids are decimal strings (they are 64-bit), with a short `name`.
///
/// ```text
/// {"me": "..."|null, "epoch": 3, "formed": true, "replication": 2,
///  "partitions": [{"partition_id": 0, "slots": 512, "leader": "..."|null,
///                  "under_replicated": false, "members": [node, ...]}],
///  "standbys": [node, ...],
///  "probe": {"unreachable": [...], "suspected": [...], "behind": [...]} | null,
///  "probe_error": "..." (only without a probe)}
/// node = {"id": "...", "name": "n1a2b", "native": "ip:port", "resp": "ip:port"|null,
///         "http": "ip:port"|null}
/// ```
pub fn status_json(
    map: &SlotMap,
    me: Option<NodeId>,
    probe: Option<&ClusterStatus>,
    probe_error: Option<&str>,
) -> Value {
    let node = |id: NodeId| match map.node(id) {
        Some(info) => node_json(info),
        None => json!({ "id": id.0.to_string(), "name": short_id(id) }),
    };
    let counts = map.slot_counts();
    let under = map.under_replicated();
    let partitions: Vec<Value> = map
        .groups
        .iter()
        .map(|g| {
            let leader = probe
                .and_then(|p| p.groups.iter().find(|v| v.id == g.id))
                .and_then(|v| v.leader)
                .map(|l| l.0.to_string());
            json!({
                "partition_id": g.id.0,
                "slots": counts.get(&g.id).copied().unwrap_or(0),
                "leader": leader,
                "under_replicated": under.contains(&g.id),
                "members": g.members.iter().map(|&m| node(m)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let ids = |ids: &[NodeId]| ids.iter().map(|n| n.0.to_string()).collect::<Vec<_>>();
    let mut status = json!({
        "me": me.map(|m| m.0.to_string()),
        "epoch": map.epoch.0,
        "formed": map.is_formed(),
        "replication": map.replication,
        "partitions": partitions,
        "standbys": map.standbys.iter().map(|&s| node(s)).collect::<Vec<_>>(),
        "probe": probe.map(|p| json!({
            "unreachable": ids(&p.unreachable),
            "suspected": ids(&p.suspected),
            "behind": ids(&p.behind),
        })),
    });
    if let (None, Some(error), Value::Object(fields)) = (probe, probe_error, &mut status) {
        fields.insert("probe_error".into(), error.into());
    }
    status
}

fn node_json(info: &NodeInfo) -> Value {
    json!({
        "id": info.id.0.to_string(),
        "name": short_id(info.id),
        "native": info.client.to_string(),
        "resp": info.resp.map(|a| a.to_string()),
        "http": info.http.map(|a| a.to_string()),
    })
}
