//! Reading seed 001's environment: `K`, `VIEW` and `IPPORT`, each checked with an error that
//! names the variable and the offending text.

use std::net::SocketAddr;

/// The three variables, by name.
pub const K: &str = "K";
/// See [`K`].
pub const VIEW: &str = "VIEW";
/// See [`K`].
pub const IPPORT: &str = "IPPORT";

/// The static view a seed 001 node starts from, checked: `k >= 1`, `k <= view.len()`, the
/// addresses distinct and dialable (no unspecified IP, no port 0), `me` among them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticView {
    /// Replicas per partition.
    pub k: u32,
    /// Every node's `ip:port`, in `VIEW` order (the order that decides the partitions).
    pub view: Vec<SocketAddr>,
    /// This node's `ip:port` (`IPPORT`).
    pub me: SocketAddr,
}

/// Why the environment does not describe a static view. Every message is one line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// A variable is unset (the others are named so the user sees the whole requirement).
    #[error(
        "{0} is not set: the seed 001 mode needs K, VIEW and IPPORT (or give --bootstrap ADDR)"
    )]
    Missing(&'static str),
    /// `K` is not a positive integer.
    #[error("K must be a whole number of replicas per partition, at least 1; got {0:?}")]
    BadK(String),
    /// An entry of `VIEW` or `IPPORT` is not `ip:port`.
    #[error("{var}: {text:?} is not an address: expected ip:port, like 10.0.0.21:8080")]
    BadAddress {
        /// `VIEW` (with the entry's position) or `IPPORT`.
        var: String,
        /// The text given.
        text: String,
    },
    /// An address no peer can dial.
    #[error("{var}: {addr} cannot be dialled by other nodes (unspecified IP or port 0)")]
    Undialable {
        /// `VIEW` (with the entry's position) or `IPPORT`.
        var: String,
        /// The address.
        addr: SocketAddr,
    },
    /// `VIEW` names no node.
    #[error("VIEW names no node: expected a comma-separated list of ip:port")]
    EmptyView,
    /// The same address appears twice in `VIEW`.
    #[error("VIEW lists {0} twice")]
    Duplicate(SocketAddr),
    /// `IPPORT` is not in `VIEW`.
    #[error("IPPORT {me} is not in VIEW ({view})")]
    NotInView {
        /// `IPPORT`.
        me: SocketAddr,
        /// `VIEW` as given.
        view: String,
    },
    /// Not even one partition of `K` fits in `VIEW`.
    #[error("K={k} but VIEW has only {nodes} node(s): a partition needs K nodes")]
    TooFewNodes {
        /// `K`.
        k: u32,
        /// Nodes in `VIEW`.
        nodes: usize,
    },
}

impl StaticView {
    /// Reads the process environment.
    pub fn from_env() -> Result<StaticView, ViewError> {
        StaticView::from_vars(|name| std::env::var(name).ok())
    }

    /// Whether any of the three variables is set (the node then means the seed 001 mode).
    pub fn any_set(var: impl Fn(&str) -> Option<String>) -> bool {
        [K, VIEW, IPPORT].iter().any(|name| var(name).is_some())
    }

    /// Reads the variables through `var` (the environment, or a table in tests). Whitespace
    /// around values and `VIEW` entries is ignored, and so are empty `VIEW` entries (a
    /// trailing comma).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<StaticView, ViewError> {
        let get = |name: &'static str| var(name).ok_or(ViewError::Missing(name));
        let (k_text, view_text, me_text) = (get(K)?, get(VIEW)?, get(IPPORT)?);
        let k = match k_text.trim().parse::<u32>() {
            Ok(k) if k >= 1 => k,
            _ => return Err(ViewError::BadK(k_text)),
        };
        let view = parse_view(&view_text)?;
        let me = parse_addr(IPPORT.to_owned(), &me_text)?;
        if !view.contains(&me) {
            return Err(ViewError::NotInView {
                me,
                view: view_text.trim().to_owned(),
            });
        }
        if view.len() < k as usize {
            return Err(ViewError::TooFewNodes {
                k,
                nodes: view.len(),
            });
        }
        Ok(StaticView { k, view, me })
    }

    /// This node's position in `VIEW` (0-based).
    pub fn position(&self) -> usize {
        self.view
            .iter()
            .position(|a| *a == self.me)
            .expect("checked when read: IPPORT is in VIEW")
    }
}

fn parse_view(text: &str) -> Result<Vec<SocketAddr>, ViewError> {
    let mut view = Vec::new();
    for (i, entry) in text.split(',').enumerate() {
        if entry.trim().is_empty() {
            continue;
        }
        let addr = parse_addr(format!("{VIEW} entry {}", i + 1), entry)?;
        if view.contains(&addr) {
            return Err(ViewError::Duplicate(addr));
        }
        view.push(addr);
    }
    if view.is_empty() {
        return Err(ViewError::EmptyView);
    }
    Ok(view)
}

fn parse_addr(var: String, text: &str) -> Result<SocketAddr, ViewError> {
    let addr: SocketAddr = text.trim().parse().map_err(|_| ViewError::BadAddress {
        var: var.clone(),
        text: text.to_owned(),
    })?;
    if addr.ip().is_unspecified() || addr.port() == 0 {
        return Err(ViewError::Undialable { var, addr });
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOUR: &str = "10.0.0.21:8080,10.0.0.22:8080,10.0.0.23:8080,10.0.0.24:8080";

    fn read(
        k: Option<&str>,
        view: Option<&str>,
        me: Option<&str>,
    ) -> Result<StaticView, ViewError> {
        StaticView::from_vars(|name| match name {
            K => k.map(str::to_owned),
            VIEW => view.map(str::to_owned),
            IPPORT => me.map(str::to_owned),
            _ => None,
        })
    }

    #[test]
    fn the_seed_example_reads() {
        let v = read(Some("2"), Some(FOUR), Some("10.0.0.23:8080")).unwrap();
        assert_eq!(v.k, 2);
        assert_eq!(v.view.len(), 4);
        assert_eq!(v.position(), 2);
        // Whitespace and a trailing comma are tolerated.
        let spaced = format!(" {} ,", FOUR.replace(',', " , "));
        let w = read(Some(" 2 "), Some(&spaced), Some(" 10.0.0.23:8080 ")).unwrap();
        assert_eq!(v, w);
        // IPv6 works as Rust writes it.
        let v6 = read(Some("1"), Some("[::1]:8080,[::1]:8081"), Some("[::1]:8081")).unwrap();
        assert_eq!(v6.position(), 1);
    }

    #[test]
    fn missing_variables_are_named() {
        assert_eq!(
            read(None, Some(FOUR), Some("10.0.0.21:8080")),
            Err(ViewError::Missing(K))
        );
        assert_eq!(
            read(Some("2"), None, Some("10.0.0.21:8080")),
            Err(ViewError::Missing(VIEW))
        );
        assert_eq!(
            read(Some("2"), Some(FOUR), None),
            Err(ViewError::Missing(IPPORT))
        );
    }

    #[test]
    fn bad_k_is_refused() {
        for k in ["0", "-1", "two", "", "4294967296"] {
            let got = read(Some(k), Some(FOUR), Some("10.0.0.21:8080"));
            assert_eq!(got, Err(ViewError::BadK(k.to_owned())), "K={k:?}");
        }
        assert_eq!(
            read(Some("5"), Some(FOUR), Some("10.0.0.21:8080")),
            Err(ViewError::TooFewNodes { k: 5, nodes: 4 })
        );
    }

    #[test]
    fn bad_addresses_are_refused() {
        let bad = read(
            Some("1"),
            Some("10.0.0.21:8080,localhost:8080"),
            Some("10.0.0.21:8080"),
        );
        assert!(matches!(bad, Err(ViewError::BadAddress { ref var, .. }) if var == "VIEW entry 2"));
        let bad = read(Some("1"), Some("10.0.0.21"), Some("10.0.0.21:8080"));
        assert!(matches!(bad, Err(ViewError::BadAddress { .. })));
        let bad = read(Some("1"), Some(FOUR), Some("10.0.0.21:80800"));
        assert!(matches!(bad, Err(ViewError::BadAddress { ref var, .. }) if var == IPPORT));
        let bad = read(Some("1"), Some("0.0.0.0:8080"), Some("0.0.0.0:8080"));
        assert!(matches!(bad, Err(ViewError::Undialable { .. })));
        let bad = read(Some("1"), Some("10.0.0.21:0"), Some("10.0.0.21:0"));
        assert!(matches!(bad, Err(ViewError::Undialable { .. })));
        assert_eq!(
            read(Some("1"), Some(" , ,"), Some("10.0.0.21:8080")),
            Err(ViewError::EmptyView)
        );
        let twice = "10.0.0.21:8080,10.0.0.21:8080";
        assert!(matches!(
            read(Some("1"), Some(twice), Some("10.0.0.21:8080")),
            Err(ViewError::Duplicate(_))
        ));
    }

    #[test]
    fn ipport_must_be_in_the_view() {
        // The seed's own fourth example has this typo (23:80 in VIEW, 23:8080 as IPPORT twice).
        let view = "10.0.0.21:8080,10.0.0.22:8080,10.0.0.23:80,10.0.0.24:8080";
        let got = read(Some("2"), Some(view), Some("10.0.0.23:8080"));
        assert!(matches!(got, Err(ViewError::NotInView { .. })), "{got:?}");
        let message = got.unwrap_err().to_string();
        assert!(
            message.starts_with("IPPORT 10.0.0.23:8080 is not in VIEW"),
            "{message}"
        );
    }

    #[test]
    fn messages_are_one_line() {
        let errors = [
            ViewError::Missing(K),
            ViewError::BadK("x".into()),
            ViewError::EmptyView,
            ViewError::TooFewNodes { k: 3, nodes: 2 },
        ];
        for e in errors {
            assert!(!e.to_string().contains('\n'), "{e}");
        }
    }
}
