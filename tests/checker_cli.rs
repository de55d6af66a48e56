//! The `kv check` command: verdict on the first line, exit codes 0/1/2/3, errors with line
//! numbers, standard input, and the HTML page.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use anyhow::Result;

const GOOD: &str = r#"{"client":0,"key":"x","op":"put","value":1,"call":0,"return":10,"ok":true}
{"client":1,"key":"x","op":"get","output":1,"call":5,"return":15,"ok":true}
"#;

const BAD: &str = r#"{"client":0,"key":"x","op":"put","value":1,"call":0,"return":10,"ok":true}
{"client":1,"key":"x","op":"put","value":2,"call":20,"return":30,"ok":true}
{"client":2,"key":"x","op":"get","output":1,"call":40,"return":50,"ok":true}
"#;

/// A file unique to this test process, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str, contents: &str) -> Result<Self> {
        let path =
            std::env::temp_dir().join(format!("kv-checker-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, contents)?;
        Ok(Scratch(path))
    }

    fn arg(&self) -> &str {
        self.0.to_str().expect("utf-8 temp path")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn kv_check(args: &[&str], stdin: Option<&str>) -> Result<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kv"))
        .arg("check")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut pipe = child.stdin.take().expect("stdin is piped");
    pipe.write_all(stdin.unwrap_or("").as_bytes())?;
    drop(pipe);
    Ok(child.wait_with_output()?)
}

fn check_file(name: &str, contents: &str) -> Result<Output> {
    let file = Scratch::new(name, contents)?;
    kv_check(&[file.arg()], None)
}

fn first_line(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn good_file_exits_0() -> Result<()> {
    let out = check_file("good.jsonl", GOOD)?;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(first_line(&out), "linearizable");
    Ok(())
}

#[test]
fn bad_file_exits_1_and_explains() -> Result<()> {
    let out = check_file("bad.jsonl", BAD)?;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(first_line(&out), "not linearizable");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("key \"x\""), "{text}");
    assert!(text.contains("line 3"), "{text}");
    Ok(())
}

#[test]
fn standard_input_is_read_with_dash() -> Result<()> {
    let out = kv_check(&["-"], Some(BAD))?;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(first_line(&out), "not linearizable");
    Ok(())
}

#[test]
fn bad_json_exits_3_with_line_number() -> Result<()> {
    let out = check_file("syntax.jsonl", &format!("{GOOD}{{\"client\": 1,\n"))?;
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("line 3: invalid JSON"),
        "{}",
        stderr(&out)
    );
    Ok(())
}

#[test]
fn missing_field_exits_3() -> Result<()> {
    let line = r#"{"client":1,"key":"x","op":"get","output":1,"return":15,"ok":true}"#;
    let out = check_file("missing.jsonl", &format!("{GOOD}{line}\n"))?;
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("line 3: missing field \"call\""),
        "{}",
        stderr(&out)
    );
    Ok(())
}

#[test]
fn unknown_op_exits_3() -> Result<()> {
    let line = r#"{"client":1,"key":"x","op":"append","value":1,"call":1,"return":15,"ok":true}"#;
    let out = check_file("unknown_op.jsonl", &format!("{line}\n"))?;
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("line 1: unknown variant \"append\""),
        "{}",
        stderr(&out)
    );
    Ok(())
}

#[test]
fn missing_file_exits_3() -> Result<()> {
    let out = kv_check(&["/nonexistent/history.jsonl"], None)?;
    assert_eq!(out.status.code(), Some(3));
    Ok(())
}

#[test]
fn zero_timeout_answers_unknown_with_exit_2() -> Result<()> {
    let file = Scratch::new("timeout.jsonl", BAD)?;
    let out = kv_check(&[file.arg(), "--timeout", "0"], None)?;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(first_line(&out), "unknown");
    Ok(())
}

#[test]
fn html_page_is_written_for_a_violation() -> Result<()> {
    let file = Scratch::new("html.jsonl", BAD)?;
    let page = Scratch::new("html.html", "")?;
    let out = kv_check(&[file.arg(), "--html", page.arg()], None)?;
    assert_eq!(out.status.code(), Some(1));
    let html = std::fs::read_to_string(&page.0)?;
    assert!(html.contains("<svg") && html.contains("blocker"));
    Ok(())
}
