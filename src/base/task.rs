//! A spawned task that lives no longer than what started it.

/// Aborts its task when dropped: a future that spawned work of its own and is itself dropped
/// before its end (a runbook step past its time limit, a session that fails early) does not
/// leave that work running for nobody. A task that has ended is not touched.
pub struct AbortOnDrop(pub tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A task of its own, owned by this handle: it runs on a worker from the moment it is
/// spawned (a request's TLS handshake runs where the request is polled, so critical requests
/// get one each rather than waiting their turn on the caller's thread), [`Scoped::join`]
/// gives its output, and dropping the handle first aborts it.
pub struct Scoped<T> {
    task: tokio::task::JoinHandle<T>,
    _guard: AbortOnDrop,
}

/// Spawns `future` as a [`Scoped`] task.
pub fn scoped<F>(future: F) -> Scoped<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = tokio::spawn(future);
    Scoped {
        _guard: AbortOnDrop(task.abort_handle()),
        task,
    }
}

impl<T> Scoped<T> {
    /// The task's output; `None` if it panicked.
    pub async fn join(self) -> Option<T> {
        let Scoped { task, _guard } = self;
        task.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_task_ends_with_its_guard() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
        let task = tokio::spawn(async move {
            let _tx = tx;
            std::future::pending::<()>().await;
        });
        drop(AbortOnDrop(task.abort_handle()));
        assert!(task.await.is_err_and(|e| e.is_cancelled()));
        assert!(rx.recv().await.is_none(), "what the task held is dropped");
    }

    #[tokio::test]
    async fn a_scoped_task_gives_its_output_and_is_aborted_with_its_handle() {
        assert_eq!(scoped(async { 7 }).join().await, Some(7));
        let alive = std::sync::Arc::new(());
        let held = alive.clone();
        drop(scoped(async move {
            let _held = held;
            std::future::pending::<()>().await;
        }));
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert_eq!(
            std::sync::Arc::strong_count(&alive),
            1,
            "dropping the handle aborted the task and dropped what it held"
        );
    }
}
