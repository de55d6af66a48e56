//! The progress bar on stderr: operations done and the current rate.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::config::Stop;

/// A bar for the given stop rule, or a hidden one when `visible` is false. indicatif also
/// hides it by itself when stderr is not a terminal, so piped output stays clean.
pub(crate) fn bar(stop: Stop, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let target = ProgressDrawTarget::stderr();
    match stop {
        Stop::Ops(total) => ProgressBar::with_draw_target(Some(total), target)
            .with_style(style("{wide_bar} {pos}/{len} ops  {per_sec}  {elapsed}")),
        Stop::Duration(limit) => {
            let bar = ProgressBar::with_draw_target(None, target).with_style(style(&format!(
                "{{spinner}} {{pos}} ops  {{per_sec}}  {{elapsed}} of {}s",
                limit.as_secs_f64()
            )));
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}
