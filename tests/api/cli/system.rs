//! migrate, config check and shell completions.

use super::{json, ok};
use crate::helpers::{both_backends, Db, TestApp};

both_backends!(migrate_config_check_and_completions,);

async fn migrate_config_check_and_completions(db: Db) {
    let app = TestApp::spawn(db).await;
    let migrated = json(&app.admin(&["migrate", "-o", "json"], None).await);
    assert_eq!(
        migrated["applied"],
        serde_json::json!([]),
        "the server applied them already"
    );
    let fresh = crate::helpers::TestDb::new(db);
    let applied = json(
        &app.admin(
            &["migrate", "--database-url", &fresh.url, "-o", "json"],
            None,
        )
        .await,
    );
    let shipped = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))
        .unwrap()
        .count();
    assert_eq!(applied["applied"].as_array().unwrap().len(), shipped);

    let checked = json(
        &app.admin(
            &[
                "config",
                "check",
                "-o",
                "json",
                "--database-url",
                "postgres://tessera:hunter2secret@db.internal:5432/tessera",
            ],
            None,
        )
        .await,
    );
    assert_eq!(checked["tokens"]["access_ttl"], "15m");
    assert_eq!(checked["server"]["shutdown_timeout"], "30s");
    assert_eq!(checked["server"]["metrics_listen"], "");
    // Durations as they are written, not "2months 29days 2h 52m 48s".
    assert_eq!(checked["keys"]["max_age"], "90d");
    assert_eq!(checked["retention"]["dead_families"], "30d");
    assert_eq!(checked["retention"]["audit"], "90d");
    // Every key the example file documents is printed, and nothing else.
    let mut documented = crate::config::keys_of(&crate::config::example_file());
    documented.push("master_key".into());
    documented.sort();
    assert_eq!(crate::config::keys_of(&checked), documented);
    assert_eq!(
        checked["database"]["url"],
        "postgres://tessera:REDACTED@db.internal:5432/tessera"
    );
    let raw = checked.to_string();
    assert!(
        !raw.contains("hunter2secret") && !raw.contains(&app.master_key),
        "{raw}"
    );
    let text = ok(&app.admin(&["config", "check"], None).await);
    assert!(
        text.starts_with("configuration is valid") && text.contains("[tokens]"),
        "{text}"
    );
    assert!(text.contains("\nmaster_key = \"REDACTED\"\n"), "{text}");
    assert!(text.contains("\nmax_age = \"90d\"\n"), "{text}");
    // Without a master key in the configuration, the text says so rather than print `null`.
    let without: Vec<(String, String)> = app
        .env
        .iter()
        .filter(|(k, _)| k != "TESSERA_MASTER_KEY")
        .cloned()
        .collect();
    let out = tokio::task::spawn_blocking(move || {
        crate::helpers::run_admin(&without, &["config".into(), "check".into()], None)
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\n# master_key is not set\n"), "{text}");
    let out = app.admin(&["config", "check"], None).await;
    assert!(out.status.success());

    let bash = ok(&app.admin(&["completions", "bash"], None).await);
    assert!(bash.contains("tessera-admin") && bash.contains("rotate-secret"));
    let zsh = ok(&app.admin(&["completions", "zsh"], None).await);
    assert!(zsh.contains("#compdef tessera-admin"));
    let fish = ok(&app.admin(&["completions", "fish"], None).await);
    assert!(fish.contains("complete -c tessera-admin"));
}
