//! Operators' requests waiting for the cluster to change: `Remove` until a map without the
//! node is published (or the planner refuses), `AwaitNode` until a published map names the
//! node and no plan is under way. Any number may wait at once, each answered on the
//! connection it came on.

use std::fmt::Write as _;

use kv_ports::ids::NodeId;
use kv_ports::membership::SlotMap;

use super::conn::ConnId;
use crate::native::{AdminAnswer, NodeRef};

/// One answer to write: on this connection, this frame.
pub(super) type Answer = (ConnId, AdminAnswer);

/// What a waiting request waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    /// A map without this node.
    Remove(NodeId),
    /// A settled map naming a node that matches.
    Await(NodeRef),
}

/// The waiting requests.
#[derive(Debug, Default)]
pub(super) struct Waiters {
    waiting: Vec<(ConnId, Kind)>,
}

impl Waiters {
    /// Whether someone already waits for `node`'s removal (so it is not asked for twice).
    pub fn removing(&self, node: NodeId) -> bool {
        self.waiting.iter().any(|(_, k)| *k == Kind::Remove(node))
    }

    /// `conn` waits for `node` to be removed.
    pub fn add_remove(&mut self, conn: ConnId, node: NodeId) {
        self.waiting.push((conn, Kind::Remove(node)));
    }

    /// `conn` waits for a node matching `node` to be placed.
    pub fn add_await(&mut self, conn: ConnId, node: NodeRef) {
        self.waiting.push((conn, Kind::Await(node)));
    }

    /// `conn` closed: nobody listens for its answers.
    pub fn closed(&mut self, conn: ConnId) {
        self.waiting.retain(|(c, _)| *c != conn);
    }

    /// How many requests wait.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// `map` was published: removals it completes are answered.
    pub fn published(&mut self, map: &SlotMap) -> Vec<Answer> {
        self.answer(|k| match k {
            Kind::Remove(n) => map
                .node(*n)
                .is_none()
                .then(|| AdminAnswer::Done(map.clone())),
            Kind::Await(_) => None,
        })
    }

    /// The removal of `node` was refused for `reason`.
    pub fn refused(&mut self, node: NodeId, reason: &str) -> Vec<Answer> {
        self.answer(|k| (*k == Kind::Remove(node)).then(|| AdminAnswer::Refused(reason.to_owned())))
    }

    /// The cluster is at `map`, and `idle` (no plan under way): waits for a placed node end.
    pub fn settled(&mut self, map: &SlotMap, idle: bool) -> Vec<Answer> {
        if !idle || !map.is_formed() {
            return Vec::new();
        }
        self.answer(|k| match k {
            Kind::Await(r) => map
                .nodes
                .iter()
                .any(|n| r.names(n))
                .then(|| AdminAnswer::Done(map.clone())),
            Kind::Remove(_) => None,
        })
    }

    /// Takes out the requests `f` answers, with their answers.
    fn answer(&mut self, f: impl Fn(&Kind) -> Option<AdminAnswer>) -> Vec<Answer> {
        let mut answers = Vec::new();
        self.waiting.retain(|(conn, kind)| match f(kind) {
            Some(a) => {
                answers.push((*conn, a));
                false
            }
            None => true,
        });
        answers
    }
}

/// `node` as an operator wrote it, for messages.
pub(super) fn describe(node: &NodeRef) -> String {
    let mut s = String::new();
    let _ = match node {
        NodeRef::Id(id) => write!(s, "{id}"),
        NodeRef::Addr(addr) => write!(s, "at {addr}"),
    };
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use kv_components::bootstrap::formation::form;
    use kv_ports::membership::NodeInfo;

    fn infos(n: u64) -> Vec<NodeInfo> {
        (1..=n)
            .map(|i| NodeInfo::at(NodeId(i), ([127, 0, 0, 1], 9000 + i as u16).into()))
            .collect()
    }

    #[test]
    fn each_waiter_gets_its_own_answer() {
        let four = form(&infos(4), 2).unwrap();
        let mut five = form(&infos(5), 2).unwrap();
        five.epoch = four.epoch.next();
        let mut w = Waiters::default();
        w.add_remove(ConnId(1), NodeId(5));
        w.add_await(ConnId(2), NodeRef::Id(NodeId(5)));
        w.add_await(ConnId(3), NodeRef::Addr(([127, 0, 0, 1], 9004).into()));
        w.add_remove(ConnId(4), NodeId(2));
        assert!(w.removing(NodeId(5)) && !w.removing(NodeId(3)));
        assert!(w.settled(&five, false).is_empty(), "a plan is under way");
        let placed = w.settled(&five, true);
        assert_eq!(placed.iter().map(|(c, _)| c.0).collect::<Vec<_>>(), [2, 3]);
        assert_eq!(w.published(&five), []);
        let gone = w.published(&four);
        assert_eq!(gone, [(ConnId(1), AdminAnswer::Done(four.clone()))]);
        let refused = w.refused(NodeId(2), "group 0 would have no members left");
        assert!(matches!(
            refused.as_slice(),
            [(ConnId(4), AdminAnswer::Refused(_))]
        ));
        assert_eq!(w.len(), 0);
        w.add_await(ConnId(7), NodeRef::Id(NodeId(99)));
        w.closed(ConnId(7));
        assert_eq!(w.len(), 0);
    }
}
