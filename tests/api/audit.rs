//! Security events reach `audit_events` (and `tessera-admin audit list`), without secrets.

use serde_json::Value;

use crate::helpers::{both_backends, claims, Db, TestApp, PASSWORD};

both_backends!(
    security_events_are_audited_without_secrets,
    every_way_of_revoking_a_family_is_audited_once,
    a_failed_audit_write_does_not_undo_what_it_records,
);

async fn security_events_are_audited_without_secrets(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_THROTTLE__MAX_FAILURES_PER_USER", "2")]).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let c = (id.as_str(), secret.as_str());
    let login = |password: &'static str| {
        let app = &app;
        async move {
            app.token(
                Some(c),
                &[
                    ("grant_type", "password"),
                    ("username", "alice"),
                    ("password", password),
                ],
            )
            .await
        }
    };
    let first: Value = login(PASSWORD).await.json().await.unwrap();
    login("wrong-password-1").await;
    login("wrong-password-2").await;
    login("wrong-password-3").await; // throttled
                                     // A replay after the successor was used: reuse detected.
    let second: Value = app
        .refreshed(c, first["refresh_token"].as_str().unwrap())
        .await;
    app.refresh(c, second["refresh_token"].as_str().unwrap())
        .await;
    app.refresh(c, first["refresh_token"].as_str().unwrap())
        .await;
    // Administrative changes.
    let out = app.admin(&["client", "disable", &id, "--yes"], None).await;
    assert!(out.status.success());
    let out = app.admin(&["user", "unlock", "alice"], None).await;
    assert!(out.status.success());

    let out = app.admin(&["audit", "list", "-o", "json"], None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = String::from_utf8(out.stdout).unwrap();
    let events: Value = serde_json::from_str(&raw).unwrap();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for kind in [
        "login.success",
        "login.failure",
        "login.throttled",
        "refresh.reuse_detected",
        "client.disabled",
        "user.unlocked",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let reuse = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "refresh.reuse_detected")
        .unwrap();
    let sid = claims(first["access_token"].as_str().unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(reuse["subject"], sid.as_str());
    assert_eq!(reuse["actor"], id.as_str());
    assert_eq!(reuse["client_ip"], "127.0.0.1");
    let disabled = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "client.disabled")
        .unwrap();
    assert!(disabled["actor"].as_str().unwrap().starts_with("admin:"));
    // No password, token or client secret anywhere.
    for secret_value in [
        PASSWORD,
        "wrong-password-1",
        &secret,
        first["refresh_token"].as_str().unwrap(),
        first["access_token"].as_str().unwrap(),
    ] {
        assert!(
            !raw.contains(secret_value),
            "a secret leaked into the audit log"
        );
    }
    // Filters.
    let out = app
        .admin(
            &[
                "audit", "list", "--kind", "login", "--since", "1h", "-o", "json",
            ],
            None,
        )
        .await;
    let logins: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(logins
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["kind"].as_str().unwrap().starts_with("login.")));
    assert!(logins.as_array().unwrap().len() >= 4);
    let text = String::from_utf8(app.admin(&["audit", "list"], None).await.stdout).unwrap();
    assert!(
        text.starts_with("AT") && text.contains("refresh.reuse_detected"),
        "{text}"
    );
}

/// A client's revocation request, the admin CLI and a password change all revoke through one
/// rule: the families change and one `family.revoked` event records who and why.
async fn every_way_of_revoking_a_family_is_audited_once(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    let alice = app.user("alice").await;
    let c = (id.as_str(), secret.as_str());
    let sid = |tokens: &Value| {
        claims(tokens["access_token"].as_str().unwrap())["sid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let by_client = app.password_grant(c, "alice").await;
    let rt = by_client["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(app.revoke(c, &rt).await.status(), 200);
    let by_admin = app.password_grant(c, "alice").await;
    let out = app
        .admin(&["family", "revoke", &sid(&by_admin), "--yes"], None)
        .await;
    assert!(out.status.success());
    let by_password = app.password_grant(c, "alice").await;
    let out = app
        .admin(
            &["user", "set-password", "alice", "--password-stdin", "--yes"],
            Some("another long passphrase\n"),
        )
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = app
        .admin(
            &["audit", "list", "--kind", "family.revoked", "-o", "json"],
            None,
        )
        .await;
    let events: Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = events.as_array().unwrap();
    let about = |subject: &str| -> Vec<&Value> {
        events.iter().filter(|e| e["subject"] == subject).collect()
    };
    let client_event = about(&sid(&by_client));
    assert_eq!(client_event.len(), 1, "{events:?}");
    assert_eq!(client_event[0]["actor"], id.as_str());
    assert!(client_event[0]["detail"]
        .as_str()
        .unwrap()
        .contains("revoked_by_client"));
    let admin_event = about(&sid(&by_admin));
    assert_eq!(admin_event.len(), 1, "{events:?}");
    assert!(admin_event[0]["actor"]
        .as_str()
        .unwrap()
        .starts_with("admin:"));
    let password_event = about(&alice);
    assert_eq!(password_event.len(), 1, "{events:?}");
    assert!(password_event[0]["actor"]
        .as_str()
        .unwrap()
        .starts_with("admin:"));
    assert!(password_event[0]["detail"]
        .as_str()
        .unwrap()
        .contains("1 families revoked: password_changed"));
    let res = app
        .refresh(c, by_password["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(res.status(), 400);
}

/// Auditing never decides the outcome: with the audit table gone, a revocation still commits.
async fn a_failed_audit_write_does_not_undo_what_it_records(db: Db) {
    use diesel::connection::SimpleConnection;
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let c = (id.as_str(), secret.as_str());
    let tokens = app.password_grant(c, "alice").await;
    app.with_conn(|conn| conn.batch_execute("DROP TABLE audit_events").unwrap())
        .await;
    let rt = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(app.revoke(c, rt).await.status(), 200);
    crate::helpers::assert_oauth_error(app.refresh(c, rt).await, 400, "invalid_grant").await;
}
