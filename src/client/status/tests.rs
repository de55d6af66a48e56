use kv_components::bootstrap::formation::form;
use kv_ports::membership::NodeInfo;

use super::*;
use crate::native::{MemberStage, MemberStatus, NodeStatus};

fn info(id: u64) -> NodeInfo {
    let addr = SocketAddr::from(([127, 0, 0, 1], 7000 + id as u16));
    NodeInfo::at(NodeId(id), addr)
}

/// Group 0 = {1, 2, 3}, group 1 = {4, 5, 6}, standby 7.
fn map() -> SlotMap {
    form(&(1..=7).map(info).collect::<Vec<_>>(), 3).unwrap()
}

fn says(id: u64, group: u32, leader: Option<u64>) -> (NodeId, StatusReport) {
    let report = StatusReport::Node(NodeStatus {
        id: NodeId(id),
        epoch: Epoch(1),
        groups: vec![MemberStatus {
            group: GroupId(group),
            leader: leader.map(NodeId),
            decided: 0,
            config: 1,
            stage: MemberStage::Active,
        }],
        suspected: Vec::new(),
    });
    (NodeId(id), report)
}

#[test]
fn the_leader_is_the_one_most_members_report() {
    let answers = [
        says(1, 0, Some(2)),
        says(2, 0, Some(2)),
        says(3, 0, Some(3)),
        says(4, 1, Some(5)),
        says(5, 1, Some(6)),
        says(6, 1, None),
        says(7, 0, None),
    ];
    let status = ClusterStatus::assemble(&map(), &answers.into_iter().collect(), None);
    assert_eq!(status.groups[0].leader, Some(NodeId(2)));
    assert_eq!(
        status.groups[1].leader,
        Some(NodeId(5)),
        "a tie goes to the lower id"
    );
    assert!(status.all_groups_led());
    assert!(status.unreachable.is_empty());
    assert_eq!(status.standbys.len(), 1);
}

#[test]
fn a_leader_that_does_not_answer_or_is_not_a_member_is_no_leader() {
    let answers = [
        says(1, 0, Some(3)),
        says(2, 0, Some(3)),
        says(4, 1, Some(7)),
        says(5, 1, Some(7)),
    ];
    let mut answers: BTreeMap<_, _> = answers.into_iter().collect();
    // Node 6 answers as somebody else: a new process on its address.
    answers.insert(NodeId(6), says(99, 1, Some(4)).1);
    let status = ClusterStatus::assemble(&map(), &answers, None);
    assert_eq!(status.groups[0].leader, None);
    assert_eq!(status.groups[1].leader, None);
    assert!(!status.all_groups_led());
    assert_eq!(
        status.unreachable,
        vec![NodeId(3), NodeId(6), NodeId(7)],
        "the map's order"
    );
    let text = status.render();
    assert!(
        text.contains("group 0  slots 512  leader none (electing)"),
        "{text}"
    );
}

#[test]
fn render_shows_every_part() {
    let mut m = map();
    m.groups[1].members.pop();
    m.standbys.push(NodeId(6));
    let mut answers: BTreeMap<_, _> = [says(1, 0, Some(1)), says(4, 1, Some(4))]
        .into_iter()
        .collect();
    if let Some(StatusReport::Node(s)) = answers.get_mut(&NodeId(1)) {
        s.suspected = vec![NodeId(0xdead_beef_0000_0042)];
        s.epoch = Epoch(0);
    }
    let status = ClusterStatus::assemble(&m, &answers, None);
    let text = status.render();
    let expected = [
        "epoch 1  groups 2  nodes 7  replication 3",
        "group 0  slots 512  leader 127.0.0.1:7001 (n0001)  members 127.0.0.1:7001 (n0001), \
         127.0.0.1:7002 (n0002), 127.0.0.1:7003 (n0003)",
        "group 1  slots 512  leader 127.0.0.1:7004 (n0004)  members 127.0.0.1:7004 (n0004), \
         127.0.0.1:7005 (n0005)  (under-replicated: 2 of 3)",
        "standbys  127.0.0.1:7007 (n0007), 127.0.0.1:7006 (n0006)",
        "suspected  n0042",
        "behind (older map)  127.0.0.1:7001 (n0001)",
    ];
    for line in expected {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(text
        .lines()
        .any(|l| l.starts_with("unreachable  127.0.0.1:7002")));
}

#[test]
fn an_unformed_cluster_says_so() {
    let forming = Forming {
        waiting_for: 3,
        checked_in: 1,
    };
    let status = ClusterStatus::unformed(Some(forming), Vec::new());
    assert!(!status.all_groups_led());
    assert_eq!(
        status.render(),
        "no slot map yet: the coordinator waits for 3 more node(s), 1 checked in\n\
         suspected  none\nunreachable  none"
    );
}
