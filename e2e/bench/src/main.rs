//! `bench SCENARIO [--size N] [--duration D]`: runs kubesim and the real `ramp-controller` as separate
//! processes, drives a scenario through the Kubernetes API, and prints a table and a one-line JSON summary
//! of the controller's memory, CPU time and API requests (or, for `kubesim`, of kubesim's own figures).

mod harness;
mod objects;
mod report;
mod scenarios;
mod track;

use std::time::Duration;

use clap::{Parser, ValueEnum};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Cold start with many Rollouts, then a tenth of them updated at once.
    Scale,
    /// One Rollout: time from a promote, a pause's end, a failed AnalysisRun to the controller's write.
    Latency,
    /// Settled Rollouts and finished AnalysisRuns: writes, CPU and memory of an idle controller.
    Idle,
    /// Continuous updates of a set of Rollouts: memory over time.
    Soak,
    /// kubesim alone: many ReplicaSets and pods, memory, list latency, watch events/s, writes/s.
    Kubesim,
}

#[derive(Parser, Debug)]
#[command(about = "Benchmarks of the Ramp controller against kubesim")]
pub struct Args {
    pub scenario: Scenario,
    /// Rollouts (scale, idle, soak), updates in a row (latency) or ReplicaSets (kubesim, 5 pods each).
    #[arg(long, env = "RAMP_BENCH_SIZE")]
    pub size: Option<usize>,
    /// How long idle and soak measure (`60`, `60s`, `10m`).
    #[arg(long, env = "RAMP_BENCH_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Rollouts updated at once in the scale scenario (default: a tenth of --size).
    #[arg(long, env = "RAMP_BENCH_UPDATES")]
    pub updates: Option<usize>,
    /// Each timed pause of the scale and soak Rollouts, in seconds.
    #[arg(long, env = "RAMP_BENCH_PAUSE", default_value_t = 5)]
    pub pause: u64,
    /// Soak: an analysis step in every release (a Web metric that reads kubesim's `/version`), so
    /// AnalysisRuns are created all along and, past each Rollout's history limit, deleted.
    #[arg(long, env = "RAMP_BENCH_ANALYSIS")]
    pub analysis: bool,
    /// Time from a simulated pod's creation to Ready, in milliseconds.
    #[arg(long, env = "RAMP_BENCH_POD_READY_MS", default_value_t = 100)]
    pub pod_ready_ms: u64,
    /// Give up waiting for a phase of the scenario after this long.
    #[arg(long, env = "RAMP_BENCH_TIMEOUT", value_parser = parse_duration, default_value = "30m")]
    pub timeout: Duration,
}

impl Args {
    pub fn size(&self) -> usize {
        self.size.unwrap_or(match self.scenario {
            Scenario::Scale | Scenario::Idle | Scenario::Kubesim => 10_000,
            Scenario::Latency => 40,
            Scenario::Soak => 100,
        })
    }

    pub fn duration(&self) -> Duration {
        self.duration.unwrap_or(match self.scenario {
            Scenario::Soak => Duration::from_secs(600),
            _ => Duration::from_secs(60),
        })
    }
}

/// `500ms`, `10s`, `10m`, `1h`, or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(index) => text.split_at(index),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {text}"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("unknown unit in {text} (ms, s, m, h)")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("not a duration: {text}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let report = match args.scenario {
        Scenario::Scale => scenarios::scale(&args).await?,
        Scenario::Latency => scenarios::latency(&args).await?,
        Scenario::Idle => scenarios::idle(&args).await?,
        Scenario::Soak => scenarios::soak(&args).await?,
        Scenario::Kubesim => scenarios::kubesim(&args).await?,
    };
    report.print();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_or_without_a_unit() {
        assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
