//! The baseline of the template-migrations phase: the same SQL applied by a bare rusqlite
//! loop to as many copies of the same file, one after another, and the probe measured
//! while such a loop runs (the reference window).

use super::*;

/// The bare loop over fresh copies of `seed` (removed afterwards to bound disk use): seconds.
pub(super) async fn bare(root: &Path, seed: &Path, databases: usize) -> anyhow::Result<f64> {
    eprintln!("bench: template migrations: bare rusqlite loop over {databases} files…");
    let (bare_dir, paths) = bare_copies(root, seed, databases).await?;
    let secs = tokio::task::spawn_blocking(move || bare_loop(&paths)).await??;
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(bare_dir)).await;
    Ok(secs)
}

/// `n` fresh copies of `seed` for a bare loop: their folder and paths.
pub(super) async fn bare_copies(
    root: &Path,
    seed: &Path,
    n: usize,
) -> anyhow::Result<(PathBuf, Vec<PathBuf>)> {
    let bare_dir = root.join("bare");
    let in_bare = bare_dir.clone();
    let paths = copies(seed, n, move |i| in_bare.join(format!("{i}.db"))).await?;
    Ok((bare_dir, paths))
}

pub(super) fn db_id(i: usize) -> String {
    format!("bm{i:010}")
}

/// Copies `seed` to `path(i)` for every `i` below `n`.
pub(super) async fn copies(
    seed: &Path,
    n: usize,
    path: impl Fn(usize) -> PathBuf + Send + 'static,
) -> anyhow::Result<Vec<PathBuf>> {
    let seed = seed.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let p = path(i);
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::copy(&seed, &p)?;
            out.push(p);
        }
        anyhow::Ok(out)
    })
    .await?
}

/// The baseline: each file opened, migrated in one transaction, closed, one after another.
pub(super) fn bare_loop(paths: &[PathBuf]) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    for p in paths {
        let conn = baseline::open_wal_full(p)?;
        conn.execute_batch(&format!(
            "BEGIN IMMEDIATE; {MIGRATION_SQL}; PRAGMA user_version = 1; COMMIT"
        ))?;
        conn.close().map_err(|(_, e)| e)?;
    }
    Ok(t0.elapsed().as_secs_f64())
}

/// The probe while the bare loop runs over `n` fresh copies of `seed`, split over as many
/// threads as the rollout has, each lowered as the rollout's are (fresh threads, dropped
/// afterwards: a lowered blocking-pool thread would go back to the pool and serve queries
/// at that priority later).
pub(super) async fn probe_during_bare_loop(
    client: &ClientRuntime,
    targets: Arc<Vec<(String, String)>>,
    pace: Pace,
    (root, seed): (&Path, &Path),
    n: usize,
    lane: &persql_storage::StorageConfig,
) -> anyhow::Result<Probe> {
    let (policy, nice) = (lane.background_policy, lane.background_nice);
    let threads = lane.background_threads.max(1);
    eprintln!(
        "bench: template migrations: probe load during the bare loop over {n} files, {threads} at a time…"
    );
    let (bare_dir, paths) = bare_copies(root, seed, n).await?;
    tokio::task::spawn_blocking(rustix::fs::sync).await?;
    let stop = CancellationToken::new();
    let probing = {
        let stop = stop.clone();
        client.spawn(run_probe(targets, pace, stop))?
    };
    let looped = tokio::task::spawn_blocking(move || {
        let shares: Vec<Vec<PathBuf>> = (0..threads)
            .map(|t| paths.iter().skip(t).step_by(threads).cloned().collect())
            .collect();
        let loops: Vec<_> = shares
            .into_iter()
            .map(|share| {
                std::thread::spawn(move || {
                    persql_storage::lower_current_thread(policy, nice);
                    bare_loop(&share)
                })
            })
            .collect();
        loops.into_iter().try_for_each(|l| {
            l.join()
                .map_err(|_| anyhow::anyhow!("a bare loop panicked"))?
                .map(drop)
        })
    })
    .await?;
    stop.cancel();
    let during_bare = probing.await.context("probe task panicked")??;
    looped?;
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(bare_dir)).await;
    Ok(during_bare)
}
