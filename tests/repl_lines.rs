//! `kv::repl::execute_line` against an in-memory store: every command, its output style and
//! its error messages; and that no input whatsoever makes it panic.

use kv::repl::{execute_line, split_words, Outcome, ReplBackend, StatusPending};
use kv::service::{KvService, MemoryService, Pending, ServiceError};
use kv_ports::kv::{KvOp, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use proptest::prelude::*;
use proptest::test_runner::RngSeed;

fn print(text: &str) -> Outcome {
    Outcome::Print(text.to_owned())
}

/// Runs a script of (line, expected outcome) against one fresh store.
async fn script(steps: &[(&str, Outcome)]) {
    let store = MemoryService::new();
    for (line, expected) in steps {
        assert_eq!(&execute_line(line, &store).await, expected, "line {line:?}");
    }
}

#[tokio::test]
async fn commands_in_redis_cli_style() {
    script(&[
        ("get k", print("(nil)")),
        ("put k v", print("OK")),
        ("GET k", print("\"v\"")),
        ("put k 'hello world'", print("OK")),
        ("get k", print("\"hello world\"")),
        ("put k \"say \\\"hi\\\"\\n\"", print("OK")),
        ("get k", print("\"say \\\"hi\\\"\\n\"")),
        ("cas k nil x", print("(integer) 0")),
        ("cas new nil x", print("(integer) 1")),
        ("Cas new x y", print("(integer) 1")),
        ("get new", print("\"y\"")),
        ("put n nil", print("OK")),
        ("cas n \"nil\" z", print("(integer) 1")),
        ("get n", print("\"z\"")),
        ("del n", print("(integer) 1")),
        ("DEL n", print("(integer) 0")),
        ("get n", print("(nil)")),
        ("", Outcome::Silent),
        ("   \t ", Outcome::Silent),
        ("quit", Outcome::Quit),
        ("EXIT", Outcome::Quit),
        ("status", print("in-memory store: one process, no groups")),
    ])
    .await;
}

#[tokio::test]
async fn bad_input_gets_one_line_errors() {
    let long_key = format!("get {}", "k".repeat(MAX_KEY_BYTES + 1));
    let long_value = format!("put k {}", "v".repeat(MAX_VALUE_BYTES + 1));
    script(&[
        (
            "get",
            print("(error) ERR wrong number of arguments for 'get' (usage: get KEY)"),
        ),
        (
            "put k",
            print("(error) ERR wrong number of arguments for 'put' (usage: put KEY VALUE)"),
        ),
        (
            "cas k v",
            print("(error) ERR wrong number of arguments for 'cas' (usage: cas KEY EXPECTED NEW)"),
        ),
        (
            "del a b",
            print("(error) ERR wrong number of arguments for 'del' (usage: del KEY)"),
        ),
        (
            "quit now",
            print("(error) ERR wrong number of arguments for 'quit' (usage: quit)"),
        ),
        (
            "set k v",
            print("(error) ERR unknown command 'set', type 'help' for the list of commands"),
        ),
        (
            "\"bad\ncmd\" x",
            print("(error) ERR unknown command 'bad\\ncmd', type 'help' for the list of commands"),
        ),
        (
            "put k \"open",
            print("(error) ERR unterminated double quote"),
        ),
        (
            "put k 'open",
            print("(error) ERR unterminated single quote"),
        ),
        (
            "put k \"\\xg0\"",
            print("(error) ERR invalid escape \\x: expected two hexadecimal digits"),
        ),
        (
            &long_key,
            print(&format!(
                "(error) ERR key too long: {} bytes (at most {MAX_KEY_BYTES})",
                MAX_KEY_BYTES + 1
            )),
        ),
        (
            &long_value,
            print(&format!(
                "(error) ERR value too long: {} bytes (at most {MAX_VALUE_BYTES})",
                MAX_VALUE_BYTES + 1
            )),
        ),
    ])
    .await;
}

#[tokio::test]
async fn help_lists_the_commands() {
    let Outcome::Print(help) = execute_line("HELP", &MemoryService::new()).await else {
        panic!("help prints");
    };
    for usage in [
        "get KEY",
        "put KEY VALUE",
        "cas KEY EXPECTED NEW",
        "del KEY",
        "status",
        "quit",
    ] {
        assert!(help.contains(usage), "{usage} missing from\n{help}");
    }
}

/// A backend whose every call fails, as a cluster without quorum would.
struct Down;

impl KvService for Down {
    fn execute(&self, _op: KvOp) -> Pending<'_> {
        Box::pin(async { Err(ServiceError::Unknown("timed out".into())) })
    }
}

impl ReplBackend for Down {
    fn status(&self) -> StatusPending<'_> {
        Box::pin(async { Err(ServiceError::Unavailable("coordinator unreachable".into())) })
    }
}

#[tokio::test]
async fn service_errors_are_printed_as_errors() {
    assert_eq!(
        execute_line("put k v", &Down).await,
        print("(error) outcome unknown: timed out")
    );
    assert_eq!(
        execute_line("status", &Down).await,
        print("(error) unavailable: coordinator unreachable")
    );
}

#[test]
fn quoting_parser() {
    let words = split_words(r#"cas "my key" nil 'it''s' "a\tb" x"y z"w"#).unwrap();
    let texts: Vec<(String, bool)> = words.iter().map(|w| (w.text(), w.quoted)).collect();
    assert_eq!(
        texts,
        vec![
            ("cas".to_owned(), false),
            ("my key".to_owned(), true),
            ("nil".to_owned(), false),
            ("its".to_owned(), true),
            ("a\tb".to_owned(), true),
            ("xy zw".to_owned(), true),
        ]
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

/// Many cases (each takes microseconds) from a fixed seed, so runs repeat; no persistence
/// file, since a failure is shrunk and printed anyway.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x6b76_2d72_6570_6c00),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn never_panics_on_any_input(line in any::<String>()) {
        let store = MemoryService::new();
        let _ = runtime().block_on(execute_line(&line, &store));
    }

    #[test]
    fn never_panics_on_command_like_input(
        command in prop::sample::select(vec!["get", "PUT", "cas", "del", "status", "help", "quit", "x"]),
        rest in "[ a-z\"'\\\\\\x00-\\x1f\\x7fnilx0-9é]{0,30}",
    ) {
        let store = MemoryService::new();
        let line = format!("{command} {rest}");
        let outcome = runtime().block_on(execute_line(&line, &store));
        if let Outcome::Print(text) = outcome {
            prop_assert!(!text.is_empty());
        }
    }
}
