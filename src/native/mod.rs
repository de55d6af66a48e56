//! The native client protocol: length-delimited postcard frames over TCP.
//!
//! A client sends [`ClientFrame::Request`]s carrying a [`KvCommand`](kv_ports::kv::KvCommand)
//! with its `(client, seq)` id; the node answers each with a [`ServerFrame`]. The node side is
//! the [`ClientEndpoint`] component, the client side is [`crate::client`]. The protocol adds
//! nothing to the `KvPort` vocabulary, so what a client sees is exactly what the group says.

pub mod directive;
mod endpoint;
pub mod frame;
pub mod report;
pub mod status;
mod tasks;

pub use directive::{AdminAnswer, AdminRequest, Directive, DirectiveId, DirectiveOutcome, NodeRef};
pub use endpoint::{
    AdoptClient, ClientEndpoint, ConnKey, EndpointArgs, EndpointConfig, EndpointError, NoMapView,
    NodeView,
};
pub use frame::{ClientCodec, ClientFrame, ServerCodec, ServerFrame};
pub use report::{GroupReport, SlotRecord};
pub use status::{CoordinatorStatus, MemberStage, MemberStatus, NodeStatus, StatusReport};
