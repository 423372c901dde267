//! The probe's windows, percentiles, worst seconds and steal sampling.

use super::*;

#[test]
fn windows_pool_their_samples_and_count_slow_answers() {
    let steal = StealBySecond::from([(7, 12.5), (8, 0.0)]);
    let a = Probe::of(vec![900, 100, 20_000], 1.0, 0, &[(7, 20_000)], &steal);
    let b = Probe::of(vec![300, 10_000], 2.0, 1, &[], &StealBySecond::new());
    assert_eq!(a.slow_while_stolen, Some(1));
    assert_eq!(b.slow_while_stolen, None, "no steal samples: unknown");
    assert_eq!(a.worst_seconds[0].steal_pct, Some(12.5));
    assert_eq!((a.slow, b.slow), (1, 0), "10 ms itself is not slow");
    assert_eq!(a.latency.max_ms, 20.0);
    assert_eq!(b.rps, 1.0);
    let pooled = Probe::pooled(&[&a, &b]);
    assert_eq!(pooled.count, 5);
    assert_eq!(pooled.p50_ms, 0.9);
    assert_eq!(pooled.max_ms, 20.0);
}

#[test]
fn the_worst_seconds_are_those_with_the_most_slow_answers() {
    let slow = [
        (5, 12_000),
        (3, 40_000),
        (5, 30_000),
        (9, 11_000),
        (3, 15_000),
        (5, 11_000),
    ];
    let steal = StealBySecond::from([(3, 25.0), (5, 1.5)]);
    let worst = worst_seconds(&slow, &steal);
    let second = |at, slow, max_ms, steal_pct| SlowSecond {
        at,
        slow,
        max_ms,
        steal_pct,
    };
    assert_eq!(
        worst,
        vec![
            second(5, 3, 30.0, Some(1.5)),
            second(3, 2, 40.0, Some(25.0)),
            second(9, 1, 11.0, None),
        ]
    );
    let many: Vec<(u64, u32)> = (0..50).map(|s| (s, 20_000)).collect();
    assert_eq!(worst_seconds(&many, &steal).len(), WORST_SECONDS);
    assert!(worst_seconds(&[], &steal).is_empty());
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn steal_is_sampled_for_each_second_of_the_window() {
    let stop = CancellationToken::new();
    let first = unix_now().as_secs();
    let sampler = tokio::spawn(sample_steal(stop.clone()));
    tokio::time::sleep(Duration::from_millis(2200)).await;
    stop.cancel();
    let steal = sampler.await.unwrap();
    let last = unix_now().as_secs();
    let seconds: Vec<u64> = steal.keys().copied().collect();
    // The window touched at least three seconds; the last may have had no tick, and a
    // timer late by a second (a stalled test machine) would skip one.
    assert!(seconds.len() >= 2, "{steal:?}");
    assert!(
        seconds[0] >= first && *seconds.last().unwrap() <= last,
        "{steal:?}"
    );
    assert!(
        steal.values().all(|p| (0.0..=100.0).contains(p)),
        "{steal:?}"
    );
}

#[test]
fn steal_is_read_from_the_cpu_line_of_proc_stat() {
    let line = "cpu  100 5 50 800 10 1 2 32 7 0";
    assert_eq!(parse_cpu_line(line), Some((32, 1000)));
    assert_eq!(steal_pct((32, 1000), (52, 1200)), 10.0);
    assert_eq!(steal_pct((32, 1000), (32, 1000)), 0.0, "no time passed");
    assert_eq!(parse_cpu_line("cpu0 1 2 3 4 5 6 7 8"), None);
    assert_eq!(parse_cpu_line("cpu  1 2 3"), None);
    assert_eq!(parse_cpu_line("cpu  1 2 3 4 5 6 7 x"), None);
    #[cfg(target_os = "linux")]
    assert!(cpu_times().is_some_and(|(steal, all)| steal <= all && all > 0));
}

#[test]
fn a_fixed_rate_spreads_over_the_connections_and_zero_is_a_closed_loop() {
    let paced = Pace {
        connections: 4,
        rate: 1000.0,
    };
    assert_eq!(paced.interval(), Some(Duration::from_millis(4)));
    let closed = Pace {
        connections: 4,
        rate: 0.0,
    };
    assert_eq!(closed.interval(), None);
}
