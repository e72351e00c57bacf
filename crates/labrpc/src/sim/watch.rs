//! `tokio::sync::watch` with a deterministic wake-up order, for the
//! simulator (the seam re-exports it as [`crate::runtime::watch`]).
//!
//! tokio's watch spreads the receivers waiting in `changed()` over eight
//! `Notify`s, each picking one with tokio's thread-local RNG, and a send
//! wakes them `Notify` by `Notify`. That RNG is seeded from a
//! process-global counter, not from madsim's seed: the second run of a seed
//! in the same process (madsim's determinism check, or one seed after
//! another in one test binary) woke the same waiters in another order, and
//! the runs diverged (two readers of an rsm's applied index, woken by one
//! apply, ran in swapped order). Here all waiters share one `Notify`, which
//! wakes them in the order they began to wait.
//!
//! Only the part of tokio's API distcache uses, with the same semantics: a
//! version per send, `changed` marks the newest value seen and fails once
//! every sender is gone and nothing new is left, `send` fails (and stores
//! nothing) when no receiver is left.

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tokio::sync::Notify;

/// The errors, as in `tokio::sync::watch::error`.
pub mod error {
    use std::fmt;

    /// `Sender::send` found no receiver; the value is handed back.
    #[derive(PartialEq, Eq, Clone, Copy)]
    pub struct SendError<T>(pub T);

    impl<T> fmt::Debug for SendError<T> {
        fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.debug_struct("SendError").finish_non_exhaustive()
        }
    }

    impl<T> fmt::Display for SendError<T> {
        fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("channel closed")
        }
    }

    impl<T> std::error::Error for SendError<T> {}

    /// `Receiver::changed` found the sender gone and nothing new.
    #[derive(Debug, PartialEq, Eq, Clone)]
    pub struct RecvError(pub(super) ());

    impl fmt::Display for RecvError {
        fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
            formatter.write_str("channel closed")
        }
    }

    impl std::error::Error for RecvError {}
}

struct State<T> {
    value: T,
    /// Raised by every send.
    version: u64,
    /// The sender is gone.
    closed: bool,
}

struct Shared<T> {
    state: RwLock<State<T>>,
    receivers: AtomicUsize,
    /// Every receiver waiting in `changed`, in the order it began to wait.
    changed: Notify,
}

impl<T> Shared<T> {
    fn read(&self) -> RwLockReadGuard<'_, State<T>> {
        self.state.read().expect("watch lock poisoned")
    }

    fn write(&self) -> RwLockWriteGuard<'_, State<T>> {
        self.state.write().expect("watch lock poisoned")
    }
}

/// A borrowed value; holds a read lock, so do not send while holding it.
pub struct Ref<'a, T> {
    state: RwLockReadGuard<'a, State<T>>,
}

impl<T> Deref for Ref<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.state.value
    }
}

/// The sending half (one per channel, as distcache uses it).
pub struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// A receiving half; clones start from the version this one has seen.
pub struct Receiver<T> {
    shared: Arc<Shared<T>>,
    seen: u64,
}

/// A channel holding `init`, which the receiver has seen.
pub fn channel<T>(init: T) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: RwLock::new(State {
            value: init,
            version: 0,
            closed: false,
        }),
        receivers: AtomicUsize::new(1),
        changed: Notify::new(),
    });
    let receiver = Receiver {
        shared: Arc::clone(&shared),
        seen: 0,
    };
    (Sender { shared }, receiver)
}

impl<T> Sender<T> {
    /// Stores `value` and wakes the receivers; fails (storing nothing)
    /// when none is left.
    pub fn send(&self, value: T) -> Result<(), error::SendError<T>> {
        if self.shared.receivers.load(Ordering::SeqCst) == 0 {
            return Err(error::SendError(value));
        }
        self.send_replace(value);
        Ok(())
    }

    /// Stores `value` even with no receiver; returns the previous one.
    pub fn send_replace(&self, value: T) -> T {
        let previous = {
            let mut state = self.shared.write();
            state.version += 1;
            std::mem::replace(&mut state.value, value)
        };
        self.shared.changed.notify_waiters();
        previous
    }

    /// Lets `modify` change the value in place; when it returns true, a
    /// new version is published and the receivers are woken.
    pub fn send_if_modified(&self, modify: impl FnOnce(&mut T) -> bool) -> bool {
        let modified = {
            let mut state = self.shared.write();
            let modified = modify(&mut state.value);
            if modified {
                state.version += 1;
            }
            modified
        };
        if modified {
            self.shared.changed.notify_waiters();
        }
        modified
    }

    /// The current value.
    pub fn borrow(&self) -> Ref<'_, T> {
        Ref {
            state: self.shared.read(),
        }
    }

    /// A new receiver that has seen the current value.
    pub fn subscribe(&self) -> Receiver<T> {
        let seen = self.shared.read().version;
        self.shared.receivers.fetch_add(1, Ordering::SeqCst);
        Receiver {
            shared: Arc::clone(&self.shared),
            seen,
        }
    }

    /// How many receivers are left.
    pub fn receiver_count(&self) -> usize {
        self.shared.receivers.load(Ordering::SeqCst)
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.shared.write().closed = true;
        self.shared.changed.notify_waiters();
    }
}

impl<T> Receiver<T> {
    /// Waits for a version this receiver has not seen and marks it seen;
    /// fails once the sender is gone with nothing new left.
    pub async fn changed(&mut self) -> Result<(), error::RecvError> {
        loop {
            // Registered before the check, so a send in between wakes it.
            let notified = self.shared.changed.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let state = self.shared.read();
                if state.version != self.seen {
                    self.seen = state.version;
                    return Ok(());
                }
                if state.closed {
                    return Err(error::RecvError(()));
                }
            }
            notified.await;
        }
    }

    /// The current value, without marking it seen.
    pub fn borrow(&self) -> Ref<'_, T> {
        Ref {
            state: self.shared.read(),
        }
    }

    /// The current value, marked seen.
    pub fn borrow_and_update(&mut self) -> Ref<'_, T> {
        let state = self.shared.read();
        self.seen = state.version;
        Ref { state }
    }

    /// Whether a version this receiver has not seen is there; fails once
    /// the sender is gone.
    pub fn has_changed(&self) -> Result<bool, error::RecvError> {
        let state = self.shared.read();
        if state.closed {
            return Err(error::RecvError(()));
        }
        Ok(state.version != self.seen)
    }
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        self.shared.receivers.fetch_add(1, Ordering::SeqCst);
        Receiver {
            shared: Arc::clone(&self.shared),
            seen: self.seen,
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        self.shared.receivers.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Sender<T> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Sender")
            .field("value", &self.shared.read().value)
            .finish()
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Receiver")
            .field("value", &self.shared.read().value)
            .field("seen", &self.seen)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::Mutex;

    use super::*;

    /// Wakes: which waiter's waker was woken, in order.
    struct Recorder {
        waiter: usize,
        woken: Arc<Mutex<Vec<usize>>>,
    }

    impl std::task::Wake for Recorder {
        fn wake(self: Arc<Self>) {
            self.woken.lock().unwrap().push(self.waiter);
        }
    }

    #[test]
    fn one_send_wakes_the_waiters_in_the_order_they_began_to_wait() {
        let (sender, receiver) = channel(0u64);
        let mut receivers: Vec<_> = (0..16).map(|_| receiver.clone()).collect();
        let woken = Arc::new(Mutex::new(Vec::new()));
        let mut waits: Vec<_> = receivers
            .iter_mut()
            .map(|receiver| Box::pin(receiver.changed()))
            .collect();
        for (waiter, wait) in waits.iter_mut().enumerate() {
            let waker = std::task::Waker::from(Arc::new(Recorder {
                waiter,
                woken: Arc::clone(&woken),
            }));
            let pending = wait
                .as_mut()
                .poll(&mut std::task::Context::from_waker(&waker))
                .is_pending();
            assert!(pending);
        }
        sender.send(1).expect("receivers alive");
        assert_eq!(*woken.lock().unwrap(), (0..16).collect::<Vec<_>>());
    }

    #[madsim::test]
    async fn the_semantics_of_tokio_watch() {
        let (sender, mut receiver) = channel(0u64);
        // The initial value counts as seen; a subscriber sees the current one.
        assert!(!receiver.has_changed().unwrap());
        assert!(sender.send_if_modified(|value| {
            *value = 1;
            true
        }));
        assert!(!sender.send_if_modified(|_| false));
        let mut late = sender.subscribe();
        assert!(!late.has_changed().unwrap());
        receiver.changed().await.unwrap();
        assert_eq!(*receiver.borrow(), 1);
        assert_eq!(sender.send_replace(2), 1);
        assert_eq!(*late.borrow_and_update(), 2);
        assert!(!late.has_changed().unwrap());
        drop(late);
        drop(receiver);
        // No receiver left: send stores nothing; send_replace still does.
        assert_eq!(sender.send(3), Err(error::SendError(3)));
        assert_eq!(*sender.borrow(), 2);
        let mut receiver = sender.subscribe();
        sender.send(4).unwrap();
        drop(sender);
        // Something new is still delivered, then the closed channel fails.
        receiver.changed().await.unwrap();
        assert_eq!(*receiver.borrow(), 4);
        assert!(receiver.changed().await.is_err());
    }
}
