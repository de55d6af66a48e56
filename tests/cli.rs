//! The `kv` binary's command line, driven as a user would.

use std::process::Command;

fn kv(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kv"))
        .args(args)
        .output()
        .expect("kv runs")
}

#[test]
fn help_lists_every_command_of_the_interface() {
    let out = kv(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for command in [
        "local",
        "bootstrap",
        "node",
        "repl",
        "bench",
        "check",
        "master",
    ] {
        assert!(
            help.contains(command),
            "--help does not list {command}:\n{help}"
        );
    }
}

#[test]
fn bad_flags_get_a_short_error_and_a_non_zero_exit() {
    let out = kv(&["bench", "--bogus"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--bogus"), "{err}");
}

#[test]
fn a_bare_kv_prints_usage_and_fails() {
    let out = kv(&[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage"));
}

#[test]
fn join_and_leave_are_listed_and_check_their_flags() {
    let help = String::from_utf8(kv(&["--help"]).stdout).unwrap();
    assert!(help.contains("join") && help.contains("leave"), "{help}");
    let out = kv(&["leave", "--bootstrap", "127.0.0.1:1"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--node") && err.contains("--addr"), "{err}");
    let out = kv(&[
        "leave",
        "--bootstrap",
        "127.0.0.1:1",
        "--node",
        "n1",
        "--addr",
        "127.0.0.1:2",
    ]);
    assert!(!out.status.success(), "one of --node and --addr");
    let out = kv(&["join", "--listen", "127.0.0.1:1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bootstrap"));
    // Nobody listens at the coordinator's address: a one-line error, exit 1.
    let out = kv(&[
        "leave",
        "--bootstrap",
        "127.0.0.1:1",
        "--addr",
        "127.0.0.1:2",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.starts_with("kv: asking the coordinator at 127.0.0.1:1"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}
