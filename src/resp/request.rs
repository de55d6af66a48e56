//! A decoded request: the command name and its arguments, all binary-safe.

use bytes::Bytes;

use super::cmd::CmdError;
use super::error::ProtocolError;
use super::frame::Frame;

/// One command as a client sent it: `args[0]` is the name, the rest its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    args: Vec<Bytes>,
}

impl Request {
    /// Turns a frame into a request. Requests are non-empty arrays of bulk strings (inline
    /// commands arrive in that shape too); an empty or null array is nothing to do (`None`,
    /// as Redis ignores it); any other shape is a protocol error.
    pub(crate) fn from_frame(frame: Frame) -> Result<Option<Request>, ProtocolError> {
        let items = match frame {
            Frame::Array(items) => items,
            Frame::NullArray => return Ok(None),
            other => return Err(ProtocolError::ExpectedArray(type_byte(&other))),
        };
        let args = items
            .into_iter()
            .map(|item| match item {
                Frame::Bulk(data) => Ok(data),
                other => Err(ProtocolError::ExpectedBulk(type_byte(&other))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((!args.is_empty()).then_some(Request { args }))
    }

    /// The command name as sent.
    pub(crate) fn name(&self) -> &[u8] {
        &self.args[0]
    }

    /// The command name in lower case, as Redis quotes it in arity errors.
    pub(crate) fn lower_name(&self) -> String {
        String::from_utf8_lossy(self.name()).to_lowercase()
    }

    /// The arguments after the name.
    pub(crate) fn args(&self) -> &[Bytes] {
        &self.args[1..]
    }

    /// The arguments if there are between `min` and `max` of them (`None`: no upper bound),
    /// else Redis's "wrong number of arguments" error.
    pub(crate) fn arity(&self, min: usize, max: Option<usize>) -> Result<&[Bytes], CmdError> {
        let n = self.args().len();
        if n < min || max.is_some_and(|max| n > max) {
            return Err(CmdError::Arity(self.lower_name()));
        }
        Ok(self.args())
    }

    /// The arguments if there are exactly `N` of them, as an array to destructure.
    pub(crate) fn exactly<const N: usize>(&self) -> Result<&[Bytes; N], CmdError> {
        self.args()
            .try_into()
            .map_err(|_| CmdError::Arity(self.lower_name()))
    }
}

fn type_byte(frame: &Frame) -> u8 {
    match frame {
        Frame::Simple(_) => b'+',
        Frame::Error(_) => b'-',
        Frame::Integer(_) => b':',
        Frame::Bulk(_) | Frame::Null => b'$',
        Frame::Array(_) | Frame::NullArray => b'*',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_arrays_of_bulk_strings() {
        let get = Frame::Array(vec![Frame::bulk_static("GET"), Frame::bulk_static("k")]);
        let req = Request::from_frame(get).expect("valid").expect("non-empty");
        assert_eq!(req.name(), b"GET");
        assert_eq!(req.args(), [Bytes::from_static(b"k")]);
        assert_eq!(Request::from_frame(Frame::Array(vec![])), Ok(None));
        assert_eq!(
            Request::from_frame(Frame::simple("PING")),
            Err(ProtocolError::ExpectedArray(b'+'))
        );
        assert_eq!(
            Request::from_frame(Frame::Array(vec![Frame::Integer(1)])),
            Err(ProtocolError::ExpectedBulk(b':'))
        );
    }
}
