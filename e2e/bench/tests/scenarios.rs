//! Every benchmark scenario at a tiny size, so the program stays correct: it must finish, every Rollout
//! must reach Healthy (the program fails otherwise), and its summary must hold sane figures. Nothing here
//! asserts on timing; the figures are for people to read at full size.

use std::process::Command;

use serde_json::Value;

const BENCH: &str = env!("CARGO_BIN_EXE_bench");

/// The bench builds `ramp-controller` and `kubesim` itself when run with `cargo run`, but not here: cargo
/// keeps its build directory locked while tests run. `cargo test --workspace` (and nextest) build both
/// binaries next to this one; `cargo test -p ramp-e2e` alone needs them built first.
fn check_binaries() {
    let dir = std::path::Path::new(BENCH)
        .parent()
        .expect("bench has a directory");
    for binary in ["ramp-controller", "kubesim"] {
        assert!(
            dir.join(binary).exists(),
            "{} is missing: run `cargo test --workspace`, or `cargo build -p ramp --bin ramp-controller -p kubesim --bin kubesim` first",
            dir.join(binary).display()
        );
    }
}

/// Runs `bench ARGS` and returns its JSON summary (the last line of stdout).
fn run(args: &[&str]) -> Value {
    check_binaries();
    let out = Command::new(BENCH)
        .env("RAMP_BENCH_NO_BUILD", "1")
        .args(args)
        .args(["--timeout", "60s"])
        .output()
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "bench {} failed\nstdout:\n{stdout}\nstderr:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().rev().find(|line| !line.trim().is_empty());
    serde_json::from_str(last.unwrap_or("")).expect("the last line is the JSON summary")
}

fn number(summary: &Value, key: &str) -> f64 {
    summary[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {summary}"))
}

#[test]
fn every_scenario_runs_at_a_tiny_size() {
    let kubesim = run(&["kubesim", "--size", "100"]);
    assert_eq!(number(&kubesim, "watch_events"), 500.0);
    assert!(number(&kubesim, "create_writes_per_second") > 0.0);
    assert!(number(&kubesim, "sim_rss_loaded_mib") > 0.0);
    assert!(number(&kubesim, "list_pods_ms") > 0.0);

    let scale = run(&["scale", "--size", "20", "--updates", "5", "--pause", "1"]);
    assert_eq!(scale["scenario"], "scale");
    assert!(number(&scale, "cold_start_seconds") > 0.0);
    assert!(number(&scale, "cold_start_requests") > 0.0);
    // At least a ReplicaSet created and the status written for each update.
    assert!(number(&scale, "writes_per_update") >= 2.0);
    assert!(number(&scale, "drift_max_seconds").is_finite());
    assert!(number(&scale, "controller_rss_peak_mib") > 0.0);

    let latency = run(&["latency", "--size", "2"]);
    assert_eq!(number(&latency, "promote_samples"), 2.0);
    assert_eq!(number(&latency, "analysis_failed_samples"), 2.0);
    assert!(number(&latency, "all_samples") >= 4.0);
    assert!(number(&latency, "latency_requests") > 0.0);
    assert!(number(&latency, "promote_median_ms") > 0.0);

    let idle = run(&["idle", "--size", "20", "--duration", "10s"]);
    assert_eq!(number(&idle, "finished_analysis_runs"), 20.0);
    assert_eq!(number(&idle, "analysis_runs_left"), 20.0);
    assert_eq!(
        number(&idle, "idle_writes"),
        0.0,
        "an idle controller writes nothing: {idle}"
    );
    assert!(number(&idle, "controller_cpu_seconds") > 0.0);

    // With an analysis step, so AnalysisRuns are created and deleted too.
    let soak = run(&[
        "soak",
        "--size",
        "10",
        "--duration",
        "20s",
        "--pause",
        "1",
        "--analysis",
    ]);
    assert!(number(&soak, "updates_completed") >= 10.0);
    assert!(number(&soak, "analysis_runs_left") >= 10.0, "{soak}");
    assert_eq!(number(&soak, "updates_unfinished"), 0.0);
    assert!(number(&soak, "soak_requests") > 0.0);
    assert!(number(&soak, "rss_first_mib") > 0.0);
    // The peak is the highest RSS the run saw, its samples included (VmHWM trails them).
    let highest_sample = soak["rss_samples_mib"]
        .as_array()
        .expect("RSS samples")
        .iter()
        .filter_map(|point| point[1].as_f64())
        .fold(0.0, f64::max);
    assert!(
        number(&soak, "controller_rss_peak_mib") >= highest_sample,
        "{soak}"
    );
    // 20 s holds two or three samples: too few for an interval, which the verdict says as null.
    assert_eq!(soak["rss_flat"], Value::Null, "{soak}");
}
