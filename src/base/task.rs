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
}
