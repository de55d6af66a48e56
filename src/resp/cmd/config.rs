//! `CONFIG GET parameter [parameter ...]`: redis-benchmark reads `save` and `appendonly` at
//! start and warns unless each comes back as a name/value pair; this store persists through
//! replication, not snapshots, so they are `""` and `no`. Other parameters are unknown
//! (skipped, as Redis skips unknown names). Other subcommands are refused.

use bytes::Bytes;

use super::CmdError;
use crate::resp::frame::Frame;
use crate::resp::request::Request;

/// The parameters answered, with their values.
const PARAMETERS: &[(&str, &str)] = &[("save", ""), ("appendonly", "no")];

pub(crate) fn run(req: &Request) -> Result<Frame, CmdError> {
    let args = req.arity(1, None)?;
    if !args[0].eq_ignore_ascii_case(b"GET") {
        return Err(CmdError::Unsupported(format!(
            "CONFIG {}",
            String::from_utf8_lossy(&args[0]).to_uppercase()
        )));
    }
    if args.len() < 2 {
        return Err(CmdError::Arity("config|get".into()));
    }
    Ok(Frame::Array(args[1..].iter().flat_map(lookup).collect()))
}

fn lookup(name: &Bytes) -> Vec<Frame> {
    PARAMETERS
        .iter()
        .filter(|(known, _)| name.eq_ignore_ascii_case(known.as_bytes()))
        .flat_map(|(known, value)| [Frame::bulk_static(known), Frame::bulk_static(value)])
        .collect()
}
