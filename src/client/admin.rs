//! Operators' requests through the client library: find the coordinator among the seeds and
//! ask it ([`Client::admin`]); turn what a user typed into a [`NodeRef`] ([`resolve_node`]).

use std::net::SocketAddr;
use std::time::Duration;

use kv_ports::ids::NodeId;
use kv_ports::membership::SlotMap;

use super::probe::ask_status;
use super::Client;
use crate::coordinator::{self, AskError};
use crate::native::{AdminAnswer, AdminRequest, NodeRef, StatusReport};

/// How long an admin request may wait for its answer: a removal waits for the
/// reconfiguration it causes (members change, slots move), which takes seconds normally and
/// longer while a group elects a leader.
pub const ADMIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Why an admin request got no answer from the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No seed answered (neither the coordinator nor a data node, which would relay).
    #[error("no coordinator or data node answered at {0}")]
    NoCoordinator(String),
    /// Asking the coordinator failed.
    #[error(transparent)]
    Ask(#[from] AskError),
}

impl Client {
    /// Sends an operator's request to the coordinator (the seed that answers a status
    /// question as one; failing that, a data node among the seeds, which relays it) and waits
    /// up to [`ADMIN_TIMEOUT`] for its answer.
    pub async fn admin(&self, request: AdminRequest) -> Result<AdminAnswer, AdminError> {
        let coordinator = self.admin_address().await?;
        let answer = coordinator::admin(coordinator, request, ADMIN_TIMEOUT).await?;
        if let AdminAnswer::Done(map) = &answer {
            self.shared.offer(map);
        }
        Ok(answer)
    }

    /// Where to send an admin request: the first seed that is the coordinator, else the
    /// first seed that answers as a data node (it relays to its coordinator).
    pub async fn admin_address(&self) -> Result<SocketAddr, AdminError> {
        let reports = ask_status(&self.seeds, self.config.status_timeout).await;
        let answered: Vec<(SocketAddr, StatusReport)> = self
            .seeds
            .iter()
            .zip(reports)
            .filter_map(|(addr, r)| r.map(|r| (*addr, r)))
            .collect();
        let coordinator = answered
            .iter()
            .find(|(_, r)| matches!(r, StatusReport::Coordinator(_)));
        coordinator
            .or(answered.first())
            .map(|(addr, _)| *addr)
            .ok_or_else(|| {
                let seeds: Vec<String> = self.seeds.iter().map(SocketAddr::to_string).collect();
                AdminError::NoCoordinator(seeds.join(", "))
            })
    }
}

/// What a user typed to name a node: an address it listens on, its id (`n12345…` as logs
/// print it, or the bare number), or the short id `status` shows (`n1a2b`, the low 16 bits in
/// hex), looked up in `map`. An id `map` does not name is passed on as it is (the coordinator
/// knows best); a short id must match exactly one node of `map`.
pub fn resolve_node(text: &str, map: Option<&SlotMap>) -> Result<NodeRef, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(NodeRef::Addr(addr));
    }
    let bare = text
        .strip_prefix('n')
        .or_else(|| text.strip_prefix('N'))
        .unwrap_or(text);
    let matches: Vec<NodeId> = map
        .map(|m| {
            m.nodes
                .iter()
                .map(|n| n.id)
                .filter(|id| {
                    id.0.to_string() == bare
                        || format!("{:04x}", id.0 & 0xffff).eq_ignore_ascii_case(bare)
                })
                .collect()
        })
        .unwrap_or_default();
    match matches.as_slice() {
        [id] => Ok(NodeRef::Id(*id)),
        [] => bare
            .parse::<u64>()
            .map(|v| NodeRef::Id(NodeId(v)))
            .map_err(|_| {
                format!(
                    "no node '{text}' in the map (name a node by its address IP:PORT, its id, \
                     or the short id status shows)"
                )
            }),
        several => Err(format!(
            "'{text}' matches {} nodes; give the address or the full id",
            several.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_components::bootstrap::formation::form;
    use kv_ports::membership::NodeInfo;

    #[test]
    fn nodes_are_named_by_address_id_or_short_id() {
        let ids = [0x1234_0000_abcd_u64, 0x9999_0000_0042, 0x7777_0001_0042];
        let nodes: Vec<NodeInfo> = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| NodeInfo::at(NodeId(id), ([127, 0, 0, 1], 7001 + i as u16).into()))
            .collect();
        let map = form(&nodes, 1).unwrap();
        let m = Some(&map);
        let addr: SocketAddr = "127.0.0.1:7002".parse().unwrap();
        assert_eq!(resolve_node("127.0.0.1:7002", m), Ok(NodeRef::Addr(addr)));
        assert_eq!(resolve_node("nABCD", m), Ok(NodeRef::Id(NodeId(ids[0]))));
        assert_eq!(
            resolve_node(&format!("n{}", ids[1]), m),
            Ok(NodeRef::Id(NodeId(ids[1])))
        );
        assert_eq!(resolve_node("77", None), Ok(NodeRef::Id(NodeId(77))));
        assert!(resolve_node("n0042", m)
            .unwrap_err()
            .contains("matches 2 nodes"));
        assert!(resolve_node("frob", m)
            .unwrap_err()
            .contains("no node 'frob' in the map"));
    }
}
