//! The bench's results: one serializable report, printed as a table or as JSON.

use serde::Serialize;

use crate::{
    load::LoadResult,
    metering::MeteringReport,
    phases::{Compared, ProvisionLatency, Scale},
    template_migrations::TemplateMigrationsReport,
};

/// Memory of the whole bench process (PerSQL, baseline and load generator together).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// Peak resident set (VmHWM).
    pub peak_rss_mib: f64,
    /// Current resident set (VmRSS) at the end.
    pub rss_mib: f64,
}

impl Memory {
    /// Reads VmHWM and VmRSS from `/proc/self/status` (zeros where unavailable).
    pub fn read() -> Self {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| -> f64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
                .map_or(0.0, |kib| kib / 1024.0)
        };
        Self {
            peak_rss_mib: field("VmHWM:"),
            rss_mib: field("VmRSS:"),
        }
    }
}

/// A definition-of-done target and whether this run met it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    pub name: &'static str,
    pub value: f64,
    pub goal: String,
    pub met: bool,
}

/// Phases 1–3 (`--phases core`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Core {
    pub select: Compared,
    pub insert: Compared,
    pub provision: ProvisionLatency,
    pub scale: Scale,
}

/// Everything one `persql-bench` run measured.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub settings: serde_json::Value,
    #[serde(flatten)]
    pub core: Option<Core>,
    pub metering: Option<MeteringReport>,
    pub template_migrations: Option<TemplateMigrationsReport>,
    pub memory: Memory,
    pub targets: Vec<Target>,
}

impl Report {
    /// Checks the benchmark's targets (`docs/benchmarks.md`) against the figures.
    pub fn targets(&self) -> Vec<Target> {
        let at_least = |name, value: f64, goal: f64| Target {
            name,
            value,
            goal: format!(">= {goal}"),
            met: value >= goal,
        };
        let below = |name, value: f64, goal: f64| Target {
            name,
            value,
            goal: format!("< {goal}"),
            met: value < goal,
        };
        let mut out = Vec::new();
        if let Some(c) = &self.core {
            out.extend([
                at_least("select rps / baseline", c.select.ratio, 0.6),
                at_least("insert rps / baseline", c.insert.ratio, 0.6),
                below("provision p50 / direct p50", c.provision.ratio_p50, 3.0),
                at_least("spread select rps / hot", c.scale.ratio, 0.5),
            ]);
        }
        if let Some(m) = &self.metering {
            out.extend([
                at_least(
                    "metering events/s embedded",
                    m.embedded.consume_per_sec,
                    50_000.0,
                ),
                at_least("select rps metering on / off", m.ratio, 0.9),
            ]);
        }
        if let Some(m) = &self.template_migrations {
            out.extend([
                at_least("rollout dbs/s / bare loop", m.ratio, 0.5),
                Target {
                    name: "probe p99 rollout / idle",
                    value: m.p99_ratio,
                    goal: "<= 2".into(),
                    met: m.p99_ratio <= 2.0,
                },
            ]);
        }
        out.push(below("peak RSS MiB", self.memory.peak_rss_mib, 512.0));
        out
    }

    /// The human-readable table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        if let Some(c) = &self.core {
            s.push_str(&c.table());
        }
        if let Some(m) = &self.metering {
            s.push_str(&m.table());
        }
        if let Some(m) = &self.template_migrations {
            s.push_str(&m.table());
        }
        s.push_str(&format!(
            "peak RSS {:.0} MiB (VmHWM), RSS at end {:.0} MiB\n\ntargets:\n",
            self.memory.peak_rss_mib, self.memory.rss_mib
        ));
        for t in &self.targets {
            let mark = if t.met { "met" } else { "MISSED" };
            s.push_str(&format!(
                "  {:<30} {:>10.2} {:<9} {mark}\n",
                t.name, t.value, t.goal
            ));
        }
        s
    }
}

impl Core {
    /// Phases 1–3 as table rows.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let line = |s: &mut String, cols: [&str; 5]| {
            s.push_str(&format!(
                "{:<34} {:>18} {:>18} {:>8}  {}\n",
                cols[0], cols[1], cols[2], cols[3], cols[4]
            ));
        };
        let load = |r: &LoadResult| format!("{:.0}/s", r.rps);
        let lat = |p50: f64, p99: f64| format!("{p50:.2}/{p99:.2} ms");
        line(&mut s, ["workload", "PerSQL", "baseline", "ratio", "notes"]);
        for (name, c) in [
            ("point SELECT", &self.select),
            ("INSERT (sync=FULL)", &self.insert),
        ] {
            let errs = c.persql.errors + c.baseline.errors;
            let note = if errs > 0 {
                format!("{errs} errors")
            } else {
                String::new()
            };
            line(
                &mut s,
                [
                    name,
                    &load(&c.persql),
                    &load(&c.baseline),
                    &format!("{:.2}", c.ratio),
                    &note,
                ],
            );
            line(
                &mut s,
                [
                    "  p50/p99",
                    &lat(c.persql.p50_ms, c.persql.p99_ms),
                    &lat(c.baseline.p50_ms, c.baseline.p99_ms),
                    "",
                    "",
                ],
            );
        }
        let p = &self.provision;
        line(
            &mut s,
            [
                "provision 5 tables+5 idx p50/p99",
                &lat(p.persql.p50_ms, p.persql.p99_ms),
                &lat(p.direct.p50_ms, p.direct.p99_ms),
                &format!("{:.2}", p.ratio_p50),
                &format!(
                    "one-tx direct {}",
                    lat(p.direct_one_tx.p50_ms, p.direct_one_tx.p99_ms)
                ),
            ],
        );
        let sc = &self.scale;
        line(
            &mut s,
            [
                &format!("SELECT over {} dbs", sc.databases),
                &load(&sc.select),
                &format!("{:.0}/s hot", sc.hot_rps),
                &format!("{:.2}", sc.ratio),
                &format!(
                    "p50/p99 {}; hot again {:.0}/s",
                    lat(sc.select.p50_ms, sc.select.p99_ms),
                    sc.hot_again.rps
                ),
            ],
        );
        line(
            &mut s,
            [
                &format!("provision {} dbs (concurrent)", sc.databases),
                &format!("{:.0}/s", sc.provisions_per_sec),
                "",
                "",
                &format!("{:.1} s", sc.provision_secs),
            ],
        );
        s
    }
}
