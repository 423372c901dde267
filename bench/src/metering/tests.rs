//! The metering phase's rounds, medians and report.

use super::*;

fn round(rps: f64) -> LoadResult {
    LoadResult {
        requests: rps as u64,
        errors: 0,
        rps,
        p50_ms: 1.0,
        p99_ms: 2.0,
    }
}

#[test]
fn the_sides_take_turns_going_first() {
    assert_eq!(order(1), [false, true]);
    assert_eq!(order(2), [true, false]);
    assert_eq!(order(3), [false, true]);
}

#[test]
fn the_process_cpu_time_is_read_and_grows_with_work() {
    let before = process_cpu(std::process::id()).expect("/proc/<pid>/stat is readable on Linux");
    // Spins until the reading moves (a tick is 10 ms of CPU); a parser that read a
    // field that does not count CPU would spin out the whole 10 s and fail.
    let start = std::time::Instant::now();
    let mut x = 0u64;
    let mut after = before;
    while after <= before && start.elapsed() < Duration::from_secs(10) {
        for _ in 0..100_000 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        after = process_cpu(std::process::id()).unwrap();
    }
    assert!(
        after > before,
        "{after:?} after spinning, {before:?} before"
    );
}

#[test]
fn the_median_round_is_the_middle_throughput_whatever_the_order() {
    let pick = |rps: &[f64]| median_round(rps.iter().copied().map(round).collect()).rps;
    assert_eq!(pick(&[30.0, 10.0, 20.0]), 20.0);
    assert_eq!(pick(&[5.0]), 5.0);
    // An even count takes the upper of the two middle rounds.
    assert_eq!(pick(&[40.0, 10.0, 30.0, 20.0]), 30.0);
}
