//! The real `tessera-admin` binary against the test database and a running server.

mod clients;
mod doctor;
mod errors;
mod families;
mod keys;
mod system;

use std::process::Output;

use serde_json::Value;

pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

pub fn json(out: &Output) -> Value {
    let text = ok(out);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

pub fn s(v: &Value) -> String {
    v.as_str().unwrap().to_owned()
}
