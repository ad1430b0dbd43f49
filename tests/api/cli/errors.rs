//! How the CLI fails and asks: one-line errors, exit codes, confirmations.

use super::{json, s};
use crate::helpers::{both_backends, claims, Db, TestApp};

both_backends!(
    admin_errors_are_one_line_and_non_zero,
    destructive_commands_need_confirmation,
);

async fn admin_errors_are_one_line_and_non_zero(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let cases: Vec<(Vec<&str>, Option<&str>, &str)> = vec![
        (
            vec!["user", "create", "alice", "--password-stdin"],
            Some("another password\n"),
            "already exists",
        ),
        (
            vec!["user", "create", "zoe", "--password-stdin"],
            Some("short\n"),
            "8 to",
        ),
        (vec!["user", "create", "zoe"], None, "--password-stdin"),
        (vec!["user", "show", "nobody"], None, "no user named nobody"),
        (
            vec!["user", "disable", "nobody", "--yes"],
            None,
            "no user named nobody",
        ),
        (
            vec!["user", "set-password", "nobody", "--password-stdin"],
            Some("long enough pass\n"),
            "no user named nobody",
        ),
        (
            vec![
                "client",
                "register",
                "--name",
                "x",
                "--grant",
                "password",
                "--redirect-uri",
                "not a uri",
            ],
            None,
            "--redirect-uri",
        ),
        (
            vec![
                "client",
                "register",
                "--name",
                "x",
                "--grant",
                "password",
                "--redirect-uri",
                "http://evil.example/cb",
            ],
            None,
            "http on localhost",
        ),
        (
            vec![
                "client",
                "register",
                "--name",
                "x",
                "--grant",
                "password",
                "--scope",
                "bad\"scope",
            ],
            None,
            "--scope",
        ),
        (
            vec![
                "client",
                "register",
                "--name",
                "x",
                "--public",
                "--grant",
                "client_credentials",
            ],
            None,
            "public client",
        ),
        (
            vec!["client", "register", "--name", " ", "--grant", "password"],
            None,
            "name",
        ),
        (
            vec!["client", "show", "nope"],
            None,
            "no client with id nope",
        ),
        (
            vec!["client", "update", "nope", "--name", "x"],
            None,
            "no client with id nope",
        ),
        (
            vec!["client", "disable", "nope", "--yes"],
            None,
            "no client with id nope",
        ),
        (
            vec!["family", "revoke", "no-such-family", "--yes"],
            None,
            "no token family",
        ),
        (
            vec!["family", "show", "no-such-family"],
            None,
            "no token family",
        ),
        (
            vec!["family", "revoke", "--user", "nobody", "--yes"],
            None,
            "no user named nobody",
        ),
        (
            vec!["family", "revoke", "--client", "nope", "--yes"],
            None,
            "no client",
        ),
        (vec!["incident", "show", "nope"], None, "no incident"),
        (
            vec!["key", "retire", "nope", "--yes"],
            None,
            "no signing key",
        ),
        (
            vec![
                "client",
                "list",
                "--database-url",
                "postgres://nobody@127.0.0.1:1/none",
            ],
            None,
            "database unreachable",
        ),
        (
            vec!["client", "list", "--database-url", "mysql://x"],
            None,
            "database.url",
        ),
    ];
    for (args, stdin, expected) in cases {
        let out = app.admin(&args, stdin).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?}: one line: {stderr}"
        );
        assert!(
            stderr.starts_with("tessera-admin: ") && stderr.contains(expected),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let (id, _) = app.password_client().await;
    let out = app.admin(&["client", "update", &id], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to change"));

    // Key commands refuse a master key that cannot open the server's keys.
    let mut env = crate::helpers::test_env(
        &app.db_url,
        "d3JvbmctbWFzdGVyLWtleS13cm9uZy1tYXN0ZXIta2V5LXdyb25nLW1hc3Rlcg",
    );
    env.retain(|(k, _)| k != "TESSERA_PASSWORDS__ARGON2_MEMORY_KIB");
    let args: Vec<String> = ["key", "rotate"].iter().map(|s| s.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || crate::helpers::run_admin(&env, &args, None))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("master key does not match"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A database whose schema is behind: only `migrate` changes it.
    let fresh = crate::helpers::TestDb::new(db);
    let out = app
        .admin(&["client", "list", "--database-url", &fresh.url], None)
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("run `tessera-admin migrate`"));

    // Usage errors come from clap, with its exit code 2.
    for args in [
        vec!["client", "register", "--name", "x", "--grant", "implicit"],
        vec!["family", "revoke"],
        vec!["family", "list", "--active", "--revoked"],
    ] {
        let out = app.admin(&args, None).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

async fn destructive_commands_need_confirmation(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let tokens = app.password_grant((&id, &secret), "alice").await;
    let sid = s(&claims(&s(&tokens["access_token"]))["sid"]);
    let kid = s(&json(&app.admin(&["key", "list", "-o", "json"], None).await)[0]["kid"]);
    for args in [
        vec!["client", "rotate-secret", id.as_str()],
        vec!["client", "disable", id.as_str()],
        vec!["client", "delete", id.as_str(), "--revoke-families"],
        vec!["user", "disable", "alice"],
        vec!["family", "revoke", sid.as_str()],
        vec!["key", "retire", kid.as_str()],
    ] {
        // No terminal here: refused, nothing changed.
        let out = app.admin(&args, Some("y\n")).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr.contains("--yes"), "{args:?}: {stderr}");
    }
    assert_eq!(
        app.refresh((&id, &secret), &s(&tokens["refresh_token"]))
            .await
            .status(),
        200,
        "nothing was changed"
    );
}

/// The y/N question on a real terminal (a pty made by `script`).
#[tokio::test]
async fn destructive_commands_ask_on_a_terminal() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("`script` (util-linux) is needed for this test");
    }
    let app = TestApp::spawn(Db::Sqlite).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let tokens = app.password_grant((&id, &secret), "alice").await;
    let sid = s(&claims(&s(&tokens["access_token"]))["sid"]);
    let run = |answer: &'static str| {
        let env = crate::helpers::test_env(&app.db_url, &app.master_key);
        let cmd = format!(
            "{} family revoke {sid}",
            crate::helpers::admin_bin().display()
        );
        async move {
            tokio::task::spawn_blocking(move || {
                use std::io::Write;
                let mut child = std::process::Command::new("script")
                    .args(["-qec", &cmd, "/dev/null"])
                    .env_clear()
                    .env("PATH", std::env::var("PATH").unwrap_or_default())
                    .envs(env)
                    .current_dir(std::env::temp_dir())
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                let mut stdin = child.stdin.take().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(500));
                stdin.write_all(answer.as_bytes()).unwrap();
                drop(stdin);
                child.wait_with_output().unwrap()
            })
            .await
            .unwrap()
        }
    };
    let no = run("n\n").await;
    let text = String::from_utf8_lossy(&no.stdout);
    assert!(
        text.contains("Revoke family") && text.contains("[y/N]"),
        "{text}"
    );
    assert!(text.contains("cancelled"), "{text}");
    assert_eq!(
        app.refresh((&id, &secret), &s(&tokens["refresh_token"]))
            .await
            .status(),
        200
    );
    let yes = run("y\n").await;
    let text = String::from_utf8_lossy(&yes.stdout);
    assert!(text.contains("revoked 1 token families"), "{text}");
}
