//! The Replica: the key-value state machine fed by the decided log, with client sessions
//! that make every command take effect at most once.

pub mod component;
pub mod core;
pub mod member;
pub mod moves;
#[cfg(test)]
mod moves_tests;
pub mod ownership;
pub mod session;
pub mod state_machine;

pub use self::core::{refusal, Applied, KvError, Replica, Reply};
pub use self::member::{MemberCore, MemberCoreConfig, MemberMsg, MemberOutput};
pub use self::ownership::{MoveKind, Ownership, OwnershipState, SlotMove};
pub use self::session::{Session, SessionTable};
pub use self::state_machine::{KvStore, Snapshot};
