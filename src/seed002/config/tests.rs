use std::net::SocketAddr;

use super::{Config, ConfigError, LoadError};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn err(text: &str) -> ConfigError {
    Config::parse(text).expect_err("the text is malformed")
}

/// The seed's sample coordinator file, with the line breaks its extraction lost put back.
const SEED_COORDINATOR: &str = "! Coordinator configuration
! 2020/05/07 11:25:33
!
! The argument name and value are separated by whitespace in the configuration file.
!
! Mode of process, coordinator OR participant
mode coordinator
!
! The address and port the coordinator process is listening on.
! Note that the address and port are separated by character ':'.
coordinator_info 127.0.0.1:8001
!
! Address and port information of all participants.
! Three lines specifies three participants' addresses.
participant_info 127.0.0.1:8002
participant_info 127.0.0.1:8003
participant_info 127.0.0.1:8004
";

/// The seed's sample participant file, likewise.
const SEED_PARTICIPANT: &str = "!
! Participant configuration
! 2020/05/07 11:25:33
!
! The argument name and value are separated by whitespace in the configuration file.
!
! Mode of process, coordinator OR participant
mode participant
!
! The address and port the participant process is listening on.
participant_info 127.0.0.1:8002
!
! The address and port the coordinator process is listening on.
coordinator_info 127.0.0.1:8001
";

#[test]
fn the_seeds_coordinator_file() {
    assert_eq!(
        Config::parse(SEED_COORDINATOR),
        Ok(Config::Coordinator {
            address: addr("127.0.0.1:8001"),
            participants: vec![
                addr("127.0.0.1:8002"),
                addr("127.0.0.1:8003"),
                addr("127.0.0.1:8004"),
            ],
        })
    );
}

#[test]
fn the_seeds_participant_file() {
    assert_eq!(
        Config::parse(SEED_PARTICIPANT),
        Ok(Config::Participant {
            address: addr("127.0.0.1:8002"),
            coordinator: addr("127.0.0.1:8001"),
        })
    );
}

#[test]
fn crlf_tabs_blank_lines_indented_comments_and_a_bom_are_accepted() {
    let text = "\u{feff}mode\tparticipant\r\n\r\n   ! indented comment\r\n  participant_info   10.0.0.2:9000  \r\ncoordinator_info [::1]:9001";
    assert_eq!(
        Config::parse(text),
        Ok(Config::Participant {
            address: addr("10.0.0.2:9000"),
            coordinator: addr("[::1]:9001"),
        })
    );
}

#[test]
fn mode_may_come_after_other_parameters() {
    let text = "coordinator_info 127.0.0.1:1\nparticipant_info 127.0.0.1:2\nmode coordinator\n";
    assert!(matches!(
        Config::parse(text),
        Ok(Config::Coordinator { .. })
    ));
}

#[test]
fn a_comment_is_not_parsed_even_if_it_looks_like_a_parameter() {
    let text = "!mode coordinator\nmode participant\nparticipant_info 127.0.0.1:2\ncoordinator_info 127.0.0.1:1\n! foo bar baz";
    assert!(matches!(
        Config::parse(text),
        Ok(Config::Participant { .. })
    ));
}

#[test]
fn an_unknown_key_names_its_line() {
    let text = "mode coordinator\ncoordinator_info 127.0.0.1:1\n!\nfoo bar\n";
    let e = err(text);
    assert_eq!(
        e,
        ConfigError::UnknownKey {
            line: 4,
            key: "foo".into()
        }
    );
    assert!(e.to_string().starts_with("line 4: unknown key \"foo\""));
}

#[test]
fn names_are_case_sensitive() {
    assert!(matches!(
        err("Mode coordinator"),
        ConfigError::UnknownKey { line: 1, .. }
    ));
    assert!(matches!(
        err("mode Coordinator"),
        ConfigError::BadMode { line: 1, .. }
    ));
}

#[test]
fn a_parameter_without_a_value() {
    assert_eq!(
        err("mode coordinator\ncoordinator_info\n"),
        ConfigError::MissingValue {
            line: 2,
            key: "coordinator_info"
        }
    );
}

#[test]
fn a_word_after_the_value() {
    let e = err("mode participant extra");
    assert_eq!(
        e,
        ConfigError::ExtraText {
            line: 1,
            key: "mode",
            extra: "extra".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "line 1: unexpected \"extra\" after the value of \"mode\""
    );
}

#[test]
fn a_bad_mode() {
    assert_eq!(
        err("mode master"),
        ConfigError::BadMode {
            line: 1,
            value: "master".into()
        }
    );
}

#[test]
fn bad_addresses() {
    for value in [
        "localhost:8001",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:99999",
        "127.0.0.1:0",
        ":8001",
    ] {
        let text = format!("mode participant\nparticipant_info {value}\n");
        assert_eq!(
            err(&text),
            ConfigError::BadAddress {
                line: 2,
                value: value.into()
            },
            "{value}"
        );
    }
}

#[test]
fn a_repeated_mode_or_coordinator() {
    assert_eq!(
        err("mode participant\n!\nmode participant"),
        ConfigError::Repeated {
            line: 3,
            key: "mode",
            first: 1
        }
    );
    let e = err("coordinator_info 127.0.0.1:1\ncoordinator_info 127.0.0.1:2");
    assert_eq!(
        e,
        ConfigError::Repeated {
            line: 2,
            key: "coordinator_info",
            first: 1
        }
    );
    assert_eq!(
        e.to_string(),
        "line 2: second coordinator_info line (the first is on line 1)"
    );
}

#[test]
fn a_participant_names_only_itself() {
    let text = "mode participant\nparticipant_info 127.0.0.1:2\ncoordinator_info 127.0.0.1:1\nparticipant_info 127.0.0.1:3\n";
    assert_eq!(
        err(text),
        ConfigError::Repeated {
            line: 4,
            key: "participant_info",
            first: 2
        }
    );
}

#[test]
fn the_coordinator_lists_each_participant_once() {
    let text = "mode coordinator\ncoordinator_info 127.0.0.1:1\nparticipant_info 127.0.0.1:2\nparticipant_info 127.0.0.1:2\n";
    assert_eq!(
        err(text),
        ConfigError::RepeatedParticipant {
            line: 4,
            address: addr("127.0.0.1:2"),
            first: 3
        }
    );
}

#[test]
fn a_participant_cannot_share_the_coordinators_address() {
    let text = "mode coordinator\nparticipant_info 127.0.0.1:1\ncoordinator_info 127.0.0.1:1\n";
    assert_eq!(
        err(text),
        ConfigError::ParticipantIsCoordinator {
            line: 2,
            address: addr("127.0.0.1:1")
        }
    );
}

#[test]
fn what_each_mode_needs() {
    assert_eq!(err(""), ConfigError::NoMode);
    assert_eq!(
        err("! only comments\n\ncoordinator_info 127.0.0.1:1"),
        ConfigError::NoMode
    );
    assert_eq!(
        err("mode coordinator\nparticipant_info 127.0.0.1:2"),
        ConfigError::Missing {
            key: "coordinator_info",
            mode: "coordinator"
        }
    );
    let e = err("mode coordinator\ncoordinator_info 127.0.0.1:1");
    assert_eq!(
        e,
        ConfigError::Missing {
            key: "participant_info",
            mode: "coordinator"
        }
    );
    assert_eq!(
        e.to_string(),
        "no participant_info line (the coordinator needs one)"
    );
    assert_eq!(
        err("mode participant\ncoordinator_info 127.0.0.1:1"),
        ConfigError::Missing {
            key: "participant_info",
            mode: "participant"
        }
    );
    assert_eq!(
        err("mode participant\nparticipant_info 127.0.0.1:2"),
        ConfigError::Missing {
            key: "coordinator_info",
            mode: "participant"
        }
    );
}

#[test]
fn a_line_that_is_not_utf8() {
    assert_eq!(
        Config::parse_bytes(b"mode participant\n! caf\xe9\n"),
        Err(ConfigError::NotUtf8 { line: 2 })
    );
}

#[test]
fn errors_are_one_line() {
    for text in [
        "foo",
        "mode",
        "mode a b",
        "mode x",
        "mode participant\nparticipant_info x",
        "mode participant\nmode participant",
        "",
    ] {
        let message = err(text).to_string();
        assert!(!message.contains('\n'), "{message:?}");
    }
}

#[test]
fn loading_names_the_file() {
    let dir = std::env::temp_dir().join(format!("kv-seed002-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("bad.conf");
    std::fs::write(&path, "mode coordinator\nfoo 1\n").expect("write");
    let e = Config::load(&path).expect_err("malformed");
    assert!(matches!(e, LoadError::Parse { .. }));
    assert_eq!(
        e.to_string(),
        format!(
            "{}: line 2: unknown key \"foo\" (expected mode, coordinator_info or participant_info)",
            path.display()
        )
    );
    let missing = dir.join("missing.conf");
    let e = Config::load(&missing).expect_err("absent");
    assert!(matches!(e, LoadError::Read { .. }));
    assert!(e.to_string().starts_with(&missing.display().to_string()));
    let _ = std::fs::remove_dir_all(&dir);
}
