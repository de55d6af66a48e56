//! [`GroupNode`]: one node's part in one group across configurations (pure).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kv_ports::ids::NodeId;
use kv_ports::kv::{KvCommand, KvResult};
use kv_ports::membership::Slot;
use thiserror::Error;

use super::messages::{fnv1a, ConfigEvent, GroupMsg, SnapshotId};
use crate::replica::session::Seen;
use crate::replica::{
    Applied, KvError, MemberCore, MemberCoreConfig, MemberOutput, Reply, SessionTable, Snapshot,
};
use crate::sequence_paxos::{Entry, ProposeError, StopSign};

/// Default largest snapshot chunk: 1 MiB, a sixteenth of the perfect link's default frame limit.
pub const DEFAULT_SNAPSHOT_CHUNK: usize = 1 << 20;

/// Settings of one node's group member, for every configuration it will run.
#[derive(Clone, Debug)]
pub struct GroupNodeConfig {
    /// This node.
    pub pid: NodeId,
    /// BLE tie-breaker between equal rounds (higher wins).
    pub priority: u64,
    /// Ticks per BLE heartbeat round.
    pub round_ticks: u64,
    /// Ticks between Sequence Paxos resends.
    pub resend_ticks: u64,
    /// Ticks without progress after which a node waiting for a snapshot asks again, the next
    /// source in turn (resuming where its transfer stands). A shell sets it well above one
    /// chunk's round trip.
    pub snapshot_retry_ticks: u64,
    /// Largest chunk of an encoded snapshot sent in one message: far below the link's frame
    /// limit, so a state of any size reaches new members.
    pub snapshot_chunk_bytes: usize,
    /// A leaving node retires after this many ticks without a snapshot request or traffic of
    /// its old configuration, once a majority of the next configuration runs it.
    pub retire_grace_ticks: u64,
    /// At most one `Sealed` notice per peer per this many ticks.
    pub notice_ticks: u64,
    /// TEST ONLY: see [`crate::sequence_paxos::SpConfig::unsafe_skip_promise_check`].
    pub unsafe_skip_promise_check: bool,
    /// TEST ONLY: start the next configuration without the client session table (a classic
    /// state-transfer bug: a retried command is applied a second time). The simulator shows it
    /// catches this. Never set it outside tests.
    pub unsafe_forget_sessions: bool,
    /// TEST ONLY: replicas keep serving client commands on slots they froze (or never owned):
    /// the simulator shows its slot-move checks catch it. Never set it outside tests.
    pub unsafe_serve_frozen: bool,
}

impl GroupNodeConfig {
    /// The `MemberCoreConfig` timings, a snapshot request every 8 ticks without progress,
    /// snapshots in chunks of [`DEFAULT_SNAPSHOT_CHUNK`], retirement after 120 idle ticks (ten
    /// election rounds).
    pub fn new(pid: NodeId) -> Self {
        let m = MemberCoreConfig::new(pid, vec![pid]);
        GroupNodeConfig {
            pid,
            priority: m.priority,
            round_ticks: m.round_ticks,
            resend_ticks: m.resend_ticks,
            snapshot_retry_ticks: 8,
            snapshot_chunk_bytes: DEFAULT_SNAPSHOT_CHUNK,
            retire_grace_ticks: 120,
            notice_ticks: 4,
            unsafe_skip_promise_check: false,
            unsafe_forget_sessions: false,
            unsafe_serve_frozen: false,
        }
    }

    /// The member settings for a configuration with these members.
    pub fn member(&self, members: Vec<NodeId>) -> MemberCoreConfig {
        MemberCoreConfig {
            pid: self.pid,
            members,
            priority: self.priority,
            round_ticks: self.round_ticks,
            resend_ticks: self.resend_ticks,
            unsafe_skip_promise_check: self.unsafe_skip_promise_check,
            unsafe_serve_frozen: self.unsafe_serve_frozen,
        }
    }
}

/// Where a node stands in the group's sequence of configurations.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum StageKind {
    /// Runs BLE, Sequence Paxos and the replica of its configuration.
    Active,
    /// Named in a configuration it cannot run yet: waits for the previous one's final state.
    Joining,
    /// In no later configuration: serves snapshots and redirects clients, then retires.
    Leaving,
    /// Done; the shell may drop it.
    Retired,
}

#[derive(Clone, Debug)]
enum Stage {
    Active {
        config: u32,
        member: Box<MemberCore>,
        /// Set once this node knows `config` is sealed without holding the state at its
        /// StopSign: it keeps running `config` (so the members still in it can decide the
        /// StopSign again) and asks for a snapshot, whichever comes first.
        catch_up: Option<CatchUp>,
    },
    Joining {
        /// The state wanted is the one at the StopSign of `after` (or of a later one).
        after: u32,
        /// The configuration it will run (as far as it knows).
        next: u32,
    },
    Leaving {
        idle_since: u64,
    },
    Retired,
}

/// What a catching-up member knows of the configurations after its own.
#[derive(Copy, Clone, Debug)]
struct CatchUp {
    /// The newest configuration known to be sealed (the state wanted is at its StopSign).
    after: u32,
    /// The configuration after it.
    next: u32,
}

/// The most a transfer reserves before its chunks arrive (it grows past this as they do).
const MAX_RESERVE: u64 = 64 << 20;

/// A snapshot being assembled from chunks, all of the same encoded state (`id`), in order.
#[derive(Clone, Debug)]
struct Fetch {
    /// The encoded state being assembled.
    id: SnapshotId,
    /// The StopSign of `id.config`, as its first chunk brought it.
    stopsign: StopSign,
    /// The sender of the last chunk taken: asked for the next one at once.
    from: NodeId,
    /// The bytes `0..buf.len()` of the encoded state; always shorter than `id.len`.
    buf: Vec<u8>,
}

impl Fetch {
    /// The next offset wanted.
    fn at(&self) -> u64 {
        self.buf.len() as u64
    }
}

/// The newest sealed configuration a node knows of, and (if it holds it) the state at its
/// StopSign, kept to serve nodes that need it.
#[derive(Clone, Debug)]
pub struct SealedRecord {
    /// The sealed configuration.
    pub config: u32,
    /// Its decided StopSign.
    pub stopsign: StopSign,
    /// Hash of the state at the StopSign, when this node held it.
    pub hash: Option<u64>,
    /// The encoded state, while someone may still need it.
    bytes: Option<Bytes>,
    /// Members of the next configuration known to hold the state (heard running it).
    heard: BTreeSet<NodeId>,
    /// Someone runs a configuration after the next one: this state is history.
    superseded: bool,
}

impl SealedRecord {
    /// Whether this node can still serve the state at the StopSign.
    pub fn has_snapshot(&self) -> bool {
        self.bytes.is_some()
    }

    /// Members of the next configuration known to run it (so to hold the state).
    pub fn running(&self) -> &BTreeSet<NodeId> {
        &self.heard
    }

    /// Whether a majority of the next configuration holds the state: a leaving node that
    /// holds it may go.
    fn safe_elsewhere(&self) -> bool {
        self.superseded || self.heard.len() >= crate::quorum::majority(self.stopsign.members.len())
    }

    /// Note that `p` runs the next configuration (or a later one); drop the encoded state once
    /// every other member of the next configuration does.
    fn heard_from(&mut self, p: NodeId, me: NodeId) {
        if self.stopsign.members.contains(&p) && self.heard.insert(p) {
            let mut others = self.stopsign.members.iter().filter(|m| **m != me);
            let all = others.all(|m| self.heard.contains(m));
            if all && self.stopsign.members.contains(&me) {
                self.bytes = None;
            }
        }
    }
}

/// Why a membership change was not started.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ChangeError {
    /// This node runs no configuration now (joining, leaving or retired).
    #[error("not running a configuration")]
    NotActive,
    /// The change names another configuration than the one this node runs.
    #[error("configuration {asked} is not the current one ({current})")]
    WrongConfig {
        /// The configuration the change was for.
        asked: u32,
        /// The configuration this node runs.
        current: u32,
    },
    /// The StopSign must name a later configuration, with this node's group members.
    #[error("the next configuration must be later than {current} and have members")]
    BadNext {
        /// The configuration this node runs.
        current: u32,
    },
    /// Sequence Paxos refused the StopSign (no leader known, or already sealed).
    #[error(transparent)]
    Refused(#[from] ProposeError),
}

/// What one drain produced. Reused across drains.
#[derive(Clone, Debug, Default)]
pub struct GroupOutput {
    /// Messages to send, by destination.
    pub messages: Vec<(NodeId, GroupMsg)>,
    /// Answers for client requests parked here.
    pub replies: Vec<Reply>,
    /// Entries decided and applied, as `(configuration, index, entry, what applying did)`.
    pub applied: Vec<(u32, u64, Entry<KvCommand>, Applied)>,
    /// Configuration changes seen by this node.
    pub events: Vec<ConfigEvent>,
}

impl GroupOutput {
    /// Forget everything (keeps the buffers).
    pub fn clear(&mut self) {
        self.messages.clear();
        self.replies.clear();
        self.applied.clear();
        self.events.clear();
    }
}

/// One node's part in one replication group, across its configurations. Pure: messages,
/// client commands, link events and ticks in; messages, answers and events out.
///
/// - **Active** in configuration `c`: runs a [`MemberCore`] of `c`; its traffic is tagged `c`.
///   When the replica applies `c`'s StopSign, the node encodes its state (store and client
///   sessions) and either starts `c + 1` from it with an empty log (if named in the StopSign),
///   or leaves.
/// - **Joining**: named in a configuration it cannot run yet, it asks nodes that may hold the
///   state at the previous StopSign (round robin, after `snapshot_retry_ticks` without
///   progress), fetches it chunk by chunk (see `on_chunk`) and starts its BLE and Sequence
///   Paxos only once it installed that state: it never votes without it.
/// - **Leaving**: answers `SnapshotRequest`s, tells nodes still talking in an old
///   configuration that it is sealed, answers clients `Sealed { next_config }`, and retires
///   after `retire_grace_ticks` without such traffic.
///
/// A node that runs `c` and learns that `c` is sealed from someone else (a `Sealed` notice, or
/// traffic of a later configuration) without having applied the StopSign itself **keeps
/// running `c`** and asks for the state by snapshot: it gets there by whichever comes first,
/// the snapshot or its own log (the members still in `c` can elect a leader and decide the
/// StopSign again, which matters when every node that had applied it crashed). See
/// `report/reconfiguration.md`.
#[derive(Clone, Debug)]
pub struct GroupNode {
    cfg: GroupNodeConfig,
    stage: Stage,
    sealed: Option<SealedRecord>,
    sources: Vec<NodeId>,
    next_source: usize,
    last_request: Option<u64>,
    /// The snapshot transfer under way, if any.
    fetch: Option<Fetch>,
    ticks: u64,
    last_notice: BTreeMap<NodeId, u64>,
    outgoing: Vec<(NodeId, GroupMsg)>,
    replies: Vec<Reply>,
    events: Vec<ConfigEvent>,
    mout: MemberOutput,
}

impl GroupNode {
    fn with_stage(cfg: GroupNodeConfig, stage: Stage) -> Self {
        assert!(cfg.snapshot_retry_ticks > 0 && cfg.notice_ticks > 0);
        assert!(cfg.snapshot_chunk_bytes > 0, "snapshot chunks carry bytes");
        GroupNode {
            cfg,
            stage,
            sealed: None,
            sources: Vec::new(),
            next_source: 0,
            last_request: None,
            fetch: None,
            ticks: 0,
            last_notice: BTreeMap::new(),
            outgoing: Vec::new(),
            replies: Vec::new(),
            events: Vec::new(),
            mout: MemberOutput::default(),
        }
    }

    /// A member of configuration `config` from its start (empty log and store) serving every
    /// slot: a group that is the whole store (the simulator, single-group tests).
    pub fn new(cfg: GroupNodeConfig, config: u32, members: Vec<NodeId>) -> Self {
        let member = MemberCore::new(cfg.member(members));
        Self::starting(cfg, config, member)
    }

    /// A member of configuration `config` from its start (empty log and store) serving exactly
    /// `slots`: a new group of a partitioned store (the coordinator's `StartGroup`). Every
    /// member must be given the same slots. Client commands on other slots are answered
    /// `Moved`; slots arrive and leave through `Install` and `Freeze` in the group's log, and
    /// the slot set travels in snapshots to later members.
    pub fn with_slots(
        cfg: GroupNodeConfig,
        config: u32,
        members: Vec<NodeId>,
        slots: Vec<Slot>,
    ) -> Self {
        let member = MemberCore::with_slots(cfg.member(members), slots);
        Self::starting(cfg, config, member)
    }

    fn starting(cfg: GroupNodeConfig, config: u32, member: MemberCore) -> Self {
        let stage = Stage::Active {
            config,
            member: Box::new(member),
            catch_up: None,
        };
        Self::with_stage(cfg, stage)
    }

    /// A node named in configuration `next`, which follows `after`: it asks `sources` (members
    /// of `after` and of `next`; itself is skipped) for the state at `after`'s StopSign.
    pub fn joining(cfg: GroupNodeConfig, after: u32, next: u32, sources: Vec<NodeId>) -> Self {
        assert!(next > after, "a configuration follows the one it replaces");
        let stage = Stage::Joining { after, next };
        let mut node = Self::with_stage(cfg, stage);
        for s in sources {
            node.add_source(s);
        }
        node
    }

    /// This node.
    pub fn pid(&self) -> NodeId {
        self.cfg.pid
    }

    /// The stage it is in.
    pub fn stage(&self) -> StageKind {
        match self.stage {
            Stage::Active { .. } => StageKind::Active,
            Stage::Joining { .. } => StageKind::Joining,
            Stage::Leaving { .. } => StageKind::Leaving,
            Stage::Retired => StageKind::Retired,
        }
    }

    /// Whether the grace period is over (the shell may drop this member).
    pub fn is_retired(&self) -> bool {
        matches!(self.stage, Stage::Retired)
    }

    /// The configuration it runs, when active.
    pub fn config(&self) -> Option<u32> {
        match self.stage {
            Stage::Active { config, .. } => Some(config),
            _ => None,
        }
    }

    /// The newest configuration this node runs or knows it belongs or belonged to: the
    /// running one, the one it joins, or the one that followed it. Never decreases.
    pub fn epoch(&self) -> u32 {
        match &self.stage {
            Stage::Active { config, .. } => *config,
            Stage::Joining { next, .. } => *next,
            Stage::Leaving { .. } | Stage::Retired => {
                self.sealed.as_ref().map_or(0, |r| r.stopsign.next_config)
            }
        }
    }

    /// The running member, when active (read-only, for status and tests).
    pub fn member(&self) -> Option<&MemberCore> {
        match &self.stage {
            Stage::Active { member, .. } => Some(member),
            _ => None,
        }
    }

    /// The newest sealed configuration this node knows of.
    pub fn sealed(&self) -> Option<&SealedRecord> {
        self.sealed.as_ref()
    }

    /// Whether this node runs a configuration it knows is sealed, waiting for its final state.
    pub fn is_catching_up(&self) -> bool {
        matches!(
            self.stage,
            Stage::Active {
                catch_up: Some(_),
                ..
            }
        )
    }

    /// Start a membership change: propose the StopSign that seals `from_config` (which this
    /// node must run) and names the next configuration. A follower forwards it to its leader.
    pub fn change_members(&mut self, from_config: u32, ss: StopSign) -> Result<(), ChangeError> {
        let Stage::Active {
            config,
            member,
            catch_up: None,
        } = &mut self.stage
        else {
            return Err(ChangeError::NotActive);
        };
        if *config != from_config {
            return Err(ChangeError::WrongConfig {
                asked: from_config,
                current: *config,
            });
        }
        if ss.next_config <= *config || ss.members.is_empty() {
            return Err(ChangeError::BadNext { current: *config });
        }
        Ok(member.reconfigure(ss)?)
    }

    /// A client command arrives. Active: see [`MemberCore::client_request`]. Joining: it
    /// cannot serve yet (`NotLeader`). Leaving, or known to be sealed: `Sealed { next_config }`,
    /// the command was not taken here.
    pub fn client_request(&mut self, cmd: KvCommand) -> Option<Result<KvResult, KvError>> {
        match &mut self.stage {
            Stage::Active {
                member,
                catch_up: None,
                ..
            } => member.client_request(cmd),
            Stage::Active {
                catch_up: Some(cu), ..
            } => Some(Err(KvError::Sealed {
                next_config: cu.next,
            })),
            Stage::Joining { .. } => Some(Err(KvError::NotLeader { hint: None })),
            Stage::Leaving { .. } | Stage::Retired => Some(Err(KvError::Sealed {
                next_config: self.epoch(),
            })),
        }
    }

    /// The link to `peer` came back.
    pub fn reconnected(&mut self, peer: NodeId) {
        if let Stage::Active { member, .. } = &mut self.stage {
            member.reconnected(peer);
        }
    }

    /// The link to `peer` dropped.
    pub fn connection_lost(&mut self, peer: NodeId) {
        if let Stage::Active { member, .. } = &mut self.stage {
            member.connection_lost(peer);
        }
    }

    /// One tick of time.
    pub fn tick(&mut self) {
        self.ticks += 1;
        match &mut self.stage {
            Stage::Active {
                config,
                member,
                catch_up,
            } => {
                member.tick();
                if let Some(cu) = *catch_up {
                    let c = *config;
                    self.poll_sources(cu.after);
                    self.maybe_step_aside(c);
                }
            }
            Stage::Joining { after, .. } => {
                let after = *after;
                self.poll_sources(after);
            }
            Stage::Leaving { idle_since } => {
                let idle = self.ticks >= *idle_since + self.cfg.retire_grace_ticks;
                // Maybe the last copy of the state: stay until a majority of the next
                // configuration runs it (or a later one runs), probing its members. Those heard
                // already are probed again: their answer may name a later configuration, when
                // some of the others have gone for good.
                let unsafe_to_go = self
                    .sealed
                    .as_ref()
                    .filter(|r| r.has_snapshot() && !r.safe_elsewhere());
                if let Some(rec) = unsafe_to_go {
                    if self.ticks.is_multiple_of(self.cfg.snapshot_retry_ticks) {
                        for m in rec.stopsign.members.clone() {
                            self.notice(m);
                        }
                    }
                } else if idle {
                    // Nobody asks any more: the encoded state goes with the node.
                    if let Some(rec) = &mut self.sealed {
                        rec.bytes = None;
                    }
                    self.stage = Stage::Retired;
                    self.events.push(ConfigEvent::Retired);
                }
            }
            Stage::Retired => {}
        }
    }

    /// Handle a message from `from`.
    pub fn handle(&mut self, from: NodeId, msg: GroupMsg) {
        match msg {
            GroupMsg::Member { config, msg } => self.on_member(from, config, msg),
            GroupMsg::SnapshotRequest { config, resume } => {
                self.on_snapshot_request(from, config, resume)
            }
            GroupMsg::Snapshot {
                id,
                stopsign,
                offset,
                bytes,
            } => self.on_chunk(from, id, stopsign, offset, bytes),
            GroupMsg::Sealed { config, stopsign } => self.on_sealed(from, config, stopsign),
            GroupMsg::Running { config } => self.on_running(from, config),
        }
    }

    /// Collect everything to send and answer; a StopSign applied here seals the configuration
    /// (and starts the next one or makes this node leave).
    pub fn drain_into(&mut self, out: &mut GroupOutput) {
        let mut seal = None;
        if let Stage::Active { config, member, .. } = &mut self.stage {
            let c = *config;
            member.drain_into(&mut self.mout);
            let msgs = self.mout.messages.drain(..);
            out.messages
                .extend(msgs.map(|(to, msg)| (to, GroupMsg::Member { config: c, msg })));
            out.replies.append(&mut self.mout.replies);
            let mut stopsign = None;
            for (idx, entry, applied) in self.mout.applied.drain(..) {
                if let Entry::StopSign(ss) = &entry {
                    stopsign = Some(ss.clone());
                }
                out.applied.push((c, idx, entry, applied));
            }
            if let Some(ss) = stopsign {
                let snap = member.replica().snapshot();
                assert_eq!(
                    snap.applied,
                    member.sp().decided_idx(),
                    "a StopSign is the last entry, applied after all others"
                );
                seal = Some((c, ss, snap));
            }
        }
        if let Some((c, ss, snap)) = seal {
            let bytes = Bytes::from(postcard::to_allocvec(&snap).expect("snapshot encodes"));
            let hash = fnv1a(&bytes);
            self.install(c, ss, bytes, hash, snap, true);
        }
        if let Some(f) = &self.fetch {
            assert!(
                matches!(self.stage, Stage::Active { .. } | Stage::Joining { .. }),
                "only a node that still needs a state assembles one"
            );
            assert!(
                f.at() < f.id.len,
                "a complete snapshot is installed at once"
            );
        }
        out.messages.append(&mut self.outgoing);
        out.replies.append(&mut self.replies);
        out.events.append(&mut self.events);
    }

    /// A one-line summary, for logs and failure reports.
    pub fn describe(&self) -> String {
        let sealed = self.sealed.as_ref().map(|r| {
            format!(
                "sealed c{} -> c{} {:?}{} running {:?}{}",
                r.config,
                r.stopsign.next_config,
                r.stopsign.members,
                if r.has_snapshot() { " +snap" } else { "" },
                r.heard,
                if r.superseded { " superseded" } else { "" },
            )
        });
        let mut sealed = sealed.unwrap_or_default();
        if let Some(f) = &self.fetch {
            let (c, at, len) = (f.id.config, f.at(), f.id.len);
            sealed.push_str(&format!(" fetching c{c} {at}/{len} from {}", f.from));
        }
        match &self.stage {
            Stage::Active {
                config,
                member,
                catch_up,
            } => {
                let cu = catch_up.map_or(String::new(), |cu| {
                    format!(" catching up to c{} (after c{})", cu.next, cu.after)
                });
                format!("c{config} {}{cu} {sealed}", member.describe())
            }
            Stage::Joining { after, next, .. } => {
                format!(
                    "{}: joining c{next} (after c{after}) {sealed}",
                    self.cfg.pid
                )
            }
            Stage::Leaving { .. } => format!("{}: leaving {sealed}", self.cfg.pid),
            Stage::Retired => format!("{}: retired {sealed}", self.cfg.pid),
        }
    }

    fn add_source(&mut self, s: NodeId) {
        if s != self.cfg.pid && !self.sources.contains(&s) {
            self.sources.push(s);
        }
    }

    fn request_due(&self) -> bool {
        self.last_request
            .is_none_or(|t| self.ticks >= t + self.cfg.snapshot_retry_ticks)
    }

    /// Ask the next source, round robin, when a request is due.
    fn poll_sources(&mut self, after: u32) {
        if self.request_due() && !self.sources.is_empty() {
            let to = self.sources[self.next_source % self.sources.len()];
            self.next_source += 1;
            self.request(to, after);
        }
    }

    /// Ask `from` now (it has shown it is past `after`) unless a request just went out.
    fn request_from(&mut self, from: NodeId, after: u32) {
        self.add_source(from);
        if self.request_due() {
            self.request(from, after);
        }
    }

    /// An active member learnt that configurations up to `after` are sealed (`next` follows):
    /// keep running, and fetch the state.
    fn start_catch_up(&mut self, from: NodeId, after: u32, next: u32, others: &[NodeId]) {
        let Stage::Active {
            member, catch_up, ..
        } = &mut self.stage
        else {
            return;
        };
        let cu = match catch_up {
            Some(cu) if cu.after >= after => *cu,
            _ => {
                let cu = CatchUp { after, next };
                *catch_up = Some(cu);
                self.events.push(ConfigEvent::CatchingUp {
                    config: after,
                    next,
                });
                cu
            }
        };
        let members = member.members().to_vec();
        for m in members.into_iter().chain(others.iter().copied()) {
            self.add_source(m);
        }
        self.request_from(from, cu.after);
    }

    /// A catching-up member of `c` that is in no later configuration is only needed while the
    /// state might have to be decided again in `c`: once a majority of the next configuration
    /// runs it (or a later one runs), it leaves. Until then it probes them.
    fn maybe_step_aside(&mut self, c: u32) {
        let pid = self.cfg.pid;
        let Some(rec) = self
            .sealed
            .as_ref()
            .filter(|r| r.config >= c && !r.stopsign.members.contains(&pid))
        else {
            return;
        };
        if !rec.safe_elsewhere() {
            if self.ticks.is_multiple_of(self.cfg.snapshot_retry_ticks) {
                for m in rec.stopsign.members.clone() {
                    self.notice(m);
                }
            }
            return;
        }
        let config = rec.config;
        self.fetch = None;
        let old = std::mem::replace(
            &mut self.stage,
            Stage::Leaving {
                idle_since: self.ticks,
            },
        );
        if let Stage::Active { member, .. } = old {
            // Whether these took effect is unknown here: the client retries elsewhere.
            for id in member.unanswered() {
                self.replies
                    .push((id, Err(KvError::NotLeader { hint: None })));
            }
        }
        self.events.push(ConfigEvent::Leaving { config });
    }

    /// Ask `to` for the state at `after`'s StopSign (or a later one): the next chunk of the
    /// transfer under way, if it is still of use.
    fn request(&mut self, to: NodeId, after: u32) {
        if self.fetch.as_ref().is_some_and(|f| f.id.config < after) {
            // A later configuration is known sealed: that older state is no longer wanted.
            self.fetch = None;
        }
        self.last_request = Some(self.ticks);
        let resume = self.fetch.as_ref().map(|f| (f.id, f.at()));
        let msg = GroupMsg::SnapshotRequest {
            config: after,
            resume,
        };
        self.outgoing.push((to, msg));
    }

    /// Tell `to` (rate-limited) the newest sealed configuration we know.
    fn notice(&mut self, to: NodeId) {
        let Some(rec) = &self.sealed else { return };
        let now = self.ticks;
        if let Some(&t) = self.last_notice.get(&to) {
            if now < t + self.cfg.notice_ticks {
                return;
            }
        }
        self.last_notice.insert(to, now);
        let msg = GroupMsg::Sealed {
            config: rec.config,
            stopsign: rec.stopsign.clone(),
        };
        self.outgoing.push((to, msg));
    }

    fn on_member(&mut self, from: NodeId, x: u32, msg: crate::replica::MemberMsg) {
        match &mut self.stage {
            Stage::Active { config, member, .. } if x == *config => {
                let c = *config;
                member.handle(from, msg);
                // A member of `c` talking in `c` holds the state `c` started from.
                if let Some(rec) = &mut self.sealed {
                    if rec.stopsign.next_config == c {
                        rec.heard_from(from, self.cfg.pid);
                    }
                }
            }
            // Only members of `x` get its traffic, and `x` exists only once every
            // configuration before it is sealed: ours is over.
            Stage::Active { config, .. } if x > *config => self.start_catch_up(from, x - 1, x, &[]),
            Stage::Active { .. } => self.notice(from),
            Stage::Joining { after, next } => {
                if x > *after {
                    if x > *after + 1 {
                        *after = x - 1;
                        *next = x;
                    }
                    let after = *after;
                    self.request_from(from, after);
                } else {
                    self.notice(from);
                }
            }
            Stage::Leaving { idle_since } => {
                let old = self.sealed.as_ref().is_some_and(|r| x <= r.config);
                if old {
                    *idle_since = self.ticks;
                    self.notice(from);
                }
            }
            Stage::Retired => {}
        }
    }

    /// Serve one chunk: where the asker's transfer stands if it assembles exactly the state held
    /// here, else the first one.
    fn on_snapshot_request(&mut self, from: NodeId, x: u32, resume: Option<(SnapshotId, u64)>) {
        if let Stage::Retired = self.stage {
            return;
        }
        let Some(rec) = &self.sealed else { return };
        if rec.config < x {
            return;
        }
        if let Stage::Leaving { idle_since } = &mut self.stage {
            *idle_since = self.ticks;
        }
        match &rec.bytes {
            Some(bytes) => {
                let hash = rec
                    .hash
                    .expect("a node that holds the state knows its hash");
                let id = SnapshotId {
                    config: rec.config,
                    len: bytes.len() as u64,
                    hash,
                };
                let offset = match resume {
                    Some((wanted, at)) if wanted == id && at < id.len => at,
                    _ => 0,
                };
                let start = usize::try_from(offset).expect("offset within a held buffer");
                let end = bytes.len().min(start + self.cfg.snapshot_chunk_bytes);
                assert!(start < end, "a chunk is never empty");
                let msg = GroupMsg::Snapshot {
                    id,
                    stopsign: rec.stopsign.clone(),
                    offset,
                    bytes: bytes.slice(start..end),
                };
                self.outgoing.push((from, msg));
            }
            None => self.notice(from),
        }
    }

    /// Whether the state at the StopSign of `y` is of use here.
    fn wants(&self, y: u32) -> bool {
        match &self.stage {
            Stage::Active { config, .. } => y >= *config,
            Stage::Joining { after, .. } => y >= *after,
            Stage::Leaving { .. } | Stage::Retired => false,
        }
    }

    /// A chunk of an encoded state. It is taken only if it continues the transfer under way
    /// exactly (same state, next offset) or starts a transfer of a state at least as new;
    /// anything else (a duplicate, a chunk overtaken by another, a stale answer) is dropped:
    /// the retry asks again from where the transfer stands. Taken, it asks its sender for the
    /// next chunk at once; the last one installs the state once its length, hash and decoding
    /// check out (else the transfer starts over).
    fn on_chunk(&mut self, from: NodeId, id: SnapshotId, ss: StopSign, at: u64, bytes: Bytes) {
        if self
            .fetch
            .as_ref()
            .is_some_and(|f| !self.wants(f.id.config))
        {
            self.fetch = None;
        }
        let fits = !bytes.is_empty()
            && at
                .checked_add(bytes.len() as u64)
                .is_some_and(|end| end <= id.len);
        if !fits || !self.wants(id.config) || ss.next_config <= id.config {
            return;
        }
        match &self.fetch {
            Some(f) if f.id == id && f.at() == at => {}
            // A transfer of a state at least as new, from its start, replaces the one under way.
            Some(f) if f.id != id && at == 0 && id.config >= f.id.config => {}
            None if at == 0 => {}
            _ => return,
        }
        let f = match &mut self.fetch {
            Some(f) if f.id == id => f,
            slot => slot.insert(Fetch {
                id,
                stopsign: ss,
                from,
                // Room for the whole state up front (bounded: the length is the peer's word).
                buf: Vec::with_capacity(id.len.min(MAX_RESERVE) as usize),
            }),
        };
        f.from = from;
        f.buf.extend_from_slice(&bytes);
        if f.at() < id.len {
            self.add_source(from);
            self.request(from, id.config);
            return;
        }
        let f = self.fetch.take().expect("assembled just now");
        assert_eq!(f.at(), id.len, "chunks never run past the state's length");
        let bytes = Bytes::from(f.buf);
        if fnv1a(&bytes) != id.hash {
            return;
        }
        let Ok(snap) = postcard::from_bytes::<Snapshot>(&bytes) else {
            return;
        };
        self.install(id.config, f.stopsign, bytes, id.hash, snap, false);
    }

    fn on_sealed(&mut self, from: NodeId, y: u32, ss: StopSign) {
        if ss.next_config <= y {
            return;
        }
        let named = ss.members.contains(&self.cfg.pid);
        match &mut self.stage {
            Stage::Active { config, .. } if y >= *config => {
                // Our configuration is sealed and we did not apply its StopSign: keep running
                // it and fetch the state (whether or not we are named in the next one: a
                // leaving member is needed, too, if the others must decide the StopSign again).
                self.record_notice(y, ss.clone());
                self.start_catch_up(from, y, ss.next_config, &ss.members);
            }
            Stage::Active { config, .. } => {
                // A stale notice (or a leaving node's probe): say we run a later configuration.
                let config = *config;
                self.outgoing.push((from, GroupMsg::Running { config }));
            }
            Stage::Joining { after, next } if y >= *after => {
                if named {
                    *after = y;
                    *next = ss.next_config;
                    self.record_notice(y, ss);
                    // The sender is likely to hold the state (leaving nodes probe with notices).
                    self.request_from(from, y);
                } else {
                    // A new node the group no longer wants: it holds nothing, it just goes.
                    self.record_notice(y, ss);
                    self.fetch = None;
                    self.stage = Stage::Leaving {
                        idle_since: self.ticks,
                    };
                    self.events.push(ConfigEvent::Leaving { config: y });
                }
            }
            _ => {}
        }
    }

    fn on_running(&mut self, from: NodeId, x: u32) {
        let pid = self.cfg.pid;
        if let Some(rec) = &mut self.sealed {
            if x >= rec.stopsign.next_config {
                rec.heard_from(from, pid);
            }
            // The next configuration was sealed in turn: its own final state (held until a
            // majority of the one after runs it) replaces ours.
            rec.superseded |= x > rec.stopsign.next_config;
        }
    }

    /// Remember a StopSign learnt from a peer, unless we know a later one.
    fn record_notice(&mut self, y: u32, ss: StopSign) {
        if self.sealed.as_ref().is_some_and(|r| r.config >= y) {
            return;
        }
        self.sealed = Some(SealedRecord {
            config: y,
            stopsign: ss,
            hash: None,
            bytes: None,
            heard: BTreeSet::new(),
            superseded: false,
        });
    }

    /// Take the state at the StopSign of `y`: answer what waited, keep the state to serve
    /// others, and start the next configuration (if named in it) or leave.
    fn install(
        &mut self,
        y: u32,
        ss: StopSign,
        bytes: Bytes,
        hash: u64,
        snap: Snapshot,
        own: bool,
    ) {
        debug_assert_eq!(fnv1a(&bytes), hash, "the hash names these bytes");
        let waiting = match std::mem::replace(&mut self.stage, Stage::Retired) {
            Stage::Active { member, .. } => member.unanswered(),
            Stage::Joining { .. } | Stage::Leaving { .. } | Stage::Retired => Vec::new(),
        };
        // The final state says whether each waiting command took effect before the StopSign.
        let sessions = SessionTable::import(snap.sessions.clone());
        for id in waiting {
            let answer = match sessions.seen(&id) {
                Seen::Latest(r) => Ok(r),
                Seen::Older => Err(KvError::Superseded),
                Seen::New => Err(KvError::Sealed {
                    next_config: ss.next_config,
                }),
            };
            self.replies.push((id, answer));
        }
        self.events.push(ConfigEvent::Sealed {
            config: y,
            stopsign: ss.clone(),
            hash,
            own,
        });
        self.sealed = Some(SealedRecord {
            config: y,
            stopsign: ss.clone(),
            hash: Some(hash),
            bytes: Some(bytes),
            heard: BTreeSet::new(),
            superseded: false,
        });
        self.sources.clear();
        self.last_request = None;
        self.fetch = None;
        if ss.members.contains(&self.cfg.pid) {
            let snap = if self.cfg.unsafe_forget_sessions {
                Snapshot {
                    sessions: Vec::new(),
                    ..snap
                }
            } else {
                snap
            };
            let member = MemberCore::from_snapshot(self.cfg.member(ss.members.clone()), snap);
            self.stage = Stage::Active {
                config: ss.next_config,
                member: Box::new(member),
                catch_up: None,
            };
            self.events.push(ConfigEvent::Started {
                config: ss.next_config,
                members: ss.members,
                hash,
            });
        } else {
            self.stage = Stage::Leaving {
                idle_since: self.ticks,
            };
            self.events.push(ConfigEvent::Leaving { config: y });
        }
    }
}
