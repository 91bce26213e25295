//! Blob pushes that stop together, between chunks.
//!
//! A push's future dropped mid-PATCH cuts its chunk, and distribution 2.8 then forgets the
//! session (it keeps the partial body, but its session token still names the old offset): the
//! next run sends that blob from the start. So the pushes of an image are never dropped while
//! they send: each is given a stop hook, asked before every request, that holds once a signal
//! came ([`crate::interrupt::raised`]) or another push of the group failed. Every push then
//! finishes the chunk it is sending, saves its state and ends; the group waits for all of them.
//! The wait after a signal is bounded by [`crate::interrupt::PUSH_GRACE`]; a second signal
//! drops everything at once.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hoist_registry::PushOptions;

/// The pushes of one image (or one export): see the module.
#[derive(Debug, Clone, Default)]
pub struct PushGroup {
    /// Set when a push of the group failed: the others stop after their chunks in flight.
    failed: Arc<AtomicBool>,
}

impl PushGroup {
    /// A group none of whose pushes failed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Options for a push of the group: mount from `mount_from` when given; stop before the
    /// next request once a signal came or the group is stopped.
    pub fn options(&self, mount_from: Option<String>) -> PushOptions {
        let failed = self.failed.clone();
        let mut options = PushOptions::new()
            .stop_when(move || failed.load(Ordering::Relaxed) || crate::interrupt::raised());
        options.mount_from = mount_from;
        options
    }

    /// Ask every push of the group to stop after its chunk in flight.
    pub fn stop(&self) {
        self.failed.store(true, Ordering::Relaxed);
    }

    /// Run `pushes` side by side until every one has ended. The first to fail stops the
    /// others (after their chunks in flight); the error returned is the first that is not a
    /// stop (the cause), else the first stop (a signal's).
    ///
    /// # Errors
    /// As above.
    pub async fn run<T>(
        &self,
        pushes: impl IntoIterator<Item = impl Future<Output = hoist_registry::Result<T>>>,
    ) -> hoist_registry::Result<Vec<T>> {
        let watched = pushes.into_iter().map(|push| async move {
            let result = push.await;
            if result.is_err() {
                self.stop();
            }
            result
        });
        let results = futures_util::future::join_all(watched).await;
        let mut first_stop = None;
        let mut done = Vec::with_capacity(results.len());
        for result in results {
            match result {
                Ok(value) => done.push(value),
                Err(e) if e.is_stopped() => {
                    first_stop.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        match first_stop {
            Some(e) => Err(e),
            None => Ok(done),
        }
    }
}

/// Of two failures, the one to report: a stop only when there is no other cause.
pub fn cause(first: anyhow::Error, next: anyhow::Error) -> anyhow::Error {
    match is_stop(&first) && !is_stop(&next) {
        true => next,
        false => first,
    }
}

/// Whether `e` is a push stopped on request (a signal, or another push's failure).
pub fn is_stop(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<hoist_registry::Error>()
            .is_some_and(hoist_registry::Error::is_stopped)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::time::Duration;

    /// One push fails; the others, between two chunks, are asked to stop and waited for; the
    /// failure is what is returned, not the stops it caused.
    #[tokio::test]
    async fn a_failure_stops_the_others_and_is_the_error() {
        let (stopped, refused) = (errors(true).await, errors(false).await);
        assert!(stopped.is_stopped() && !refused.is_stopped());
        let group = PushGroup::new();
        let asked = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let waiting = |g: PushGroup, e: hoist_registry::Error| {
            let asked = asked.clone();
            async move {
                while !g.failed.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                asked.fetch_add(1, Ordering::SeqCst);
                Err::<u32, _>(e)
            }
        };
        let failing = async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err::<u32, _>(refused)
        };
        let stopped_too = errors(true).await;
        let pushes: Vec<Pin<Box<dyn Future<Output = hoist_registry::Result<u32>>>>> = vec![
            Box::pin(waiting(group.clone(), stopped)),
            Box::pin(failing),
            Box::pin(waiting(group.clone(), stopped_too)),
        ];
        let e = group.run(pushes).await.expect_err("failed");
        assert!(!e.is_stopped(), "{e}");
        assert_eq!(
            asked.load(Ordering::SeqCst),
            2,
            "both others were waited for"
        );
    }

    #[tokio::test]
    async fn a_stop_is_reported_only_without_another_cause() {
        let mut stops = Vec::new();
        for _ in 0..5 {
            stops.push(anyhow::Error::new(errors(true).await));
        }
        let other = || anyhow::anyhow!("the export failed");
        let mut stop = || stops.pop().expect("a stop");
        assert!(!is_stop(&cause(stop(), other())));
        assert!(!is_stop(&cause(other(), stop())));
        assert!(is_stop(&cause(stop(), stop())));
        assert!(is_stop(&stop().context("pushing blobs to a registry")));
        assert!(!is_stop(&other()));
    }

    /// A library error as a caller meets one: a push stopped before it began (`stop`), or
    /// one whose file is missing.
    async fn errors(stop: bool) -> hoist_registry::Error {
        let client = hoist_registry::Client::builder()
            .no_docker_config()
            .build()
            .expect("client");
        let repo = hoist_registry::Repo::new("127.0.0.1:9", "a/b").expect("repo");
        let source = hoist_registry::BlobSource {
            path: "/nonexistent/blob".into(),
            digest: hoist_oci::Digest::sha256_of(b""),
            size: 0,
        };
        let options = match stop {
            true => PushOptions::new().stop_when(|| true),
            false => PushOptions::new(),
        };
        let progress = hoist_registry::Progress::none();
        client
            .push_blob(&repo, &source, &options, &progress)
            .await
            .expect_err("no push")
    }
}
