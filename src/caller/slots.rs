//! The sub-millisecond slot timer that paces every caller of the process.
//!
//! tokio's timer wheel has millisecond granularity: a `sleep_until` wakes about 1–1.5 ms after its deadline at any
//! load, so no frame would ever leave on time, and a thousand callers each holding a tokio timer cost the runtime
//! more than the sends themselves. Instead, one OS thread ([`SlotTimer::global`]) keeps the callers' next deadlines
//! in a heap, sleeps to the earliest one and wakes every caller whose deadline has passed, in one batch; it wakes at
//! most once per [`SLOT`] (250 µs), so under load the deadlines of a slot are served together. A caller is
//! therefore woken at its deadline when the timer is idle and at most one slot after it when busy (plus the OS's and
//! the runtime's wake-up latency), and never before it.
//!
//! Each caller holds one [`Waiter`]: re-arming it for the same deadline (the caller's `select!` loop builds a new
//! wait future every time an event arrives) only refreshes its waker; the heap gets one entry per deadline.
//! Entries left behind by a waiter that moved on are skipped when they come up.
//!
//! With only a few callers on the timer ([`SPIN_MAX_CALLERS`]), the last stretch is spun instead: the thread wakes a
//! caller [`SPIN`] before its deadline, and the caller's wait spins on its own thread until the deadline passes. A
//! parked worker thread takes 0.3–0.9 ms to run again after its wake-up on this 2-core VM, which alone put a single
//! call's pacing p99 at 0.7–0.9 ms; spinning costs a few callers ~1 % of a core each, and with more callers a busy
//! runtime is awake anyway (the way `spin_sleep` and game loops reach sub-millisecond accuracy).
//!
//! The thread reads `std::time::Instant`, the real clock: under tokio's paused test clock a caller waits with
//! tokio's own timer instead ([`super::pacer::Ticker`]).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::thread::Thread;
use std::time::{Duration, Instant};

use futures_util::task::AtomicWaker;

/// The timer's shortest period: it wakes at most once per slot, serving every deadline passed since.
pub const SLOT: Duration = Duration::from_micros(250);
/// How long before its deadline a caller is woken to spin, when at most [`SPIN_MAX_CALLERS`] wait on the timer.
pub const SPIN: Duration = Duration::from_micros(200);
/// The most callers for which the timer spins the last [`SPIN`] (each costs ~1 % of a core while it does).
pub const SPIN_MAX_CALLERS: usize = 4;

/// How early a caller is woken when `callers` wait on the timer: [`SPIN`] for a few, none for more.
pub fn lead(callers: usize) -> Duration {
    if callers <= SPIN_MAX_CALLERS { SPIN } else { Duration::ZERO }
}

/// One caller's registration: the deadline it waits for (ns after the timer's epoch; 0 = none) and its waker.
#[derive(Debug, Default)]
struct Registration {
    due_ns: AtomicU64,
    waker: AtomicWaker,
}

/// A heap entry: a deadline and whose it is.
struct Entry {
    due_ns: u64,
    reg: Arc<Registration>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.due_ns == other.due_ns
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.due_ns.cmp(&other.due_ns)
    }
}

/// What the timer thread and the callers share.
struct Shared {
    epoch: Instant,
    heap: Mutex<BinaryHeap<Reverse<Entry>>>,
    /// When the thread will next look at the heap (ns after the epoch; `u64::MAX` while it waits for work).
    wake_ns: AtomicU64,
    thread: OnceLock<Thread>,
    /// One reference per live [`Waiter`]: how many callers use the timer.
    callers: Arc<()>,
}

/// The slot timer: one thread waking the callers whose deadlines have passed, a slot at a time.
#[derive(Clone)]
pub struct SlotTimer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SlotTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotTimer").field("slot", &SLOT).finish_non_exhaustive()
    }
}

/// When the thread next looks at the heap: the earliest deadline, but not sooner than a slot after it last served
/// one (`served_ns`), so that a busy timer serves a slot's deadlines in one batch.
pub fn next_wake(earliest_ns: u64, served_ns: u64, slot: Duration) -> u64 {
    earliest_ns.max(served_ns.saturating_add(slot.as_nanos() as u64))
}

impl SlotTimer {
    /// The process's timer, its thread started on first use.
    pub fn global() -> &'static SlotTimer {
        static TIMER: OnceLock<SlotTimer> = OnceLock::new();
        TIMER.get_or_init(SlotTimer::start)
    }

    /// A new timer with its own thread (the thread lives as long as the process).
    pub fn start() -> SlotTimer {
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            heap: Mutex::new(BinaryHeap::new()),
            wake_ns: AtomicU64::new(u64::MAX),
            thread: OnceLock::new(),
            callers: Arc::new(()),
        });
        let s = shared.clone();
        let handle = std::thread::Builder::new()
            .name("voicebench-pacer".into())
            .spawn(move || run(&s))
            .expect("spawning the pacing thread");
        let _ = shared.thread.set(handle.thread().clone());
        SlotTimer { shared }
    }

    /// A waiter for one caller.
    pub fn waiter(&self) -> Waiter {
        Waiter { timer: self.clone(), reg: Arc::new(Registration::default()), _caller: self.shared.callers.clone() }
    }

    fn ns(&self, t: Instant) -> u64 {
        // Deadlines before the epoch count as due at once (1 ns: 0 means "none").
        (t.saturating_duration_since(self.shared.epoch).as_nanos() as u64).max(1)
    }

    /// Puts `reg` in the heap for `due_ns` and wakes the thread if it would otherwise sleep past that slot.
    fn arm(&self, reg: &Arc<Registration>, due_ns: u64) {
        let s = &self.shared;
        s.heap.lock().unwrap_or_else(|e| e.into_inner()).push(Reverse(Entry { due_ns, reg: reg.clone() }));
        if due_ns < s.wake_ns.load(Ordering::Acquire)
            && let Some(t) = s.thread.get()
        {
            t.unpark();
        }
    }
}

impl Shared {
    /// How early callers are woken now ([`lead`] of the live waiters).
    fn lead(&self) -> Duration {
        lead(Arc::strong_count(&self.callers) - 1)
    }
}

/// The timer thread: wake whoever is due, then sleep to the earliest deadline left (a slot at least).
fn run(s: &Shared) {
    // Linux lets a sleeping thread wake up to its timer slack late (50 µs by default) to batch wake-ups; the
    // slots already batch, so the slack would only add to every frame's lateness. Best effort.
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_TIMERSLACK takes one integer and changes only the calling thread's slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong);
    }
    // On a loaded machine the thread must not wait behind other processes for a CPU each time it wakes (it runs a
    // few µs per slot): ask for a real-time priority above the runtime workers' (super::priority). Best effort:
    // without the privilege it stays normal.
    let _ = super::priority::raise(super::priority::Role::Pacer);
    let mut due = Vec::new();
    // When the thread last served a deadline: the next batch waits a slot from then (an unpark by a new
    // registration does not restart the slot).
    let mut served = 0u64;
    loop {
        let now = s.epoch.elapsed().as_nanos() as u64;
        let lead = s.lead().as_nanos() as u64;
        let next = {
            let mut heap = s.heap.lock().unwrap_or_else(|e| e.into_inner());
            while let Some(Reverse(top)) = heap.peek() {
                if top.due_ns > now + lead {
                    break;
                }
                let Some(Reverse(e)) = heap.pop() else { break };
                // Skip entries whose caller has since moved to another deadline.
                if e.reg.due_ns.load(Ordering::Acquire) == e.due_ns {
                    due.push(e.reg);
                }
            }
            if !due.is_empty() {
                served = now;
            }
            let next = heap.peek().map(|Reverse(e)| next_wake(e.due_ns.saturating_sub(lead), served, SLOT));
            // Published under the lock: a caller arming an earlier slot after this sees it and unparks us.
            s.wake_ns.store(next.unwrap_or(u64::MAX), Ordering::Release);
            next
        };
        for r in due.drain(..) {
            r.waker.wake();
        }
        match next {
            None => std::thread::park(),
            Some(at) => {
                let now = s.epoch.elapsed().as_nanos() as u64;
                if at > now {
                    std::thread::park_timeout(Duration::from_nanos(at - now));
                }
            }
        }
    }
}

/// One caller's handle on the timer: wait for one deadline at a time.
#[derive(Clone)]
pub struct Waiter {
    timer: SlotTimer,
    reg: Arc<Registration>,
    /// Counts this caller in [`Shared::callers`].
    _caller: Arc<()>,
}

impl std::fmt::Debug for Waiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waiter").field("due_ns", &self.reg.due_ns.load(Ordering::Relaxed)).finish()
    }
}

impl Waiter {
    /// Completes at or after `due` (real time), within about one [`SLOT`] of it on an unloaded machine.
    pub fn wait_until(&self, due: Instant) -> WaitUntil<'_> {
        WaitUntil { waiter: self, due }
    }
}

/// The future of [`Waiter::wait_until`]. Dropping it leaves the registration armed: the next wait for the same
/// deadline reuses it.
#[derive(Debug)]
pub struct WaitUntil<'a> {
    waiter: &'a Waiter,
    due: Instant,
}

impl Future for WaitUntil<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let now = Instant::now();
        if now >= self.due {
            return Poll::Ready(());
        }
        let w = self.waiter;
        // Few callers and the deadline close: spin the rest rather than wait for a thread to wake (module doc).
        if self.due - now <= w.timer.shared.lead() {
            while Instant::now() < self.due {
                std::hint::spin_loop();
            }
            return Poll::Ready(());
        }
        let due_ns = w.timer.ns(self.due);
        w.reg.waker.register(cx.waker());
        if w.reg.due_ns.swap(due_ns, Ordering::AcqRel) != due_ns {
            w.timer.arm(&w.reg, due_ns);
        }
        // The deadline may have passed while registering (the thread may have run already): look again.
        if Instant::now() >= self.due { Poll::Ready(()) } else { Poll::Pending }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_callers_spin_the_last_stretch_and_many_do_not() {
        assert_eq!(lead(1), SPIN);
        assert_eq!(lead(SPIN_MAX_CALLERS), SPIN);
        assert_eq!(lead(SPIN_MAX_CALLERS + 1), Duration::ZERO);
        assert_eq!(lead(1000), Duration::ZERO);
        // A timer of its own counts its waiters, clones included, and forgets the dropped ones.
        let timer = SlotTimer::start();
        let a = timer.waiter();
        let more: Vec<Waiter> = (0..SPIN_MAX_CALLERS).map(|_| a.clone()).collect();
        assert_eq!(timer.shared.lead(), Duration::ZERO, "{} callers", SPIN_MAX_CALLERS + 1);
        drop(more);
        assert_eq!(timer.shared.lead(), SPIN);
    }

    /// One caller spins the last stretch, and is never early for it.
    #[tokio::test]
    async fn a_lone_caller_is_never_early() {
        let timer = SlotTimer::start();
        let w = timer.waiter();
        for k in 1..=20u64 {
            let due = Instant::now() + Duration::from_micros(1_000 + k * 37);
            w.wait_until(due).await;
            assert!(Instant::now() >= due);
        }
    }

    #[test]
    fn the_thread_wakes_at_the_deadline_but_at_most_once_a_slot() {
        let s = Duration::from_micros(250);
        // Idle: at the deadline itself.
        assert_eq!(next_wake(5_000_000, 1_000_000, s), 5_000_000);
        // Busy: the next deadline is 20 µs away, but the thread waits out its slot and serves it with the others.
        assert_eq!(next_wake(1_020_000, 1_000_000, s), 1_250_000);
        assert_eq!(next_wake(1_250_000, 1_000_000, s), 1_250_000);
    }

    /// Real time: 60 callers on spread phases wait for 20 ms frames. No wake comes before its deadline, and the
    /// median is well under tokio's millisecond (a loaded machine can delay the worst ones).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wakes_after_the_deadline_within_a_slot_or_so() {
        let timer = SlotTimer::global();
        let start = Instant::now() + Duration::from_millis(5);
        let tasks: Vec<_> = (0..60u64)
            .map(|k| {
                let w = timer.waiter();
                tokio::spawn(async move {
                    let mut late = Vec::new();
                    for f in 1..=10u64 {
                        let due = start + Duration::from_micros(k * 333 + f * 20_000);
                        w.wait_until(due).await;
                        let now = Instant::now();
                        assert!(now >= due, "woke {:?} early", due - now);
                        late.push((now - due).as_micros() as u64);
                    }
                    late
                })
            })
            .collect();
        let mut late = Vec::new();
        for t in tasks {
            late.extend(t.await.unwrap());
        }
        late.sort_unstable();
        let p50 = late[late.len() / 2];
        assert!(p50 < 1000, "median lateness {p50} µs; worst {:?}", late.last());
    }

    /// A waiter re-armed for the same deadline (a `select!` loop re-creating the future) is woken once, and one
    /// moved to a later deadline is not woken for the earlier one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn re_arming_moves_the_deadline() {
        let timer = SlotTimer::global();
        let w = timer.waiter();
        // Far enough ahead that no stall of a loaded machine reaches it before the one poll below (a 3 ms deadline
        // under a 100 µs timeout failed once in four test runs beside other work).
        let early = Instant::now() + Duration::from_millis(50);
        let late = early + Duration::from_millis(10);
        // Poll the early wait once (it registers), then abandon it for the later deadline.
        assert!(futures_util::FutureExt::now_or_never(w.wait_until(early)).is_none());
        w.wait_until(late).await;
        assert!(Instant::now() >= late);
    }
}
