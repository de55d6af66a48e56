//! Seed 002's configuration file: what this process is and where everyone listens.
//!
//! The format, as the seed gives it: a line starting with `!` is a comment; every other line is
//! a parameter, its name and value separated by whitespace. The parameters are `mode`
//! (`coordinator` or `participant`), `coordinator_info ip:port` (where the coordinator listens;
//! exactly one in every file) and `participant_info ip:port` (a participant's own address, once
//! in its file; every participant's, one line each, in the coordinator's file).
//!
//! Where the seed is silent the parser is lenient only when no meaning can be lost: blank lines
//! and leading or trailing whitespace are ignored, CRLF line ends and a UTF-8 byte-order mark
//! are accepted, and `mode` may appear on any line (the seed says it comes first, which is a
//! promise about the files, not a rule whose breach could make a file ambiguous). Everything
//! else that does not fit, a repeated parameter, a stray word after a value, an unknown name,
//! is refused with the line it is on, since guessing would start a process with the wrong
//! role or address and the mistake would only show as a hang.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// What a configuration file asks this process to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Config {
    /// The coordinator: keeps no data, answers clients on `address`.
    Coordinator {
        /// `coordinator_info`: where clients (and participants) reach the coordinator.
        address: SocketAddr,
        /// Every `participant_info`, in file order.
        participants: Vec<SocketAddr>,
    },
    /// A participant: holds the data, listens on `address`.
    Participant {
        /// Its own `participant_info`.
        address: SocketAddr,
        /// `coordinator_info`.
        coordinator: SocketAddr,
    },
}

/// A line of a configuration file that does not fit the format, or a parameter the file's
/// mode needs but lacks. Each message is one line naming the file's line where there is one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The line is not UTF-8 text.
    #[error("line {line}: not UTF-8 text")]
    NotUtf8 {
        /// The line (from 1).
        line: usize,
    },
    /// A parameter name the format does not have.
    #[error(
        "line {line}: unknown key \"{key}\" (expected mode, coordinator_info or participant_info)"
    )]
    UnknownKey {
        /// The line.
        line: usize,
        /// The name found.
        key: String,
    },
    /// A parameter without a value.
    #[error("line {line}: \"{key}\" needs a value")]
    MissingValue {
        /// The line.
        line: usize,
        /// The parameter.
        key: &'static str,
    },
    /// More than one word after the parameter name.
    #[error("line {line}: unexpected \"{extra}\" after the value of \"{key}\"")]
    ExtraText {
        /// The line.
        line: usize,
        /// The parameter.
        key: &'static str,
        /// The first word too many.
        extra: String,
    },
    /// `mode` with a value other than `coordinator` or `participant`.
    #[error("line {line}: mode must be coordinator or participant, not \"{value}\"")]
    BadMode {
        /// The line.
        line: usize,
        /// The value found.
        value: String,
    },
    /// A value that is not an IP address and a non-zero port.
    #[error("line {line}: \"{value}\" is not an ip:port address (like 127.0.0.1:8001)")]
    BadAddress {
        /// The line.
        line: usize,
        /// The value found.
        value: String,
    },
    /// A parameter given twice where the file's mode allows it once.
    #[error("line {line}: second {key} line (the first is on line {first})")]
    Repeated {
        /// The line of the second occurrence.
        line: usize,
        /// The parameter.
        key: &'static str,
        /// The line of the first.
        first: usize,
    },
    /// The same participant listed twice in the coordinator's file.
    #[error("line {line}: participant {address} is listed twice (first on line {first})")]
    RepeatedParticipant {
        /// The line of the second listing.
        line: usize,
        /// The address.
        address: SocketAddr,
        /// The line of the first.
        first: usize,
    },
    /// A participant at the coordinator's address.
    #[error("line {line}: {address} is the coordinator's address, not a participant's")]
    ParticipantIsCoordinator {
        /// The participant's line.
        line: usize,
        /// The shared address.
        address: SocketAddr,
    },
    /// No `mode` line.
    #[error("no mode line (expected \"mode coordinator\" or \"mode participant\")")]
    NoMode,
    /// A parameter the mode needs is absent.
    #[error("no {key} line (the {mode} needs one)")]
    Missing {
        /// The parameter.
        key: &'static str,
        /// The mode that needs it.
        mode: &'static str,
    },
}

/// Why a configuration file could not be used: the path, then what was wrong.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file does not fit the format.
    #[error("{}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        source: ConfigError,
    },
}

const MODE: &str = "mode";
const COORDINATOR_INFO: &str = "coordinator_info";
const PARTICIPANT_INFO: &str = "participant_info";

/// A value and the line it came from, so errors found after the last line can still point.
type Lined<T> = (usize, T);

/// What the lines said, before the mode decides which of it is needed.
#[derive(Default)]
struct Seen {
    mode: Option<Lined<Mode>>,
    coordinator: Option<Lined<SocketAddr>>,
    participants: Vec<Lined<SocketAddr>>,
}

#[derive(Clone, Copy)]
enum Mode {
    Coordinator,
    Participant,
}

impl Config {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse_bytes(&bytes).map_err(|source| LoadError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Parses a file's text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse_bytes(text.as_bytes())
    }

    /// Parses a file's bytes; a line that is not UTF-8 is an error naming it.
    pub fn parse_bytes(bytes: &[u8]) -> Result<Config, ConfigError> {
        let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
        let mut seen = Seen::default();
        for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
            let line = index + 1;
            let text = std::str::from_utf8(raw).map_err(|_| ConfigError::NotUtf8 { line })?;
            seen.line(line, text)?;
        }
        seen.finish()
    }
}

impl Seen {
    /// Takes in one line of the file.
    fn line(&mut self, line: usize, text: &str) -> Result<(), ConfigError> {
        let text = text.trim();
        if text.is_empty() || text.starts_with('!') {
            return Ok(());
        }
        let mut words = text.split_whitespace();
        let Some(name) = words.next() else {
            return Ok(());
        };
        let key = match name {
            MODE => MODE,
            COORDINATOR_INFO => COORDINATOR_INFO,
            PARTICIPANT_INFO => PARTICIPANT_INFO,
            _ => {
                return Err(ConfigError::UnknownKey {
                    line,
                    key: name.to_owned(),
                })
            }
        };
        let value = words
            .next()
            .ok_or(ConfigError::MissingValue { line, key })?;
        if let Some(extra) = words.next() {
            let extra = extra.to_owned();
            return Err(ConfigError::ExtraText { line, key, extra });
        }
        match key {
            MODE => {
                once(&self.mode, line, key)?;
                self.mode = Some((line, mode(line, value)?));
            }
            COORDINATOR_INFO => {
                once(&self.coordinator, line, key)?;
                self.coordinator = Some((line, address(line, value)?));
            }
            _ => {
                let address = address(line, value)?;
                if let Some(&(first, _)) = self.participants.iter().find(|(_, a)| *a == address) {
                    return Err(ConfigError::RepeatedParticipant {
                        line,
                        address,
                        first,
                    });
                }
                self.participants.push((line, address));
            }
        }
        Ok(())
    }

    /// Checks that the mode has what it needs.
    fn finish(self) -> Result<Config, ConfigError> {
        let (_, mode) = self.mode.ok_or(ConfigError::NoMode)?;
        let mode_name = match mode {
            Mode::Coordinator => "coordinator",
            Mode::Participant => "participant",
        };
        let missing = |key| ConfigError::Missing {
            key,
            mode: mode_name,
        };
        let (_, coordinator) = self.coordinator.ok_or(missing(COORDINATOR_INFO))?;
        if let Some(&(line, address)) = self.participants.iter().find(|(_, a)| *a == coordinator) {
            return Err(ConfigError::ParticipantIsCoordinator { line, address });
        }
        match mode {
            Mode::Coordinator => {
                if self.participants.is_empty() {
                    return Err(missing(PARTICIPANT_INFO));
                }
                Ok(Config::Coordinator {
                    address: coordinator,
                    participants: self.participants.into_iter().map(|(_, a)| a).collect(),
                })
            }
            Mode::Participant => match self.participants.as_slice() {
                [] => Err(missing(PARTICIPANT_INFO)),
                [(_, address)] => Ok(Config::Participant {
                    address: *address,
                    coordinator,
                }),
                [(first, _), (line, _), ..] => Err(ConfigError::Repeated {
                    line: *line,
                    key: PARTICIPANT_INFO,
                    first: *first,
                }),
            },
        }
    }
}

/// An error if `slot` already holds a value from an earlier line.
fn once<T>(slot: &Option<Lined<T>>, line: usize, key: &'static str) -> Result<(), ConfigError> {
    match slot {
        Some((first, _)) => Err(ConfigError::Repeated {
            line,
            key,
            first: *first,
        }),
        None => Ok(()),
    }
}

fn mode(line: usize, value: &str) -> Result<Mode, ConfigError> {
    match value {
        "coordinator" => Ok(Mode::Coordinator),
        "participant" => Ok(Mode::Participant),
        _ => Err(ConfigError::BadMode {
            line,
            value: value.to_owned(),
        }),
    }
}

/// An `ip:port` with a port something can connect to.
fn address(line: usize, value: &str) -> Result<SocketAddr, ConfigError> {
    match value.parse::<SocketAddr>() {
        Ok(address) if address.port() != 0 => Ok(address),
        _ => Err(ConfigError::BadAddress {
            line,
            value: value.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests;
