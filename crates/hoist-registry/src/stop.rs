//! The caller's request to stop a push part-way ([`crate::PushOptions::stop_when`]).
//!
//! A push is asked before it begins a blob (before the session is opened or resumed), before
//! every PATCH, after a PATCH that failed (instead of retrying it), between the frames of a
//! streamed blob's prefix read again from its source and while it waits for one
//! ([`StopHook::until_asked`]: `upload/prefix.rs`; that read sends nothing, so stopping there
//! loses nothing) and before the `PUT` that completes the upload.
//! A request in flight is never cut: the chunk being sent is finished,
//! so the registry holds a whole chunk and a session it can continue. Cutting a PATCH mid-body
//! (dropping the push's future) is what loses the session with distribution 2.8: it keeps the
//! partial body but its `_state` token still names the old offset, and refuses the session on
//! the next request.

use std::sync::Arc;
use std::time::Duration;

/// How often [`StopHook::until_asked`] asks the caller's closure.
const POLL: Duration = Duration::from_millis(50);

/// The caller's "stop before the next request" ([`crate::PushOptions::stop_when`]); never set
/// by default.
#[derive(Clone, Default)]
pub(crate) struct StopHook(Option<Arc<dyn Fn() -> bool + Send + Sync>>);

impl StopHook {
    pub(crate) fn new(f: impl Fn() -> bool + Send + Sync + 'static) -> StopHook {
        StopHook(Some(Arc::new(f)))
    }

    /// Whether the caller asked to stop.
    pub(crate) fn asked(&self) -> bool {
        self.0.as_ref().is_some_and(|f| f())
    }

    /// Resolves once the caller asks to stop, asking every [`POLL`] (the caller's closure is
    /// a flag to read, not a future to wait on); never without a hook. For a wait that sends
    /// nothing and may be given up at any point (a frame of a prefix read from the source),
    /// to race against it: the stop need not wait out the client's timeout.
    pub(crate) async fn until_asked(&self) {
        if self.0.is_none() {
            return std::future::pending().await;
        }
        while !self.asked() {
            tokio::time::sleep(POLL).await;
        }
    }
}

impl std::fmt::Debug for StopHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Some(_) => "StopHook(set)",
            None => "StopHook(none)",
        })
    }
}

/// Two hooks are the same when they are one closure (clones of one set of options), or both
/// unset: a closure cannot be compared by what it does.
impl PartialEq for StopHook {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
}

impl Eq for StopHook {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn asks_the_closure_each_time() {
        assert!(!StopHook::default().asked());
        static FLAG: AtomicBool = AtomicBool::new(false);
        let hook = StopHook::new(|| FLAG.load(Ordering::SeqCst));
        assert!(!hook.asked());
        FLAG.store(true, Ordering::SeqCst);
        assert!(hook.asked());
        assert_eq!(hook, hook.clone());
        assert_ne!(hook, StopHook::new(|| true));
        assert_ne!(hook, StopHook::default());
        assert_eq!(StopHook::default(), StopHook::default());
        assert_eq!(format!("{hook:?}"), "StopHook(set)");
    }

    #[tokio::test]
    async fn until_asked_ends_once_the_closure_says_so() {
        static FLAG: AtomicBool = AtomicBool::new(false);
        let hook = StopHook::new(|| FLAG.load(Ordering::SeqCst));
        let wait = hook.until_asked();
        tokio::pin!(wait);
        let before = tokio::time::timeout(3 * POLL, &mut wait).await;
        assert!(before.is_err(), "ended before the stop");
        FLAG.store(true, Ordering::SeqCst);
        tokio::time::timeout(10 * POLL, wait)
            .await
            .expect("ends within a poll of the stop");
        let unset = StopHook::default();
        let never = tokio::time::timeout(3 * POLL, unset.until_asked()).await;
        assert!(never.is_err(), "no hook: no stop");
    }
}
