//! `BENCH_PROFILE=1`: the first run of our side of each row under `perf record -a -g`
//! (every process on the machine, so the servers and the load generator show side by
//! side), summarised per process and per function into `target/bench-profiles/ROW.txt`.
//! RESULTS.md quotes these summaries for what bounds a row.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
};

/// Where the recordings and their summaries go.
const DIRECTORY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/bench-profiles");

/// A `perf record` running while our side of a row runs.
pub struct Profile {
    perf: Child,
    data: PathBuf,
    label: String,
}

/// Runs `work`, recorded as the row `label` when `wanted` and `BENCH_PROFILE` is set.
pub async fn during<T>(label: &str, wanted: bool, work: impl std::future::Future<Output = T>) -> T {
    let profile = match wanted {
        true => start(label).await,
        false => None,
    };
    let done = work.await;
    if let Some(profile) = profile {
        profile.finish();
    }
    done
}

/// Starts recording for the row `label` when `BENCH_PROFILE` is set (`None` otherwise,
/// or when `perf` cannot start: the row runs unprofiled, and says so).
async fn start(label: &str) -> Option<Profile> {
    std::env::var_os("BENCH_PROFILE")?;
    std::fs::create_dir_all(DIRECTORY).ok()?;
    let data = PathBuf::from(format!("{DIRECTORY}/{label}.data"));
    let perf = Command::new("perf")
        .args(["record", "-a", "-g", "-F", "499", "-o"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match perf {
        Ok(perf) => {
            // perf needs a moment to attach to every CPU before the load starts.
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            Some(Profile {
                perf,
                data,
                label: label.to_owned(),
            })
        }
        Err(error) => {
            println!("bench: {label}: not profiled, perf did not start: {error}");
            None
        }
    }
}

impl Profile {
    /// Stops recording and writes the summary: the share of samples per process, then
    /// the functions above 0.5 % with their thread name and binary.
    fn finish(mut self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.perf.id().to_string()])
            .status();
        let _ = self.perf.wait();
        let processes = per_process(&self.report("pid"));
        let functions = self.report("comm,dso,sym");
        let summary =
            format!("# samples per process\n{processes}\n\n# per function\n{functions}\n");
        let path = format!("{DIRECTORY}/{}.txt", self.label);
        match std::fs::write(&path, &summary) {
            Ok(()) => println!("bench: {}: profile in {path}:\n{processes}", self.label),
            Err(error) => println!("bench: {}: profile not written: {error}", self.label),
        }
    }

    /// `perf report` sorted by `sort`: its first 60 rows above 0.5 %.
    fn report(&self, sort: &str) -> String {
        let output = Command::new("perf")
            .args(["report", "--no-children", "--stdio", "-g", "none"])
            .args(["--percent-limit", "0.5", "--sort", sort, "-i"])
            .arg(&self.data)
            .stderr(Stdio::null())
            .output();
        output
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .take(60)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Rows of `perf report --sort pid` (`12.3%  tid:thread-name`) summed per process: every
/// service's threads are named `tokio-rt-worker`, their process tells them apart.
fn per_process(by_thread: &str) -> String {
    let mut shares: Vec<(String, f64)> = Vec::new();
    for line in by_thread.lines() {
        let Some((share, thread)) = line.trim().split_once('%') else {
            continue;
        };
        let (Ok(share), Some((tid, name))) = (share.parse::<f64>(), thread.trim().split_once(':'))
        else {
            continue;
        };
        let process = process_of(tid).unwrap_or_else(|| name.trim().to_owned());
        match shares.iter_mut().find(|(p, _)| *p == process) {
            Some((_, total)) => *total += share,
            None => shares.push((process, share)),
        }
    }
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    let lines: Vec<String> = shares
        .iter()
        .map(|(process, share)| format!("{share:6.2}%  {process}"))
        .collect();
    lines.join("\n")
}

/// The name of the process a live thread belongs to.
fn process_of(tid: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    let tgid = status
        .lines()
        .find_map(|line| line.strip_prefix("Tgid:"))?
        .trim();
    let name = std::fs::read_to_string(format!("/proc/{tgid}/comm")).ok()?;
    Some(name.trim().to_owned())
}
