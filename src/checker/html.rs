//! A self-contained HTML page (inline CSS, SVG and JS; nothing fetched) drawing the failing
//! key's operations as bars on a timeline, one row per client, so a violation can be read at a
//! glance.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use super::history::{History, Operation, Outcome};
use super::report::{action, last_writer, render_report};
use super::verdict::{Counterexample, Verdict};

/// Most operations drawn; long keys are cut to a window around the violation.
const MAX_SHOWN: usize = 300;
/// Prefix operations (counted from its end) that define the window.
const FOCUS_PREFIX: usize = 20;
const ROW_HEIGHT: usize = 26;
const LEFT: usize = 110;
const TOP: usize = 30;

/// How an operation takes part in the counterexample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// In the longest linearizable prefix, at this (0-based) position.
    Prefix(usize),
    /// The operation that cannot follow the prefix.
    Blocker,
    /// Neither: still waiting to be linearized, or irrelevant.
    Other,
}

/// An operation placed on the drawing.
struct Bar<'a> {
    id: usize,
    op: &'a Operation,
    role: Role,
    lane: usize,
    x0: usize,
    x1: usize,
}

/// The page for a verdict. For a violation: the text report, the timeline of the failing key
/// and a table of the drawn operations; otherwise just the report (so a page left over from an
/// earlier run is never mistaken for this one).
pub fn render_html(history: &History, verdict: &Verdict) -> String {
    match verdict {
        Verdict::NotLinearizable(cex) => counterexample_page(history, cex),
        _ => {
            let report = render_report(history, verdict);
            format!(
                "{HEAD}<h1>kv check: {}</h1>\n<pre>{}</pre>\n</body>\n</html>\n",
                verdict.headline(),
                escape(&report)
            )
        }
    }
}

fn counterexample_page(history: &History, cex: &Counterexample) -> String {
    let shown = select(history, cex);
    let bars = layout(history, cex, &shown);
    let report = render_report(history, &Verdict::NotLinearizable(Box::new(cex.clone())));
    let key_ops = history.ops().iter().filter(|op| op.key == cex.key).count();
    let mut page = String::with_capacity(64 * 1024);
    page.push_str(HEAD);
    let _ = write!(
        page,
        "<h1>kv check: not linearizable</h1>\n<p>Key <code>{}</code>: showing {} of {} operations \
         (bars span call to return; click one for details).</p>\n",
        escape(history.key_name(cex.key)),
        bars.len(),
        key_ops
    );
    page.push_str(LEGEND);
    page.push_str("<div id=\"scroll\">");
    svg(&mut page, history, &bars);
    page.push_str("</div>\n<div id=\"detail\">Click an operation.</div>\n");
    let _ = write!(page, "<h2>Report</h2>\n<pre>{}</pre>\n", escape(&report));
    table(&mut page, history, &bars);
    page.push_str(SCRIPT);
    page.push_str("</body>\n</html>\n");
    page
}

/// The ids of the key's operations to draw. Operations called after the blocker returned play
/// no part (every prefix operation was called before that), so they are left out; of the
/// rest, all if few, otherwise those overlapping the window spanned by the end of the prefix
/// and the blocker.
fn select(history: &History, cex: &Counterexample) -> Vec<usize> {
    let ops = history.ops();
    let horizon = ops[cex.blocker].ret.unwrap_or(u64::MAX);
    let all: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].key == cex.key && ops[i].call <= horizon)
        .collect();
    if all.len() <= MAX_SHOWN {
        return all;
    }
    let focus = cex
        .prefix
        .iter()
        .rev()
        .take(FOCUS_PREFIX)
        .chain([&cex.blocker]);
    let (mut lo, mut hi) = (u64::MAX, 0);
    for &id in focus {
        lo = lo.min(ops[id].call);
        hi = hi.max(ops[id].ret.unwrap_or(ops[id].call));
    }
    let overlaps = |op: &Operation| op.call <= hi && op.ret.is_none_or(|r| r >= lo);
    let mut shown: Vec<usize> = all.into_iter().filter(|&i| overlaps(&ops[i])).collect();
    if shown.len() > MAX_SHOWN {
        // Keep the operations called closest to the blocker.
        let pivot = ops[cex.blocker].call;
        shown.sort_by_key(|&i| ops[i].call.abs_diff(pivot));
        shown.truncate(MAX_SHOWN);
    }
    let must = [Some(cex.blocker), last_writer(history, cex)];
    for id in must.into_iter().flatten() {
        if !shown.contains(&id) {
            shown.push(id);
        }
    }
    shown.sort_unstable();
    shown
}

/// Places the bars: x by rank of the distinct event times (keeps real-time order, drops the
/// gaps), rows per client, lanes inside a row where a client's bars overlap (an operation
/// with unknown outcome never ends).
fn layout<'a>(history: &'a History, cex: &Counterexample, shown: &[usize]) -> Vec<Bar<'a>> {
    let ops = history.ops();
    let times: BTreeSet<u64> = shown
        .iter()
        .flat_map(|&i| [Some(ops[i].call), ops[i].ret])
        .flatten()
        .collect();
    let rank: HashMap<u64, usize> = times.iter().enumerate().map(|(r, &t)| (t, r)).collect();
    let step = (1400 / times.len().max(1)).clamp(36, 80);
    let right = LEFT + (times.len() + 1) * step;
    let position: HashMap<usize, usize> = cex
        .prefix
        .iter()
        .enumerate()
        .map(|(n, &id)| (id, n))
        .collect();
    let mut order: Vec<usize> = shown.to_vec();
    order.sort_by_key(|&i| (ops[i].client, ops[i].call));
    let mut lanes_end: HashMap<(u32, usize), usize> = HashMap::new();
    let mut bars = Vec::with_capacity(order.len());
    for id in order {
        let op = &ops[id];
        let x0 = LEFT + rank[&op.call] * step + 2;
        let x1 = op.ret.map_or(right, |r| LEFT + rank[&r] * step + step - 2);
        let lane = (0..)
            .find(|&l| lanes_end.get(&(op.client, l)).is_none_or(|&end| end < x0))
            .expect("some lane is free");
        lanes_end.insert((op.client, lane), x1);
        let role = match position.get(&id) {
            Some(&n) => Role::Prefix(n),
            None if id == cex.blocker => Role::Blocker,
            None => Role::Other,
        };
        bars.push(Bar {
            id,
            op,
            role,
            lane,
            x0,
            x1,
        });
    }
    bars
}

/// Rows: one per (client, lane), clients in order of first appearance.
fn rows(bars: &[Bar<'_>]) -> Vec<(u32, usize)> {
    let set: BTreeSet<(u32, usize)> = bars.iter().map(|b| (b.op.client, b.lane)).collect();
    set.into_iter().collect()
}

fn svg(page: &mut String, history: &History, bars: &[Bar<'_>]) {
    let rows = rows(bars);
    let row_of: HashMap<(u32, usize), usize> =
        rows.iter().enumerate().map(|(r, &k)| (k, r)).collect();
    let width = bars.iter().map(|b| b.x1).max().unwrap_or(LEFT) + 240;
    let height = TOP + rows.len() * ROW_HEIGHT + 10;
    let _ = writeln!(
        page,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\">"
    );
    for (r, &(client, lane)) in rows.iter().enumerate() {
        let y = TOP + r * ROW_HEIGHT;
        let label = match lane {
            0 => format!("client {}", history.client_name(client)),
            _ => String::new(),
        };
        let _ = writeln!(
            page,
            "<line class=\"row\" x1=\"{LEFT}\" x2=\"{width}\" y1=\"{}\" y2=\"{}\"/>\
             <text class=\"client\" x=\"4\" y=\"{}\">{}</text>",
            y + ROW_HEIGHT / 2,
            y + ROW_HEIGHT / 2,
            y + ROW_HEIGHT / 2 + 4,
            escape(&label)
        );
    }
    for bar in bars {
        let y = TOP + row_of[&(bar.op.client, bar.lane)] * ROW_HEIGHT + 3;
        draw_bar(page, history, bar, y);
    }
    if let Some(blocker) = bars.iter().find(|b| b.role == Role::Blocker) {
        let _ = writeln!(
            page,
            "<line class=\"deadline\" x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{height}\"/>\
             <text class=\"deadline\" x=\"{}\" y=\"{}\">return of the blocked operation</text>",
            TOP - 12,
            blocker.x1 + 4,
            TOP - 8,
            x = blocker.x1
        );
    }
    page.push_str("</svg>");
}

fn draw_bar(page: &mut String, history: &History, bar: &Bar<'_>, y: usize) {
    let (class, tag) = match (bar.role, bar.op.outcome) {
        (Role::Blocker, _) => ("blocker", "cannot follow the prefix".to_owned()),
        (Role::Prefix(n), _) => ("prefix", format!("linearized #{}", n + 1)),
        (Role::Other, Outcome::Failed) => ("failed", "failed: ignored".to_owned()),
        (Role::Other, Outcome::Unknown) => {
            ("unknown", "unknown outcome, not linearized".to_owned())
        }
        (Role::Other, Outcome::Ok) => ("other", "not in the prefix".to_owned()),
    };
    let open = if bar.op.ret.is_none() { " open" } else { "" };
    let text = action(history, bar.op);
    let label = match bar.role {
        Role::Prefix(n) => format!("#{} {text}", n + 1),
        _ => text.clone(),
    };
    let w = bar.x1.saturating_sub(bar.x0).max(4);
    let detail = format!(
        "line {} | client {} | {text} | call {} | return {} | {tag}",
        bar.op.line,
        history.client_name(bar.op.client),
        bar.op.call,
        bar.op.ret.map_or("never".to_owned(), |r| r.to_string()),
    );
    let _ = writeln!(
        page,
        "<g class=\"op {class}{open}\" data-detail=\"{}\" data-id=\"{}\">\
         <title>{}</title><rect x=\"{}\" y=\"{y}\" width=\"{w}\" height=\"{}\" rx=\"3\"/>\
         <text x=\"{}\" y=\"{}\">{}</text></g>",
        escape(&detail),
        bar.id,
        escape(&detail),
        bar.x0,
        ROW_HEIGHT - 6,
        bar.x0 + 3,
        y + ROW_HEIGHT / 2 + 1,
        escape(&clip(&label, w / 7))
    );
}

fn table(page: &mut String, history: &History, bars: &[Bar<'_>]) {
    let mut sorted: Vec<&Bar<'_>> = bars.iter().collect();
    sorted.sort_by_key(|b| (b.op.call, b.op.line));
    page.push_str(
        "<h2>Operations drawn</h2>\n<table><tr><th>line</th><th>client</th><th>operation</th>\
         <th>call</th><th>return</th><th>role</th></tr>\n",
    );
    for bar in sorted {
        let role = match bar.role {
            Role::Prefix(n) => format!("prefix #{}", n + 1),
            Role::Blocker => "cannot follow".to_owned(),
            Role::Other => String::new(),
        };
        let _ = writeln!(
            page,
            "<tr id=\"op{}\" class=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            bar.id,
            if bar.role == Role::Blocker { "blocker" } else { "" },
            bar.op.line,
            escape(history.client_name(bar.op.client)),
            escape(&action(history, bar.op)),
            bar.op.call,
            bar.op.ret.map_or("never".to_owned(), |r| r.to_string()),
            role
        );
    }
    page.push_str("</table>\n");
}

/// Cuts a label to fit `chars` characters.
fn clip(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    let kept: String = text.chars().take(chars.saturating_sub(1)).collect();
    format!("{kept}…")
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const HEAD: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>kv check: counterexample</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
code, pre, td { font-family: ui-monospace, monospace; font-size: 12px; }
#scroll { overflow-x: auto; border: 1px solid #ccc; background: #fcfcfc; }
svg text { font: 11px ui-monospace, monospace; pointer-events: none; }
svg .client { fill: #555; }
svg .row { stroke: #eee; }
svg line.deadline { stroke: #c62828; stroke-dasharray: 4 3; }
svg text.deadline { fill: #c62828; }
.op { cursor: pointer; }
.op rect { stroke-width: 1.5; }
.prefix rect { fill: #c8e6c9; stroke: #2e7d32; }
.blocker rect { fill: #ffcdd2; stroke: #c62828; stroke-width: 3; }
.other rect { fill: #e3e8f0; stroke: #607d8b; }
.unknown rect { fill: #fff8e1; stroke: #f9a825; }
.failed rect { fill: #f5f5f5; stroke: #bdbdbd; stroke-dasharray: 2 2; }
.open rect { stroke-dasharray: 6 3; }
.op.selected rect { stroke: #000; stroke-width: 3; }
.legend span { display: inline-block; padding: 1px 8px; margin-right: 8px; border: 1.5px solid; border-radius: 3px; }
#detail { margin: .6em 0; padding: .4em .6em; background: #f3f3f3; font-family: ui-monospace, monospace; font-size: 12px; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ddd; padding: 2px 8px; text-align: left; }
tr.blocker, tr.selected { background: #ffebee; }
</style>
</head>
<body>
"#;

const LEGEND: &str = r#"<p class="legend"><span style="background:#c8e6c9;border-color:#2e7d32">longest linearizable prefix (#order)</span><span style="background:#ffcdd2;border-color:#c62828">cannot follow it</span><span style="background:#e3e8f0;border-color:#607d8b">other completed</span><span style="background:#fff8e1;border-color:#f9a825;border-style:dashed">unknown outcome (never returns)</span><span style="background:#f5f5f5;border-color:#bdbdbd;border-style:dotted">failed (no effect)</span></p>
"#;

const SCRIPT: &str = r#"<script>
document.querySelectorAll('.op').forEach(function (g) {
  g.addEventListener('click', function () {
    document.querySelectorAll('.selected').forEach(function (e) { e.classList.remove('selected'); });
    g.classList.add('selected');
    document.getElementById('detail').textContent = g.dataset.detail;
    var row = document.getElementById('op' + g.dataset.id);
    if (row) { row.classList.add('selected'); }
  });
});
</script>
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{check_history, Options};

    #[test]
    fn page_is_self_contained_and_marks_the_blocker() {
        let text = r#"{"client":0,"key":"a<b","op":"put","value":1,"call":0,"return":10,"ok":true}
{"client":1,"key":"a<b","op":"put","value":2,"call":5,"ok":null}
{"client":2,"key":"a<b","op":"get","output":2,"call":20,"return":30,"ok":true}
{"client":2,"key":"a<b","op":"get","output":1,"call":40,"return":50,"ok":true}"#;
        let history = History::parse_str(text).unwrap();
        let verdict = check_history(&history, Options::default());
        assert!(matches!(verdict, Verdict::NotLinearizable(_)));
        let page = render_html(&history, &verdict);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<svg"));
        assert!(page.contains("class=\"op blocker\""));
        assert!(page.contains("a&lt;b"));
        assert!(!page.contains("http://") || !page.contains("src=\"http"));
        assert!(!page.contains("<link"));
    }

    #[test]
    fn other_verdicts_get_a_plain_page() {
        let history = History::parse_str("").unwrap();
        let page = render_html(&history, &Verdict::Linearizable);
        assert!(page.contains("<h1>kv check: linearizable</h1>"));
        assert!(!page.contains("<svg"));
    }
}
