//! When a long-running command should stop.

use tokio::sync::oneshot;

/// The environment variable `kv local` sets on its children: they stop when their standard
/// input closes, which happens when the parent exits for any reason (even `kill -9`), so no
/// child outlives the cluster it belonged to.
pub const PARENT_WATCH_ENV: &str = "KV_EXIT_WITH_PARENT";

/// Resolves on Ctrl-C, SIGTERM, or (under `kv local`) end of standard input.
pub async fn requested() {
    let parent = parent_gone();
    tokio::select! {
        () = kv::process::stop_signal() => {}
        () = parent => tracing::info!("parent exited; stopping"),
    }
}

/// Resolves when standard input closes, if [`PARENT_WATCH_ENV`] is set; never otherwise.
async fn parent_gone() {
    if std::env::var_os(PARENT_WATCH_ENV).is_none() {
        return std::future::pending().await;
    }
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = tx.send(());
    });
    let _ = rx.await;
}
