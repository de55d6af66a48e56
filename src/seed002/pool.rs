//! A [`KvService`] made of several one-at-a-time services, so concurrent RESP connections do
//! not queue behind each other.
//!
//! A [`Client`](crate::client::Client) runs one operation at a time (the replicas keep one
//! outstanding command per session), but the RESP server shares one service among all its
//! connections. The pool lends each operation an idle service, making a new one while fewer
//! than `max` exist, and waits for one to come back otherwise. A service whose operation was
//! abandoned midway (the connection went away) is dropped, not returned: its session may still
//! have a command outstanding, and a fresh session is cheap.

use std::sync::Mutex;

use kv_ports::kv::KvOp;
use tokio::sync::Semaphore;

use crate::service::{KvService, Pending, ServiceError};

/// Makes one more pooled service.
type Factory<S> = Box<dyn Fn() -> Result<S, ServiceError> + Send + Sync>;

/// See the module documentation.
pub(crate) struct Pool<S> {
    make: Factory<S>,
    idle: Mutex<Vec<S>>,
    /// One permit per service that may be lent at once.
    lendable: Semaphore,
}

impl<S: KvService> Pool<S> {
    /// A pool of at most `max` services (at least one), made by `make` when first needed.
    pub(crate) fn new(
        max: usize,
        make: impl Fn() -> Result<S, ServiceError> + Send + Sync + 'static,
    ) -> Self {
        Pool {
            make: Box::new(make),
            idle: Mutex::new(Vec::new()),
            lendable: Semaphore::new(max.max(1)),
        }
    }

    fn take(&self) -> Result<S, ServiceError> {
        match self.idle_list().pop() {
            Some(service) => Ok(service),
            None => (self.make)(),
        }
    }

    fn give_back(&self, service: S) {
        self.idle_list().push(service);
    }

    /// The idle list; a panic while it was held cannot have broken a `Vec` push or pop.
    fn idle_list(&self) -> std::sync::MutexGuard<'_, Vec<S>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S: KvService> KvService for Pool<S> {
    fn execute(&self, op: KvOp) -> Pending<'_> {
        Box::pin(async move {
            let _permit = self
                .lendable
                .acquire()
                .await
                .map_err(|_| ServiceError::Unavailable("the service pool is closed".into()))?;
            let service = self.take()?;
            let result = service.execute(op).await;
            self.give_back(service);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use kv_ports::kv::KvResult;

    use super::*;

    /// Counts how many of its kind run at once, and how many were made.
    #[derive(Default)]
    struct Gauge {
        made: AtomicUsize,
        running: AtomicUsize,
        peak: AtomicUsize,
    }

    struct Slow(Arc<Gauge>);

    impl KvService for Slow {
        fn execute(&self, _op: KvOp) -> Pending<'_> {
            Box::pin(async move {
                let now = self.0.running.fetch_add(1, Ordering::SeqCst) + 1;
                self.0.peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.0.running.fetch_sub(1, Ordering::SeqCst);
                Ok(KvResult::Written)
            })
        }
    }

    fn get() -> KvOp {
        KvOp::Get {
            key: Bytes::from_static(b"k"),
        }
    }

    fn pool(max: usize, gauge: &Arc<Gauge>) -> Arc<Pool<Slow>> {
        let g = gauge.clone();
        Arc::new(Pool::new(max, move || {
            g.made.fetch_add(1, Ordering::SeqCst);
            Ok(Slow(g.clone()))
        }))
    }

    #[tokio::test]
    async fn operations_run_concurrently_up_to_the_limit() {
        let gauge = Arc::new(Gauge::default());
        let pool = pool(3, &gauge);
        let ops = (0..10).map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.execute(get()).await })
        });
        for done in futures::future::join_all(ops).await {
            assert_eq!(done.expect("task"), Ok(KvResult::Written));
        }
        assert_eq!(gauge.peak.load(Ordering::SeqCst), 3);
        assert_eq!(gauge.made.load(Ordering::SeqCst), 3, "services are reused");
    }

    #[tokio::test]
    async fn an_abandoned_operation_drops_its_service() {
        let gauge = Arc::new(Gauge::default());
        let pool = pool(1, &gauge);
        let abandoned = tokio::time::timeout(Duration::from_millis(1), pool.execute(get())).await;
        assert!(abandoned.is_err());
        assert_eq!(pool.execute(get()).await, Ok(KvResult::Written));
        assert_eq!(gauge.made.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_factory_failure_is_the_operations_error() {
        let pool: Pool<Slow> = Pool::new(1, || Err(ServiceError::Unavailable("no".into())));
        assert_eq!(
            pool.execute(get()).await,
            Err(ServiceError::Unavailable("no".into()))
        );
    }
}
