//! How fast the machine is at the moment a run starts, in one figure. The machine is shared and its
//! speed swings: the same scenario has taken twice the CPU time for the same requests from one hour to
//! the next. Timing figures are read next to this one, so a slow run can be told from a slow build.

use std::hint::black_box;
use std::time::Instant;

use serde_json::Value;

use crate::objects;
use crate::report::quantile;

/// Round trips per trial: about 0.1 s of work on this machine.
const ROUNDS: u32 = 20_000;
/// Trials; the median is reported, so one interrupted trial does not move it.
const TRIALS: usize = 7;

/// Median wall time, in microseconds, to decode the scenarios' Rollout from JSON text and encode it
/// again, on one thread, before any process of the scenario starts. Lower is faster.
pub fn json_round_trip_micros() -> f64 {
    let rollout = objects::rollout("calibration", 2, 1, objects::timed_steps(5));
    let text = serde_json::to_string(&rollout).expect("a Rollout encodes");
    let trials: Vec<f64> = (0..TRIALS)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..ROUNDS {
                let value: Value = serde_json::from_str(black_box(&text)).expect("it decodes");
                black_box(serde_json::to_string(&value).expect("it encodes"));
            }
            started.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS)
        })
        .collect();
    quantile(&trials, 0.5)
}
