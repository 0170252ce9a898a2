//! The benchmark's report: rows of our figure beside a baseline measured in the same run,
//! each the median of three back-to-back pairs, with when, what and on which machine.

use std::{collections::BTreeMap, fmt::Write as _, time::Duration};

use crate::load::Summary;

/// One measured pair: ours and the baseline's, in the row's unit (higher is better for
/// rates, lower for latencies).
#[derive(Debug, Clone, Copy)]
pub struct Pair {
    pub ours: f64,
    pub baseline: f64,
}

/// A row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub what: String,
    pub baseline: String,
    pub unit: &'static str,
    pub ours: f64,
    pub base: f64,
    /// `ours / baseline` for rates, `baseline / ours` for latencies: above 1 is ahead.
    pub ratio: f64,
    pub target: String,
    /// Extra figures (p99s, errors).
    pub note: String,
    /// How idle the machine was just before the pairs (0-100 %).
    pub idle_before: f64,
}

/// The median of three values (or of as many as there are).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

pub fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// "6,712 req/s, p50 1.2 ms, p99 9.8 ms" of a load run.
pub fn describe(summary: &Summary) -> String {
    format!(
        "{:.0}/s, p50 {:.2} ms, p99 {:.2} ms{}",
        summary.per_second,
        millis(summary.p50),
        millis(summary.p99),
        match summary.errors {
            0 => String::new(),
            n => format!(", {n} errors"),
        }
    )
}

/// The share of CPU time the machine spent idle over `window` (from `/proc/stat`).
pub async fn idle_percent(window: Duration) -> f64 {
    let first = cpu_times();
    tokio::time::sleep(window).await;
    let second = cpu_times();
    match (first, second) {
        (Some((idle_a, total_a)), Some((idle_b, total_b))) if total_b > total_a => {
            100.0 * (idle_b - idle_a) as f64 / (total_b - total_a) as f64
        }
        _ => f64::NAN,
    }
}

/// (idle + iowait, all) jiffies of every CPU since boot.
fn cpu_times() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((idle, fields.iter().sum()))
}

/// The resident memory of process `pid` in MiB (from `/proc`).
pub fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// The most resident memory the process `pid` ever had, in MiB.
pub fn peak_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// A size field of `/proc/PID/status` in MiB (0 when the process is gone).
fn status_mib(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1_024.0)
}

/// CPU seconds (user and system) spent so far by each of `ours` (name, pid) and by the
/// local PostgreSQL, RabbitMQ and Redis (all their processes), from `/proc`.
pub fn cpu_seconds(ours: &[(String, u32)]) -> BTreeMap<String, f64> {
    // Linux reports times in clock ticks of 1/100 s on every platform it runs on here.
    const TICKS_PER_SECOND: f64 = 100.0;
    let mut spent = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return spent;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ...`: the fields after the command's closing parenthesis.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let comm = head.split_once('(').map_or("", |(_, c)| c);
        let name = match ours.iter().find(|(_, p)| *p == pid) {
            Some((name, _)) => name.clone(),
            None => match comm {
                "postgres" => "postgresql".into(),
                "beam.smp" => "rabbitmq".into(),
                "redis-server" => "redis".into(),
                _ => continue,
            },
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() < 13 {
            continue;
        }
        // utime and stime: the 14th and 15th fields, the 12th and 13th after `)`.
        let ticks: f64 = fields[11..13]
            .iter()
            .filter_map(|f| f.parse::<f64>().ok())
            .sum();
        *spent.entry(name).or_insert(0.0) += ticks / TICKS_PER_SECOND;
    }
    spent
}

/// Cores, CPU model and memory of this machine.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1_048_576.0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({model}), {memory_gib:.1} GiB")
}

/// The commit under measurement (with `+changes` when the tree differs from it).
pub fn commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = run(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        run(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head}+changes")
    } else {
        head
    }
}

/// The Markdown table and its header.
pub fn markdown(rows: &[Row], customers: u64, date: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmark results\n");
    let _ = writeln!(
        out,
        "{date}, commit `{}`, {}; {customers} customers. Each row is the median of three \
         back-to-back pairs of our figure and its baseline, measured by `make bench` in \
         the same run on the same machine. Ratio above 1 means ours is ahead.\n",
        commit(),
        machine()
    );
    let _ = writeln!(
        out,
        "| ours | baseline (same run) | unit | ours | baseline | ratio | target | idle before | notes |"
    );
    let _ = writeln!(out, "|---|---|---|---:|---:|---:|---|---:|---|");
    for row in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.1} | {:.1} | {:.2}× | {} | {:.0} % | {} |",
            row.what,
            row.baseline,
            row.unit,
            row.ours,
            row.base,
            row.ratio,
            row.target,
            row.idle_before,
            row.note
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_three_is_the_middle_one() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![5.0]), 5.0);
    }

    #[test]
    fn a_row_prints_with_its_ratio() {
        let row = Row {
            what: "GET customer".into(),
            baseline: "PK SELECT".into(),
            unit: "req/s",
            ours: 100.0,
            base: 200.0,
            ratio: 0.5,
            target: "≥ 0.5×".into(),
            note: String::new(),
            idle_before: 97.0,
        };
        let table = markdown(&[row], 10, "2026-12-07");
        assert!(table.contains("| GET customer | PK SELECT | req/s | 100.0 | 200.0 | 0.50× |"));
    }
}
