#![allow(clippy::unwrap_used)]
//! The binary's help lists every command. (Its behaviour against real databases is tested in
//! the server's API suite, which runs this binary.)

use std::process::Command;

#[test]
fn help_lists_the_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-admin"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for command in ["client", "user", "family"] {
        assert!(text.contains(command), "{command} missing from:\n{text}");
    }
}

#[test]
fn no_arguments_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_tessera-admin"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
