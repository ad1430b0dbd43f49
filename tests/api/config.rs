//! Configuration errors stop start-up with one line naming the key or the problem.

use std::process::Command;

use tessera::settings::Settings;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn defaults_match_the_documented_ones() {
    let s = Settings::from_env(env(&[])).unwrap();
    assert_eq!(s.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(s.issuer(), "http://127.0.0.1:8080");
    assert_eq!(s.database.url.expose(), "sqlite://data/tessera.db");
    assert_eq!(s.tokens.access_ttl.as_secs(), 15 * 60);
    assert_eq!(s.tokens.refresh_idle_ttl.as_secs(), 14 * 86400);
    assert_eq!(s.tokens.refresh_absolute_ttl.as_secs(), 30 * 86400);
    assert_eq!(s.tokens.reuse_grace.as_secs(), 10);
    assert_eq!(s.keys.algorithm, tessera::domain::keys::KeyAlgorithm::ES256);
    assert_eq!(s.master_key_file.to_str(), Some("data/master.key"));
}

#[test]
fn environment_overrides_and_errors_name_the_key() {
    let s = Settings::from_env(env(&[
        ("TESSERA_TOKENS__ACCESS_TTL", "5m"),
        ("TESSERA_LOG_FORMAT", "json"),
        ("TESSERA_TEST_POSTGRES_URL", "x"),
    ]))
    .unwrap();
    assert_eq!(s.tokens.access_ttl.as_secs(), 300);

    // A misspelt section is an error, not silently ignored.
    let e = Settings::from_env(env(&[("TESSERA_TOKEN__ACCESS_TTL", "5m")])).unwrap_err();
    assert!(format!("{e:#}").contains("token"), "{e:#}");

    let e = Settings::from_env(env(&[("TESSERA_TOKENS__ACCESS_TTL", "soon")])).unwrap_err();
    assert!(format!("{e:#}").contains("tokens.access_ttl"), "{e:#}");
    let e = Settings::from_env(env(&[("TESSERA_TOKENS__ACESS_TTL", "5m")])).unwrap_err();
    assert!(format!("{e:#}").contains("acess_ttl"), "{e:#}");
    let e = Settings::from_env(env(&[("TESSERA_KEYS__ALGORITHM", "HS256")])).unwrap_err();
    assert!(format!("{e:#}").contains("keys.algorithm"), "{e:#}");
}

#[test]
fn the_example_file_is_valid_and_complete() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tessera.example.toml");
    let s = Settings::load_from(Some(&path), env(&[])).unwrap();
    assert_eq!(s.tokens.access_ttl.as_secs(), 15 * 60);
}

fn tessera(env_pairs: &[(&str, &str)]) -> std::process::Output {
    let dir = std::env::temp_dir().join(format!("tessera-cfg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .current_dir(&dir)
        .env_clear()
        .envs(env_pairs.iter().copied())
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    out
}

#[test]
fn the_server_refuses_to_start_on_bad_configuration_with_one_line() {
    for (pairs, expected) in [
        (
            vec![("TESSERA_TOKENS__REUSE_GRACE", "ten")],
            "tokens.reuse_grace",
        ),
        (vec![("TESSERA_SERVER__PORT", "80")], "port"),
        (
            vec![(
                "TESSERA_DATABASE__URL",
                "postgres://nobody@127.0.0.1:1/none",
            )],
            "database unreachable",
        ),
        (vec![("TESSERA_DATABASE__URL", "mysql://x")], "database.url"),
        (vec![("TESSERA_MASTER_KEY", "too-short")], "master"),
    ] {
        let out = tessera(&pairs);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{pairs:?}: {stderr}");
        let last = stderr.trim().lines().last().unwrap_or_default();
        assert!(
            last.starts_with("tessera: ") && last.contains(expected),
            "{pairs:?}: {stderr}"
        );
    }
}
