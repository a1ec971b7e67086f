//! `kubectl ramp demo`: it runs to completion unattended, and Ctrl-C leaves nothing behind.

use std::path::PathBuf;
use std::time::Duration;

use crate::support::*;

/// The bound for an unattended demo run in CI.
const DEMO_LIMIT: Duration = Duration::from_secs(120);

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ramp-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn the_demo_promotes_a_good_version_aborts_a_bad_one_and_exits_when_done() {
    let dir = scratch("demo");
    let kubeconfig = dir.join("demo.kubeconfig");
    let demo = Follow::start(plugin_command(&[
        "demo",
        "--exit-when-done",
        "--promote-after",
        "1s",
        "--kubeconfig-out",
        kubeconfig.to_str().unwrap_or_default(),
    ]));
    let (status, text) = demo.finish(DEMO_LIMIT);
    assert!(
        status.is_some_and(|s| s.success()),
        "the demo ended with {status:?} (None: still running after {DEMO_LIMIT:?}):\n{text}"
    );
    let position = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("the demo never said {needle:?}:\n{text}"))
    };
    // The good version: its analysis passes, a person promotes, and it becomes stable.
    let passed = position(": Successful");
    let promoted =
        position("$ kubectl ramp promote rollouts-demo: rollout 'rollouts-demo' promoted");
    let released = position("released: argoproj/rollouts-demo:yellow is stable");
    // The bad version: its analysis fails and Ramp aborts without anyone promoting or aborting.
    let failed = position(": Failed - Metric \"error-rate\" assessed Failed");
    let aborted = position("Degraded - RolloutAborted: Rollout aborted update to revision 3");
    let back = position("all 5 pods and all traffic are back on stable");
    assert!(
        passed < promoted && promoted < released && released < failed.min(aborted),
        "the good release comes first, in order:\n{text}"
    );
    assert!(back > failed.max(aborted), "{text}");
    // The `get rollout` tree is on screen at the end: the failed run beside the scaled-down canary.
    let last_tree = &text[text.rfind("Name:").unwrap_or(0)..];
    for row in [
        "✖ Degraded",
        "✖ Failed",
        "• ScaledDown  ",
        "stable",
        "canary",
    ] {
        assert!(
            last_tree.contains(row),
            "{row:?} missing from the final tree:\n{last_tree}"
        );
    }
    assert!(text.trim_end().ends_with("done"), "{text}");
    assert!(
        !kubeconfig.exists(),
        "the demo removes its kubeconfig when it ends"
    );
}

#[test]
fn ctrl_c_stops_the_demo_and_leaves_nothing_behind() {
    let dir = scratch("demo-interrupt");
    let kubeconfig = dir.join("demo.kubeconfig");
    let demo = Follow::start(plugin_command(&[
        "demo",
        "--kubeconfig-out",
        kubeconfig.to_str().unwrap_or_default(),
    ]));
    // Interrupt it mid-release, with the controller and kubesim busy.
    let address = wait_for("the demo's first release", DEMO_LIMIT, || {
        let text = demo.text();
        let url = text
            .lines()
            .find_map(|l| {
                l.split("kubesim serves the Kubernetes API at http://")
                    .nth(1)
            })
            .map(str::to_string);
        match url {
            Some(url) if text.contains("release 1:") => Ok(url),
            _ => Err(text),
        }
    });
    assert!(kubeconfig.exists(), "the demo wrote its kubeconfig");
    assert!(
        std::net::TcpStream::connect(&address).is_ok(),
        "kubesim answers at {address}"
    );
    demo.interrupt();
    let (status, text) = demo.finish(Duration::from_secs(10));
    assert!(
        status.is_some_and(|s| s.success()),
        "Ctrl-C ends the demo cleanly, got {status:?}:\n{text}"
    );
    assert!(
        text.contains("interrupted: stopping kubesim and the controller"),
        "{text}"
    );
    assert!(!kubeconfig.exists(), "the kubeconfig is removed on Ctrl-C");
    assert!(
        std::net::TcpStream::connect(&address).is_err(),
        "nothing listens at {address} after the demo"
    );
}
