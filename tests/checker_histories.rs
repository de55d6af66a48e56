//! Every reference history in `../shared/histories` gets the verdict listed for it, and every
//! counterexample names operations of the failing key.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result};
use kv::checker::{check_history, History, Options, Verdict};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/histories");

/// Expected verdicts of a folder: its `EXPECTED` file, or else the file names (`bad*` are
/// violations, `ok*` are not), which is how the hand-made folder is labelled.
fn expectations(dir: &Path) -> Result<Vec<(String, bool)>> {
    if let Ok(text) = std::fs::read_to_string(dir.join("EXPECTED")) {
        return text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                let (name, verdict) = line
                    .split_once(char::is_whitespace)
                    .context("bad EXPECTED line")?;
                Ok((name.to_owned(), verdict.trim() == "linearizable"))
            })
            .collect();
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".jsonl") {
            let linearizable = !name.starts_with("bad");
            assert!(
                linearizable == name.starts_with("ok"),
                "{name}: cannot tell its verdict"
            );
            names.push((name, linearizable));
        }
    }
    names.sort();
    Ok(names)
}

#[test]
fn reference_histories_get_their_listed_verdict() -> Result<()> {
    let root = Path::new(ROOT);
    if !root.is_dir() {
        println!("skipping: {} not found", root.display());
        return Ok(());
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for folder in ["jepsen-etcd", "handmade"] {
        let dir = root.join(folder);
        for (name, linearizable) in expectations(&dir)? {
            let file = File::open(dir.join(&name)).with_context(|| name.clone())?;
            let history = History::parse(BufReader::new(file)).with_context(|| name.clone())?;
            let verdict = check_history(&history, Options::default());
            match (&verdict, linearizable) {
                (Verdict::Linearizable, true) => {}
                (Verdict::NotLinearizable(cex), false) => {
                    let ops = history.ops();
                    assert!(cex
                        .prefix
                        .iter()
                        .chain([&cex.blocker])
                        .all(|&i| ops[i].key == cex.key));
                }
                _ => {
                    panic!("{folder}/{name}: expected linearizable={linearizable}, got {verdict:?}")
                }
            }
            *counts.entry(verdict.headline()).or_default() += 1;
        }
    }
    println!("verdicts: {counts:?}");
    Ok(())
}
