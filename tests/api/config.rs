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
    assert_eq!(s.tokens.reuse_grace.as_secs(), 5);
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

/// Argon2 costs it cannot use are refused when the configuration is read, naming the keys.
/// RS256 keys sign only ID tokens: access tokens cannot be made with one.
#[test]
fn access_tokens_are_not_signed_with_rsa() {
    let e = Settings::from_env(env(&[("TESSERA_KEYS__ALGORITHM", "RS256")])).unwrap_err();
    assert!(
        format!("{e:#}").contains("keys.algorithm must be ES256 or EdDSA"),
        "{e:#}"
    );
}

#[test]
fn impossible_argon2_costs_name_their_keys() {
    let e = Settings::from_env(env(&[("TESSERA_PASSWORDS__ARGON2_MEMORY_KIB", "1")])).unwrap_err();
    assert!(format!("{e:#}").contains("passwords.argon2_"), "{e:#}");
    Settings::from_env(env(&[("TESSERA_PASSWORDS__ARGON2_MEMORY_KIB", "4096")])).unwrap();
}

/// A trusted proxy that is not an address or range is refused, naming the key.
#[test]
fn trusted_proxies_must_be_addresses_or_ranges() {
    let e = Settings::from_env(env(&[(
        "TESSERA_SERVER__TRUSTED_PROXIES",
        "10.0.0.0/8 proxy.lan",
    )]))
    .unwrap_err();
    assert!(format!("{e:#}").contains("server.trusted_proxies"), "{e:#}");
    let s = Settings::from_env(env(&[(
        "TESSERA_SERVER__TRUSTED_PROXIES",
        "10.0.0.0/8, ::1",
    )]))
    .unwrap();
    assert_eq!(s.server.trusted_proxies.len(), 2);
}

/// Users write lists in TOML: `trusted_proxies = ["10.0.0.0/8", "::1"]` is read as two ranges,
/// and a bad entry in a list is refused naming the key.
#[test]
fn trusted_proxies_may_be_a_toml_list() {
    let dir = std::env::temp_dir().join(format!("tessera-cfg-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("tessera.toml");
    std::fs::write(
        &file,
        "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"192.168.1.5\", \"::1\"]\n",
    )
    .unwrap();
    let s = Settings::load_from(Some(&file), env(&[])).unwrap();
    let shown: Vec<String> = s
        .server
        .trusted_proxies
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(shown, ["10.0.0.0/8", "192.168.1.5/32", "::1/128"]);
    assert!(s.server.trusted_proxies[0].contains(&"10.1.2.3".parse::<std::net::IpAddr>().unwrap()));

    std::fs::write(
        &file,
        "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.lan\"]\n",
    )
    .unwrap();
    let e = Settings::load_from(Some(&file), env(&[])).unwrap_err();
    assert!(format!("{e:#}").contains("server.trusted_proxies"), "{e:#}");
    assert!(format!("{e:#}").contains("proxy.lan"), "{e:#}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every key of a JSON object as `section.key`, sorted.
pub fn keys_of(value: &serde_json::Value) -> Vec<String> {
    let mut keys = Vec::new();
    if let serde_json::Value::Object(top) = value {
        for (name, v) in top {
            match v {
                serde_json::Value::Object(inner) => {
                    keys.extend(inner.keys().map(|k| format!("{name}.{k}")))
                }
                _ => keys.push(name.clone()),
            }
        }
    }
    keys.sort();
    keys
}

/// The keys and values of `tessera.example.toml`, as JSON.
pub fn example_file() -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tessera.example.toml");
    let text = std::fs::read_to_string(path).unwrap();
    serde_json::to_value(toml::from_str::<toml::Table>(&text).unwrap()).unwrap()
}

/// The example file, the defaults and the README's configuration table name the same keys, and
/// the example's values are the defaults: none of the three can fall behind the others.
#[test]
fn the_example_file_is_valid_and_complete() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tessera.example.toml");
    let from_example =
        serde_json::to_value(Settings::load_from(Some(&path), env(&[])).unwrap()).unwrap();
    let defaults = serde_json::to_value(Settings::from_env(env(&[])).unwrap()).unwrap();
    assert_eq!(
        from_example, defaults,
        "the example file's values are the defaults"
    );

    // `master_key` is a secret: the example shows it commented out.
    let mut documented = keys_of(&example_file());
    documented.push("master_key".into());
    documented.sort();
    assert_eq!(
        documented,
        keys_of(&defaults),
        "keys of tessera.example.toml vs Settings"
    );
    let example = std::fs::read_to_string(&path).unwrap();
    assert!(
        example.contains("\n# master_key = "),
        "the example mentions master_key"
    );

    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme.split("\n## Configuration\n").nth(1).unwrap();
    let section = section.split("\n## ").next().unwrap();
    let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| `")).collect();
    let in_table: Vec<String> = rows
        .iter()
        .map(|row| row.split('`').nth(1).unwrap().to_owned())
        .collect();
    let mut sorted = in_table.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        keys_of(&defaults),
        "keys of the README's configuration table"
    );
    for (row, key) in rows.iter().zip(&in_table) {
        let variable = format!("`TESSERA_{}`", key.to_uppercase().replace('.', "__"));
        assert!(row.contains(&variable), "{row}: names {variable}");
        let (section, name) = key.split_once('.').unwrap_or(("", key));
        let value = if section.is_empty() {
            &defaults[name]
        } else {
            &defaults[section][name]
        };
        let default_cell = row.rsplit(" | ").next().unwrap();
        let expected = match value {
            serde_json::Value::String(s) if s.is_empty() => "empty".to_owned(),
            serde_json::Value::Array(a) if a.is_empty() => "empty".to_owned(),
            serde_json::Value::Null => "unset".to_owned(),
            serde_json::Value::String(s) => format!("`{s}`"),
            other => format!("`{other}`"),
        };
        assert!(
            default_cell.starts_with(&expected),
            "{row}: the default is {expected}"
        );
    }
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
            vec![("TESSERA_SERVER__METRICS_LISTEN", "localhost")],
            "server.metrics_listen",
        ),
        (
            vec![("TESSERA_SERVER__SHUTDOWN_TIMEOUT", "2h")],
            "server.shutdown_timeout",
        ),
        (vec![("TESSERA_KEYS__MAX_AGE", "old")], "keys.max_age"),
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

/// Starts the real binary in `dir` with only `env`; returns it once /healthz answers.
async fn start_binary(
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .current_dir(dir)
        .env_clear()
        .env("TESSERA_SERVER__LISTEN", &listen)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://{listen}");
    crate::helpers::wait_healthy(&base).await;
    (child, base)
}

async fn kid(base: &str) -> Vec<serde_json::Value> {
    let jwks: serde_json::Value = reqwest::get(format!("{base}/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"].as_array().unwrap().clone()
}

#[tokio::test]
async fn first_start_creates_the_database_the_master_key_and_a_signing_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("tessera-first-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();

    let (mut server, base) = start_binary(&dir, &[]).await;
    let keys = kid(&base).await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(dir.join("data/tessera.db").is_file());
    let key_file = dir.join("data/master.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the master key is private");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["alg"], "ES256");

    // A restart reuses the key file and the stored signing key.
    let (mut server, base) = start_binary(&dir, &[]).await;
    assert_eq!(kid(&base).await, keys);
    server.kill().unwrap();
    server.wait().unwrap();

    // TESSERA_MASTER_KEY_FILE names the file; a different master key cannot open the stored
    // signing key, and start-up says so in one line.
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .current_dir(&dir)
        .env_clear()
        .env("TESSERA_SERVER__LISTEN", "127.0.0.1:0")
        .env("TESSERA_MASTER_KEY_FILE", dir.join("other.key"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(dir.join("other.key").is_file());
    assert!(
        stderr
            .trim()
            .lines()
            .last()
            .unwrap()
            .contains("master key does not match"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The data folder and the database are the owner's alone, and a master key file that other
/// users may read stops the server with the command that fixes it.
#[tokio::test]
async fn data_files_are_private_and_an_exposed_master_key_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("tessera-perm-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut server, _) = start_binary(&dir, &[]).await;
    server.kill().unwrap();
    server.wait().unwrap();
    let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("data"), 0o700);
    assert_eq!(mode("data/tessera.db"), 0o600);
    assert_eq!(mode("data/master.key"), 0o600);

    // A database made readable by others (an older install, a restored backup) is made
    // private again at start-up.
    let db = dir.join("data/tessera.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (mut server, _) = start_binary(&dir, &[]).await;
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(mode("data/tessera.db"), 0o600);

    let key = dir.join("data/master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .current_dir(&dir)
        .env_clear()
        .env("TESSERA_SERVER__LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let last = stderr.trim().lines().last().unwrap_or_default();
    assert!(
        last.contains("readable by other users") && last.contains("chmod 600"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
