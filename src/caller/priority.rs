//! Real-time scheduling for the harness's own threads, so that nothing else on the machine (the embedded sim, a
//! provider's local stand-in, a build) can hold a caller's frame back.
//!
//! Under Linux's normal scheduler a runnable thread can wait a scheduler tick (4 ms at `HZ=250`) or several behind
//! other runnable threads. On a 2-core machine running 1000 callers and the sim (~92 % of both cores), the harness's
//! runtime workers were preempted in the middle of polls for 4–25 ms, and pacing p99 was 8–33 ms whatever the sim's
//! `nice` (docs/bench.md, "Real-time priority"). With the runtime workers at `SCHED_RR` priority 1 and the pacing
//! thread ([`super::slots`]) at `SCHED_FIFO` priority 2, a waking harness thread preempts any normal thread at once.
//!
//! Both requests carry `SCHED_RESET_ON_FORK`: threads and processes the harness starts (the sim's runtime, spawned
//! engines, a browser) get the normal policy back. Real-time threads that never block could starve the machine;
//! tokio's workers park when they run out of work and the kernel keeps 5 % of each second for normal threads
//! (`sched_rt_runtime_us`). Best effort: without the privilege (root or `CAP_SYS_NICE`, or an `RLIMIT_RTPRIO`) the
//! request is refused and the threads stay normal; [`status`] says which, for the run's output.
//!
//! Written by hand: a `sched_setscheduler` call with two constants; the crates that wrap it (thread-priority) bring
//! their own priority model for one call.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};

/// Which of the harness's threads is asking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An async runtime worker: callers, readers, the run's bookkeeping. `SCHED_RR` priority 1.
    Worker,
    /// The pacing thread: a few µs per wake, must preempt the workers. `SCHED_FIFO` priority 2.
    Pacer,
}

/// What became of the runtime workers' request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Not asked (`--realtime` not given, or `--no-realtime`).
    Off,
    /// Every worker that asked runs at real-time priority.
    Granted,
    /// Refused, with the reason (the OS's error).
    Refused(String),
}

impl Status {
    /// The word summary.json records: `normal`, `realtime` or `refused`.
    pub fn label(&self) -> &'static str {
        match self {
            Status::Off => "normal",
            Status::Granted => "realtime",
            Status::Refused(_) => "refused",
        }
    }

    /// A short phrase for the terminal and the bench's header.
    pub fn describe(&self) -> String {
        match self {
            Status::Off => "normal priority".into(),
            Status::Granted => "real-time priority (SCHED_RR)".into(),
            Status::Refused(why) => {
                format!("normal priority: real-time refused ({why}; needs root or CAP_SYS_NICE)")
            }
        }
    }
}

/// The workers' outcome: 0 not asked, 1 granted, otherwise the negated OS error of the first refusal.
static WORKERS: AtomicI32 = AtomicI32::new(0);
/// How many workers have asked.
static ASKED: AtomicUsize = AtomicUsize::new(0);

/// Asks for real-time priority for the calling thread. Records a worker's outcome for [`status`].
pub fn raise(role: Role) -> std::io::Result<()> {
    let r = set_current(role);
    if role == Role::Worker {
        let code = match &r {
            Ok(()) => 1,
            Err(e) => -e.raw_os_error().unwrap_or(1).max(1),
        };
        // A refusal sticks: one normal worker is enough to lose the guarantee.
        let _ = WORKERS.fetch_update(Ordering::AcqRel, Ordering::Acquire, |old| (old >= 0).then_some(code));
        ASKED.fetch_add(1, Ordering::AcqRel);
    }
    r
}

/// How many runtime workers have asked so far (a runtime starts its workers in the background: wait for them
/// before reading [`status`]).
pub fn asked() -> usize {
    ASKED.load(Ordering::Acquire)
}

/// What the runtime workers were granted.
pub fn status() -> Status {
    match WORKERS.load(Ordering::Acquire) {
        0 => Status::Off,
        1 => Status::Granted,
        e => Status::Refused(std::io::Error::from_raw_os_error(-e).to_string()),
    }
}

#[cfg(target_os = "linux")]
fn set_current(role: Role) -> std::io::Result<()> {
    let (policy, priority) = match role {
        Role::Worker => (libc::SCHED_RR, 1),
        Role::Pacer => (libc::SCHED_FIFO, 2),
    };
    let param = libc::sched_param { sched_priority: priority };
    // SAFETY: sched_setscheduler on the calling thread (0) with a valid, initialised sched_param.
    let rc = unsafe { libc::sched_setscheduler(0, policy | libc::SCHED_RESET_ON_FORK, &param) };
    if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

#[cfg(not(target_os = "linux"))]
fn set_current(_role: Role) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "real-time scheduling is implemented for Linux only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_reads_as_a_phrase() {
        assert_eq!(Status::Off.describe(), "normal priority");
        assert!(Status::Granted.describe().contains("SCHED_RR"));
        assert!(Status::Refused("Operation not permitted".into()).describe().contains("CAP_SYS_NICE"));
    }

    /// A thread of its own asks and is granted or refused; either way the policy it reports is the one the OS holds,
    /// and a thread it spawns is back at the normal policy (reset on fork).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_granted_thread_is_real_time_and_its_children_are_not() {
        std::thread::spawn(|| {
            // SAFETY: sched_getscheduler(0) reads the calling thread's policy.
            let policy = || unsafe { libc::sched_getscheduler(0) } & !libc::SCHED_RESET_ON_FORK;
            match set_current(Role::Worker) {
                Ok(()) => {
                    assert_eq!(policy(), libc::SCHED_RR);
                    let child = std::thread::spawn(policy).join().unwrap();
                    assert_eq!(child, libc::SCHED_OTHER, "a thread started by a real-time one inherited its policy");
                }
                Err(e) => assert_eq!(policy(), libc::SCHED_OTHER, "refused ({e}) yet not normal"),
            }
        })
        .join()
        .unwrap();
    }
}
