//! Request bodies for the proof server's job API, built from the
//! `examples/income-threshold` plan and its payments CSV; shared by the
//! in-process API tests (`crates/server/tests/api.rs`) and the tests that
//! start `zkaudit serve` (`crates/cli/tests/server.rs`).

use std::path::PathBuf;

use serde_json::{json, Value};

fn example(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/income-threshold").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The body of `POST /v1/prove/income-threshold`: the example payments as
/// `payment_history`, a threshold and `mode`.
pub fn income_input(mode: &str) -> Value {
    let history: Vec<Value> = example("payments.csv")
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            json!({"date": f[0], "amount": f[1], "kind": f[2]})
        })
        .collect();
    json!({"payment_history": history, "threshold": "50000.00", "mode": mode})
}

/// The body of `POST /v1/jobs`: the example plan with its CSV inline.
pub fn plan_job(mode: &str) -> Value {
    json!({"plan": example("plan.yaml"), "data": {"payments": {"csv": example("payments.csv")}}, "mode": mode})
}
