//! The background lane: a few OS threads of their own, at a lower scheduling priority than
//! the blocking pool that serves queries, for bulk tenant work nobody is waiting on — a
//! template migration rolled out to every database. On a busy machine the kernel then
//! gives queries the CPU first and the rollout what they leave, instead of splitting it
//! evenly between them (which doubled query p99 on 2 cores).
//!
//! The default priority is Linux's `SCHED_IDLE` policy, with a nice value as the fallback
//! (see [`BackgroundPolicy`]). A higher nice value alone lowers the threads' share of a
//! saturated CPU but not how long a query thread that wakes up may wait for a running
//! background thread: with the template-migrations bench's probe (docs/benchmarks.md) on 2
//! cores, probe p99 during a rollout was clearly lower under `SCHED_IDLE` than at nice 10.
//!
//! The cost of `SCHED_IDLE`: on a machine whose query threads want all of the CPU all the
//! time, a rollout nearly stops (it resumes when the load drops), and a query on the one
//! database a background thread is migrating waits for that thread's turn.
//!
//! Hand-written over a channel because it is ~60 lines: tokio's blocking pool cannot run
//! some of its threads at another priority, and a thread-pool crate would add nothing but
//! a dependency (the priority calls are `rustix`'s `setpriority` and `thread-priority`'s
//! policy call, both safe).

use std::panic::AssertUnwindSafe;
use std::sync::OnceLock;

use crate::{BackgroundPolicy, StorageError};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Lazily started threads draining one job queue.
pub(crate) struct Background {
    threads: usize,
    nice: i32,
    policy: BackgroundPolicy,
    /// `None` when no thread could be started: jobs then go to tokio's blocking pool.
    queue: OnceLock<Option<crossbeam_channel::Sender<Job>>>,
}

impl Background {
    /// `threads` threads (at least one) under `policy`, at nice value `nice` (clamped to
    /// 0–19 by [`lower_current_thread`]) when that is `Nice` or `Idle` is refused, started on
    /// first use.
    pub(crate) fn new(threads: usize, nice: i32, policy: BackgroundPolicy) -> Self {
        Self {
            threads: threads.max(1),
            nice,
            policy,
            queue: OnceLock::new(),
        }
    }

    /// Runs `f` on a background thread and waits for its result.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, StorageError> + Send + 'static,
    {
        let Some(queue) = self.queue() else {
            return tokio::task::spawn_blocking(f)
                .await
                .map_err(|e| StorageError::Internal(format!("blocking task failed: {e}")))?;
        };
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The receiver may be gone (the caller was cancelled): nothing to tell.
            let _ = done.send(f());
        });
        queue
            .send(job)
            .map_err(|_| StorageError::Internal("the background lane has stopped".into()))?;
        result
            .await
            .map_err(|_| StorageError::Internal("a background task panicked".into()))?
    }

    fn queue(&self) -> Option<&crossbeam_channel::Sender<Job>> {
        self.queue
            .get_or_init(|| {
                let (tx, rx) = crossbeam_channel::unbounded::<Job>();
                let mut started = 0;
                for i in 0..self.threads {
                    let rx = rx.clone();
                    let (nice, policy) = (self.nice, self.policy);
                    let spawned = std::thread::Builder::new()
                        .name(format!("persql-bg-{i}"))
                        .spawn(move || {
                            lower_current_thread(policy, nice);
                            // Ends when the lane (its sender) is dropped.
                            for job in rx {
                                // A panicking job drops its result sender: its caller gets
                                // an error, and the thread lives on for the next job.
                                let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                            }
                        });
                    match spawned {
                        Ok(_) => started += 1,
                        Err(e) => tracing::error!(error = %e, "cannot start a background thread"),
                    }
                }
                (started > 0).then_some(tx)
            })
            .as_ref()
    }
}

/// Lowers the calling thread as the background lane lowers its own threads: `SCHED_IDLE`
/// under `Idle` (nice `nice` where that is refused), nice `nice` under `Nice`. Public so
/// that a baseline run elsewhere (the bench's bare loop) can compete for the CPU as the
/// rollout does.
pub fn lower_current_thread(policy: BackgroundPolicy, nice: i32) {
    if policy == BackgroundPolicy::Nice || !schedule_idle() {
        lower_priority(nice.clamp(0, 19));
    }
}

/// Moves the calling thread to `SCHED_IDLE`; false when that did not happen.
#[cfg(target_os = "linux")]
fn schedule_idle() -> bool {
    use thread_priority::unix::{
        NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
        thread_native_id, thread_schedule_policy,
    };
    const IDLE: ThreadSchedulePolicy =
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    // The crate sets the policy, then the nice value to 0 (`SCHED_IDLE` ignores it); that
    // second call fails under an inherited nice value, after the policy took: so the policy
    // read back is what tells.
    let set = set_thread_priority_and_policy(
        thread_native_id(),
        thread_priority::ThreadPriority::Min,
        IDLE,
    );
    match thread_schedule_policy() {
        Ok(p) if p == IDLE => true,
        _ => {
            tracing::warn!(error = ?set.err(), "cannot move a background thread to SCHED_IDLE; using its nice value");
            false
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn schedule_idle() -> bool {
    false
}

/// Raises the calling thread's nice value to `nice` (never lowers it: a process started
/// under `nice` keeps at least that). On Linux `setpriority(PRIO_PROCESS, 0, …)` changes the
/// calling thread only (threads are tasks), which is what this relies on.
fn lower_priority(nice: i32) {
    let current = rustix::process::getpriority_process(None).unwrap_or(0);
    if nice <= current {
        return;
    }
    if let Err(e) = rustix::process::setpriority_process(None, nice) {
        tracing::warn!(error = %e, nice, "cannot lower a background thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use thread_priority::unix::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};

    use super::*;

    #[tokio::test]
    async fn jobs_run_on_lowered_threads_and_leave_the_caller_alone() {
        let caller = rustix::process::getpriority_process(None).unwrap();
        let lane = Background::new(2, 7, BackgroundPolicy::Nice);
        let (name, nice, policy) = lane
            .run(|| {
                let name = std::thread::current().name().map(str::to_owned);
                let nice = rustix::process::getpriority_process(None).unwrap();
                Ok((name, nice, policy()))
            })
            .await
            .unwrap();
        assert_eq!(policy, NormalThreadSchedulePolicy::Other);
        assert_eq!(
            name.as_deref().map(|n| n.starts_with("persql-bg-")),
            Some(true)
        );
        // Raising the nice value never needs privileges; it adds to the inherited one.
        assert_eq!(nice, 7.max(caller));
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), caller);
    }

    fn policy() -> NormalThreadSchedulePolicy {
        match thread_priority::unix::thread_schedule_policy().unwrap() {
            ThreadSchedulePolicy::Normal(p) => p,
            other => panic!("unexpected policy {other:?}"),
        }
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn idle_lane_threads_run_under_sched_idle_and_the_caller_keeps_its_policy() {
        let lane = Background::new(1, 7, BackgroundPolicy::Idle);
        let policy = lane.run(|| Ok(policy())).await.unwrap();
        assert_eq!(policy, NormalThreadSchedulePolicy::Idle);
        assert_eq!(self::policy(), NormalThreadSchedulePolicy::Other);
    }

    #[test]
    fn a_thread_lowered_like_the_lane_gets_the_lanes_policy() {
        let nice_thread = std::thread::spawn(|| {
            lower_current_thread(BackgroundPolicy::Nice, 6);
            (
                policy(),
                rustix::process::getpriority_process(None).unwrap(),
            )
        });
        let caller = rustix::process::getpriority_process(None).unwrap();
        let (nice_policy, nice) = nice_thread.join().unwrap();
        assert_eq!(nice_policy, NormalThreadSchedulePolicy::Other);
        assert_eq!(nice, 6.max(caller));
        #[cfg(target_os = "linux")]
        {
            let idle = std::thread::spawn(|| {
                lower_current_thread(BackgroundPolicy::Idle, 6);
                policy()
            });
            assert_eq!(idle.join().unwrap(), NormalThreadSchedulePolicy::Idle);
        }
        assert_eq!(policy(), NormalThreadSchedulePolicy::Other);
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_lane_keeps_working() {
        let lane = Background::new(1, 0, BackgroundPolicy::Nice);
        let err = lane
            .run::<(), _>(|| panic!("boom"))
            .await
            .expect_err("a panic is an error");
        assert!(matches!(err, StorageError::Internal(_)), "{err:?}");
        assert_eq!(lane.run(|| Ok(41 + 1)).await.unwrap(), 42);
    }

    #[tokio::test]
    async fn errors_come_back_as_they_are() {
        let lane = Background::new(1, 0, BackgroundPolicy::Nice);
        let err = lane
            .run::<(), _>(|| Err(StorageError::NotFound))
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::NotFound));
    }
}
