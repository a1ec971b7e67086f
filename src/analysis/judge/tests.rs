//! Table tests for the judge: scheduling, every limit, dry runs and the run's verdict.

use super::*;
use crate::api::analysis::MetricProvider;

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + second).unwrap()
}

fn metric(name: &str) -> Metric {
    Metric {
        name: name.into(),
        provider: MetricProvider {
            web: Some(Default::default()),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn int(n: i32) -> Option<IntOrString> {
    Some(IntOrString::Int(n))
}

fn measured(metric: &str, phase: AnalysisPhase, second: i64) -> Taken {
    Taken {
        metric: metric.into(),
        measurement: Measurement {
            phase,
            message: if phase == AnalysisPhase::Error {
                "connection refused".into()
            } else {
                String::new()
            },
            started_at: Some(Time(at(second))),
            finished_at: Some(Time(at(second))),
            value: "[0.5]".into(),
            ..Default::default()
        },
        metadata: BTreeMap::new(),
    }
}

fn run_of(metrics: &[Metric]) -> Run<'_> {
    Run {
        metrics,
        terminate: false,
        dry_run: &[],
        retention: &[],
    }
}

/// Feeds `phases` one measurement per second into a run of `metric` and returns the last judgement.
fn feed(metric: Metric, phases: &[AnalysisPhase]) -> Judgement {
    let metrics = [metric];
    let run = run_of(&metrics);
    let mut status = AnalysisRunStatus::default();
    let mut last = judge(&run, &status, vec![], at(0));
    for (i, phase) in phases.iter().enumerate() {
        status = last.status.clone();
        last = judge(
            &run,
            &status,
            vec![measured(&metrics[0].name, *phase, i as i64 + 1)],
            at(i as i64 + 1),
        );
    }
    last
}

use AnalysisPhase::*;

#[test]
fn one_failure_fails_with_the_default_failure_limit() {
    let judgement = feed(metric("errors"), &[Failed]);
    assert_eq!(judgement.status.phase, Some(Failed));
    assert_eq!(
        judgement.status.message,
        "Metric \"errors\" assessed Failed due to failed (1) > failureLimit (0)"
    );
    assert!(judgement.status.completed_at.is_some());
    assert_eq!(judgement.requeue_after, None);
    let reasons: Vec<&str> = judgement.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, ["MetricFailed", "AnalysisRunFailed"]);
    assert!(judgement.events.iter().all(|e| e.warning));
    assert_eq!(judgement.status.metric_results[0].failed, 1);
    assert_eq!(judgement.status.metric_results[0].count, 1);
}

#[test]
fn limits_table() {
    struct Case {
        name: &'static str,
        metric: Metric,
        phases: Vec<AnalysisPhase>,
        expect: AnalysisPhase,
        message: &'static str,
    }
    let with = |f: &dyn Fn(&mut Metric)| {
        let mut m = metric("m");
        m.interval = "1s".into();
        f(&mut m);
        m
    };
    let cases = [
        Case {
            name: "count 1 success",
            metric: metric("m"),
            phases: vec![Successful],
            expect: Successful,
            message: "",
        },
        Case {
            name: "failureLimit 2: third failure fails",
            metric: with(&|m| {
                m.count = int(5);
                m.failure_limit = int(2);
            }),
            phases: vec![Failed, Failed, Failed],
            expect: Failed,
            message: "Metric \"m\" assessed Failed due to failed (3) > failureLimit (2)",
        },
        Case {
            name: "failureLimit 2: two failures keep running",
            metric: with(&|m| {
                m.count = int(5);
                m.failure_limit = int(2);
            }),
            phases: vec![Failed, Failed],
            expect: Running,
            message: "",
        },
        Case {
            name: "failures within the limit pass at count",
            metric: with(&|m| {
                m.count = int(3);
                m.failure_limit = int(1);
            }),
            phases: vec![Failed, Successful, Successful],
            expect: Successful,
            message: "",
        },
        Case {
            name: "inconclusive",
            metric: metric("m"),
            phases: vec![Inconclusive],
            expect: Inconclusive,
            message: "Metric \"m\" assessed Inconclusive due to inconclusive (1) > inconclusiveLimit (0)",
        },
        Case {
            name: "errors do not count toward the failure limit",
            metric: metric("m"),
            phases: vec![Error, Error, Error, Error],
            expect: Running,
            message: "",
        },
        Case {
            name: "fifth consecutive error errors the run",
            metric: metric("m"),
            phases: vec![Error, Error, Error, Error, Error],
            expect: Error,
            message: "Metric \"m\" assessed Error due to consecutiveErrors (5) > consecutiveErrorLimit (4): \"Error Message: connection refused\"",
        },
        Case {
            name: "a success resets consecutive errors",
            metric: with(&|m| m.count = int(10)),
            phases: vec![
                Error, Error, Error, Error, Successful, Error, Error, Error, Error,
            ],
            expect: Running,
            message: "",
        },
        Case {
            name: "consecutiveErrorLimit 0",
            metric: with(&|m| m.consecutive_error_limit = int(0)),
            phases: vec![Error],
            expect: Error,
            message: "Metric \"m\" assessed Error due to consecutiveErrors (1) > consecutiveErrorLimit (0): \"Error Message: connection refused\"",
        },
        Case {
            name: "consecutive successes end early",
            metric: with(&|m| {
                m.count = int(10);
                m.failure_limit = int(5);
                m.consecutive_success_limit = int(2);
            }),
            phases: vec![Failed, Successful, Successful],
            expect: Successful,
            message: "",
        },
        Case {
            name: "count reached without the consecutive successes is inconclusive",
            metric: with(&|m| {
                m.count = int(3);
                m.failure_limit = int(5);
                m.consecutive_success_limit = int(2);
            }),
            phases: vec![Successful, Failed, Successful],
            expect: Inconclusive,
            message: "",
        },
        Case {
            name: "failureLimit -1 with consecutive successes fails at count",
            metric: with(&|m| {
                m.count = int(3);
                m.failure_limit = int(-1);
                m.consecutive_success_limit = int(2);
            }),
            phases: vec![Successful, Failed, Successful],
            expect: Failed,
            message: "",
        },
        Case {
            name: "templated limits parse",
            metric: with(&|m| {
                m.count = Some(IntOrString::String("2".into()));
                m.failure_limit = Some(IntOrString::String("1".into()));
            }),
            phases: vec![Failed, Successful],
            expect: Successful,
            message: "",
        },
    ];
    for case in cases {
        let judgement = feed(case.metric, &case.phases);
        assert_eq!(judgement.status.phase, Some(case.expect), "{}", case.name);
        assert_eq!(judgement.status.message, case.message, "{}", case.name);
    }
}

#[test]
fn schedule_follows_initial_delay_interval_and_error_retry() {
    let mut m = metric("m");
    m.initial_delay = "5s".into();
    m.interval = "30s".into();
    m.count = int(3);
    let metrics = [m];
    let run = run_of(&metrics);
    let first = judge(&run, &AnalysisRunStatus::default(), vec![], at(0));
    assert_eq!(first.status.phase, Some(Running));
    assert_eq!(first.requeue_after, Some(Duration::from_secs(5)));
    assert!(due(&run, &first.status, at(4)).unwrap().is_empty());
    assert_eq!(due(&run, &first.status, at(5)).unwrap().len(), 1);
    let second = judge(
        &run,
        &first.status,
        vec![measured("m", Successful, 5)],
        at(5),
    );
    assert_eq!(second.requeue_after, Some(Duration::from_secs(30)));
    assert!(due(&run, &second.status, at(34)).unwrap().is_empty());
    assert_eq!(due(&run, &second.status, at(35)).unwrap().len(), 1);
    let errored = judge(&run, &second.status, vec![measured("m", Error, 35)], at(35));
    assert_eq!(errored.requeue_after, Some(Duration::from_secs(10)));
    assert_eq!(due(&run, &errored.status, at(45)).unwrap().len(), 1);
}

#[test]
fn an_unbounded_metric_runs_until_terminated() {
    let mut m = metric("m");
    m.interval = "10s".into();
    let metrics = [m];
    let mut run = run_of(&metrics);
    let mut status = judge(&run, &AnalysisRunStatus::default(), vec![], at(0)).status;
    for i in 0..20 {
        status = judge(
            &run,
            &status,
            vec![measured("m", Successful, i * 10)],
            at(i * 10),
        )
        .status;
    }
    assert_eq!(status.phase, Some(Running));
    assert_eq!(status.metric_results[0].count, 20);
    assert_eq!(
        status.metric_results[0].measurements.len(),
        DEFAULT_MEASUREMENT_RETENTION,
        "status stays bounded however long the run"
    );
    run.terminate = true;
    assert!(due(&run, &status, at(1_000)).unwrap().is_empty());
    let ended = judge(&run, &status, vec![], at(1_000));
    assert_eq!(ended.status.phase, Some(Successful));
    assert_eq!(ended.status.message, "Run Terminated");
}

#[test]
fn a_failed_metric_stops_the_others() {
    let mut slow = metric("latency");
    slow.interval = "10s".into();
    slow.count = int(5);
    let metrics = [metric("errors"), slow];
    let run = run_of(&metrics);
    let status = judge(&run, &AnalysisRunStatus::default(), vec![], at(0)).status;
    let judged = judge(
        &run,
        &status,
        vec![
            measured("errors", Failed, 1),
            measured("latency", Successful, 1),
        ],
        at(1),
    );
    assert_eq!(judged.status.phase, Some(Failed));
    assert!(
        judged
            .status
            .message
            .starts_with("Metric \"errors\" assessed Failed")
    );
    assert!(due(&run, &judged.status, at(100)).unwrap().is_empty());
}

#[test]
fn dry_run_metrics_never_decide() {
    let metrics = [metric("shadow"), metric("real")];
    let dry = [DryRun {
        metric_name: "shad.*".into(),
    }];
    let run = Run {
        dry_run: &dry,
        ..run_of(&metrics)
    };
    let status = judge(&run, &AnalysisRunStatus::default(), vec![], at(0)).status;
    let judged = judge(
        &run,
        &status,
        vec![
            measured("shadow", Failed, 1),
            measured("real", Successful, 1),
        ],
        at(1),
    );
    assert_eq!(judged.status.phase, Some(Successful));
    let shadow = &judged.status.metric_results[0];
    assert!(shadow.dry_run);
    assert_eq!(shadow.phase, Failed);
    assert_eq!(
        shadow.message,
        "Metric assessed Failed due to failed (1) > failureLimit (0)"
    );
    assert_eq!(judged.status.dry_run_summary.as_ref().unwrap().failed, 1);
    assert_eq!(judged.status.run_summary.as_ref().unwrap().successful, 1);
    assert_eq!(judged.status.run_summary.as_ref().unwrap().failed, 0);
}

#[test]
fn rules_that_match_nothing_error_the_run() {
    let metrics = [metric("m")];
    let dry = [DryRun {
        metric_name: "nope".into(),
    }];
    let run = Run {
        dry_run: &dry,
        ..run_of(&metrics)
    };
    let judged = judge(&run, &AnalysisRunStatus::default(), vec![], at(0));
    assert_eq!(judged.status.phase, Some(Error));
    assert_eq!(
        judged.status.message,
        "Analysis spec invalid: dryRun[0]: Rule didn't match any metric name(s)"
    );
    let retention = [MeasurementRetention {
        metric_name: "m".into(),
        limit: 2,
    }];
    let run = Run {
        retention: &retention,
        ..run_of(&metrics)
    };
    let mut m = metrics[0].clone();
    m.interval = "1s".into();
    m.count = int(5);
    let many = [m];
    let run = Run {
        metrics: &many,
        ..run
    };
    let mut status = AnalysisRunStatus::default();
    for i in 0..4 {
        status = judge(&run, &status, vec![measured("m", Successful, i)], at(i)).status;
    }
    assert_eq!(status.metric_results[0].measurements.len(), 2);
}

#[test]
fn judging_again_with_nothing_new_changes_nothing() {
    let mut m = metric("m");
    m.interval = "10s".into();
    m.count = int(3);
    let metrics = [m];
    let run = run_of(&metrics);
    let once = judge(
        &run,
        &AnalysisRunStatus::default(),
        vec![measured("m", Successful, 0)],
        at(0),
    );
    let again = judge(&run, &once.status, vec![], at(3));
    assert_eq!(again.status, once.status);
    assert!(again.events.is_empty());
    let done = feed(metric("x"), &[Successful]);
    let metrics = [metric("x")];
    let after = judge(&run_of(&metrics), &done.status, vec![], at(100));
    assert_eq!(after.status, done.status);
    assert!(after.events.is_empty());
}

#[test]
fn in_flight_measurements_resume_and_terminate() {
    let metrics = [metric("job")];
    let run = run_of(&metrics);
    let mut running = measured("job", Running, 0);
    running.measurement.finished_at = None;
    running.measurement.resume_at = Some(Time(at(5)));
    let status = judge(&run, &AnalysisRunStatus::default(), vec![running], at(0)).status;
    assert_eq!(status.phase, Some(Running));
    assert!(due(&run, &status, at(4)).unwrap().is_empty());
    let tasks = due(&run, &status, at(5)).unwrap();
    assert_eq!(tasks.len(), 1);
    assert!(tasks[0].in_flight.is_some() && !tasks[0].terminate);
    let finished = judge(&run, &status, vec![measured("job", Successful, 6)], at(6));
    assert_eq!(finished.status.phase, Some(Successful));
    assert_eq!(finished.status.metric_results[0].measurements.len(), 1);
    let stop = Run {
        terminate: true,
        ..run
    };
    let tasks = due(&stop, &status, at(1)).unwrap();
    assert!(tasks[0].terminate);
}
