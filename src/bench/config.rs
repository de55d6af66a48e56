//! What a bench run is asked to do: the operation mix, when to stop, keys and value size.
//!
//! Everything here is validated before a single operation is sent, so a typo in `--mix` is a
//! one-line error instead of a half-run benchmark.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use kv_ports::kv::MAX_VALUE_BYTES;

/// The operation kinds the bench issues; one row of the report each.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Read a key.
    Get,
    /// Write a key unconditionally.
    Put,
    /// Compare-and-swap against the value the client last saw.
    Cas,
    /// Remove a key.
    Delete,
}

impl Kind {
    /// Every kind, in report order.
    pub const ALL: [Kind; 4] = [Kind::Get, Kind::Put, Kind::Cas, Kind::Delete];

    /// The name used in reports and in the history's `op` field.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Get => "get",
            Kind::Put => "put",
            Kind::Cas => "cas",
            Kind::Delete => "delete",
        }
    }

    /// Position in [`Kind::ALL`], for per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Accepts the names users type in `--mix` (`del` and `delete` both name deletes).
    fn parse(word: &str) -> Option<Kind> {
        match word.trim().to_ascii_lowercase().as_str() {
            "get" => Some(Kind::Get),
            "put" => Some(Kind::Put),
            "cas" => Some(Kind::Cas),
            "del" | "delete" => Some(Kind::Delete),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a bench configuration is unusable; each message names the offending input.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// A `--mix` entry is not `kind=weight`.
    #[error("invalid mix entry '{0}': expected kind=weight, e.g. get=50")]
    MixSyntax(String),
    /// A `--mix` entry names no known operation.
    #[error("unknown operation '{0}' in mix: expected get, put, cas or del")]
    MixKind(String),
    /// A `--mix` weight is not a non-negative integer.
    #[error("invalid weight '{weight}' for {kind} in mix: expected a non-negative integer")]
    MixWeight {
        /// The kind whose weight is wrong.
        kind: String,
        /// The weight as typed.
        weight: String,
    },
    /// A kind appears twice in `--mix`.
    #[error("operation '{0}' appears more than once in mix")]
    MixDuplicate(String),
    /// Every weight is zero, so no operation could ever be chosen.
    #[error("mix weights sum to zero: give at least one operation a positive weight")]
    MixEmpty,
    /// `--keys 0`.
    #[error("--keys must be at least 1")]
    NoKeys,
    /// `--ops 0`.
    #[error("--ops must be at least 1")]
    NoOps,
    /// `--duration` is zero, negative or not a number.
    #[error("--duration must be a positive number of seconds, got {0}")]
    BadDuration(f64),
    /// Values larger than the store accepts would all be rejected.
    #[error(
        "--value-size {0} exceeds the largest value the store accepts ({MAX_VALUE_BYTES} bytes)"
    )]
    ValueTooLarge(usize),
}

/// How often each operation kind is chosen, as integer weights.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mix {
    weights: [u64; 4],
    total: u64,
}

impl Mix {
    /// The weight of one kind (0 when the kind is not in the mix).
    pub fn weight(&self, kind: Kind) -> u64 {
        self.weights[kind.index()]
    }

    /// The kinds with a positive weight: the rows the report shows.
    pub fn kinds(&self) -> Vec<Kind> {
        Kind::ALL
            .into_iter()
            .filter(|k| self.weight(*k) > 0)
            .collect()
    }

    /// Maps a uniformly random number onto a kind, proportionally to the weights.
    pub fn pick(&self, random: u64) -> Kind {
        let mut point = random % self.total;
        for kind in Kind::ALL {
            let weight = self.weight(kind);
            if point < weight {
                return kind;
            }
            point -= weight;
        }
        unreachable!("the weights sum to `total`, so some kind contains the point")
    }
}

impl Default for Mix {
    /// `get=50,put=30,cas=10,del=10`, the documented default of `kv bench`.
    fn default() -> Self {
        Mix {
            weights: [50, 30, 10, 10],
            total: 100,
        }
    }
}

impl FromStr for Mix {
    type Err = ConfigError;

    /// Parses `get=50,put=30,cas=10,del=10`; kinds left out get weight 0.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut weights: [Option<u64>; 4] = [None; 4];
        for entry in text.split(',').filter(|e| !e.trim().is_empty()) {
            let (name, weight) = entry
                .split_once('=')
                .ok_or_else(|| ConfigError::MixSyntax(entry.trim().to_owned()))?;
            let kind = Kind::parse(name).ok_or_else(|| ConfigError::MixKind(name.trim().into()))?;
            let weight = weight
                .trim()
                .parse::<u64>()
                .map_err(|_| ConfigError::MixWeight {
                    kind: kind.name().to_owned(),
                    weight: weight.trim().to_owned(),
                })?;
            let slot = &mut weights[kind.index()];
            if slot.replace(weight).is_some() {
                return Err(ConfigError::MixDuplicate(kind.name().to_owned()));
            }
        }
        let weights = weights.map(|w| w.unwrap_or(0));
        let total = weights
            .iter()
            .try_fold(0u64, |sum, w| sum.checked_add(*w))
            .ok_or_else(|| ConfigError::MixSyntax(text.to_owned()))?;
        if total == 0 {
            return Err(ConfigError::MixEmpty);
        }
        Ok(Mix { weights, total })
    }
}

/// When the closed loop ends.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Stop {
    /// After this many operations in total, over all clients.
    Ops(u64),
    /// After this much time; operations in flight at the deadline still complete.
    Duration(Duration),
}

impl Stop {
    /// The number of operations used when neither `--ops` nor `--duration` is given.
    pub const DEFAULT_OPS: u64 = 10_000;

    /// Turns the `--ops` / `--duration` flags into a stop rule (the CLI makes them exclusive;
    /// with neither, [`Stop::DEFAULT_OPS`] operations).
    pub fn from_flags(ops: Option<u64>, duration_secs: Option<f64>) -> Result<Stop, ConfigError> {
        match (ops, duration_secs) {
            (_, Some(secs)) => {
                let valid = secs.is_finite() && secs > 0.0;
                let duration = valid
                    .then(|| Duration::try_from_secs_f64(secs).ok())
                    .flatten()
                    .ok_or(ConfigError::BadDuration(secs))?;
                Ok(Stop::Duration(duration))
            }
            (Some(0), None) => Err(ConfigError::NoOps),
            (Some(n), None) => Ok(Stop::Ops(n)),
            (None, None) => Ok(Stop::Ops(Self::DEFAULT_OPS)),
        }
    }
}

/// A whole bench run's parameters; the number of clients is the number of sessions handed
/// to [`run`](super::run), since each client is one session of the cluster.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// When to stop.
    pub stop: Stop,
    /// Keys are `k0` .. `k{keys-1}`, chosen uniformly.
    pub keys: u64,
    /// How often each kind is chosen.
    pub mix: Mix,
    /// Bytes per written value (values are never shorter than their unique tag, e.g.
    /// `c3-17-`, so that every write stays distinguishable in the history).
    pub value_size: usize,
    /// Where to record the history, if anywhere.
    pub history: Option<PathBuf>,
    /// Seeds every client's random choices, so runs over the same service repeat exactly.
    pub seed: u64,
    /// Whether to draw a progress bar on stderr (it stays hidden anyway when stderr is not a
    /// terminal).
    pub progress: bool,
}

impl BenchConfig {
    /// A configuration with the CLI's defaults (1000 keys, the default mix, 16-byte values,
    /// no history, progress bar on) and the given stop rule.
    pub fn new(stop: Stop) -> Self {
        BenchConfig {
            stop,
            keys: 1000,
            mix: Mix::default(),
            value_size: 16,
            history: None,
            seed: 0x6b76_2d62_656e_6368,
            progress: true,
        }
    }

    /// Checks the numeric limits; the mix and stop rule are valid by construction.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.keys == 0 {
            return Err(ConfigError::NoKeys);
        }
        if self.value_size > MAX_VALUE_BYTES {
            return Err(ConfigError::ValueTooLarge(self.value_size));
        }
        match self.stop {
            Stop::Ops(0) => Err(ConfigError::NoOps),
            Stop::Duration(d) if d.is_zero() => Err(ConfigError::BadDuration(0.0)),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_default_mix() {
        let mix: Mix = "get=50,put=30,cas=10,del=10".parse().unwrap();
        assert_eq!(mix, Mix::default());
        assert_eq!(mix.kinds(), Kind::ALL.to_vec());
    }

    #[test]
    fn missing_kinds_get_zero_weight_and_spaces_are_allowed() {
        let mix: Mix = " PUT = 1 , delete=0 ".parse().unwrap();
        assert_eq!(mix.kinds(), vec![Kind::Put]);
        assert_eq!(mix.pick(12345), Kind::Put);
    }

    #[test]
    fn rejects_bad_mixes_with_clear_errors() {
        let cases = [
            ("get", ConfigError::MixSyntax("get".into())),
            ("scan=5", ConfigError::MixKind("scan".into())),
            (
                "get=-1",
                ConfigError::MixWeight {
                    kind: "get".into(),
                    weight: "-1".into(),
                },
            ),
            (
                "get=1.5",
                ConfigError::MixWeight {
                    kind: "get".into(),
                    weight: "1.5".into(),
                },
            ),
            ("get=1,get=2", ConfigError::MixDuplicate("get".into())),
            ("get=0,put=0", ConfigError::MixEmpty),
            ("", ConfigError::MixEmpty),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<Mix>(), Err(expected), "mix {text:?}");
        }
    }

    #[test]
    fn pick_follows_the_weights() {
        let mix: Mix = "get=1,put=3".parse().unwrap();
        let picks: Vec<Kind> = (0..4).map(|r| mix.pick(r)).collect();
        assert_eq!(picks, vec![Kind::Get, Kind::Put, Kind::Put, Kind::Put]);
    }

    #[test]
    fn stop_flags() {
        assert_eq!(Stop::from_flags(Some(5), None), Ok(Stop::Ops(5)));
        assert_eq!(Stop::from_flags(Some(0), None), Err(ConfigError::NoOps));
        assert_eq!(
            Stop::from_flags(None, None),
            Ok(Stop::Ops(Stop::DEFAULT_OPS))
        );
        assert_eq!(
            Stop::from_flags(None, Some(1.5)),
            Ok(Stop::Duration(Duration::from_millis(1500)))
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(Stop::from_flags(None, Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn validate_checks_limits() {
        let mut config = BenchConfig::new(Stop::Ops(1));
        assert_eq!(config.validate(), Ok(()));
        config.keys = 0;
        assert_eq!(config.validate(), Err(ConfigError::NoKeys));
        config.keys = 1;
        config.value_size = MAX_VALUE_BYTES + 1;
        assert!(matches!(
            config.validate(),
            Err(ConfigError::ValueTooLarge(_))
        ));
    }
}
