//! Token families through the CLI: revocation on a running server, and the lineage.

use serde_json::Value;

use super::{json, ok, s};
use crate::helpers::{assert_oauth_error, both_backends, claims, Db, TestApp};

both_backends!(
    admin_revokes_families_on_a_running_server,
    family_show_draws_the_lineage_and_the_incident,
);

async fn admin_revokes_families_on_a_running_server(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    app.user("bob").await;
    let a1 = app.password_grant((&id, &secret), "alice").await;
    let a2 = app.password_grant((&id, &secret), "alice").await;
    let b1 = app.password_grant((&id, &secret), "bob").await;

    let listed = json(
        &app.admin(
            &[
                "family", "list", "--user", "alice", "--active", "-o", "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let out = app
        .admin(
            &[
                "family",
                "revoke",
                "--user",
                "alice",
                "--reason",
                "lost phone",
                "--yes",
                "-o",
                "json",
            ],
            None,
        )
        .await;
    assert_eq!(json(&out)["revoked"], 2);
    for t in [&a1, &a2] {
        assert_oauth_error(
            app.refresh((&id, &secret), &s(&t["refresh_token"])).await,
            400,
            "invalid_grant",
        )
        .await;
    }
    let revoked = json(
        &app.admin(&["family", "list", "--revoked", "-o", "json"], None)
            .await,
    );
    let revoked = revoked.as_array().unwrap();
    assert_eq!(revoked.len(), 2);
    assert!(revoked
        .iter()
        .all(|f| f["revoked_reason"] == "lost phone" && f["username"] == "alice"));
    let b2 = app.refresh((&id, &secret), &s(&b1["refresh_token"])).await;
    assert_eq!(b2.status(), 200, "other users are untouched");
    let b2: Value = b2.json().await.unwrap();

    let out = app
        .admin(&["family", "revoke", "--client", &id, "--yes"], None)
        .await;
    assert!(ok(&out).contains("revoked 1"));
    assert_oauth_error(
        app.refresh((&id, &secret), &s(&b2["refresh_token"])).await,
        400,
        "invalid_grant",
    )
    .await;
    let active = json(
        &app.admin(
            &["family", "list", "--client", &id, "--active", "-o", "json"],
            None,
        )
        .await,
    );
    assert_eq!(active.as_array().unwrap().len(), 0);
}

async fn family_show_draws_the_lineage_and_the_incident(db: Db) {
    let app = TestApp::spawn(db).await;
    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let first = app.password_grant((&id, &secret), "alice").await;
    let mut current = first.clone();
    for _ in 0..3 {
        current = app
            .refreshed((&id, &secret), &s(&current["refresh_token"]))
            .await;
    }
    // A thief replays the first token from elsewhere.
    let res = app
        .http
        .post(format!("{}/token", app.address))
        .basic_auth(&id, Some(&secret))
        .header("User-Agent", "stolen-copy/0.1")
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", s(&first["refresh_token"]).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_grant").await;
    let sid = s(&claims(&s(&first["access_token"]))["sid"]);

    let shown = json(
        &app.admin(&["family", "show", &sid, "-o", "json"], None)
            .await,
    );
    assert_eq!(shown["family"]["state"], "revoked");
    assert_eq!(shown["family"]["revoked_reason"], "reuse_detected");
    assert_eq!(shown["family"]["username"], "alice");
    let tokens = shown["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 4);
    let states: Vec<&str> = tokens
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["rotated", "rotated", "rotated", "revoked"]);
    assert_eq!(tokens[1]["parent_id"], tokens[0]["id"]);
    let incident = &shown["incidents"][0];
    assert_eq!(incident["replayed_token_id"], tokens[0]["id"]);
    assert_eq!(incident["active_token_id"], tokens[3]["id"]);
    assert_eq!(incident["user_agent"], "stolen-copy/0.1");
    // Never a token, only ids.
    let raw = serde_json::to_string(&shown).unwrap();
    assert!(!raw.contains("tsr_"));

    let text = ok(&app.admin(&["family", "show", &sid], None).await);
    println!("{text}");
    assert!(
        text.contains("REVOKED") && text.contains("reuse_detected"),
        "{text}"
    );
    assert_eq!(
        text.matches("└─ ").count(),
        3,
        "three successors under the first token:\n{text}"
    );
    assert!(
        text.contains("◀ replayed") && text.contains("◀ held at the replay"),
        "{text}"
    );
    assert!(
        text.contains("stolen-copy/0.1") && text.contains("tessera-tests/1.0"),
        "both requesters side by side:\n{text}"
    );
    assert!(!text.contains("tsr_"));

    // The incident is listed and shown, and filters apply.
    let incidents = json(
        &app.admin(
            &[
                "incident", "list", "--since", "1h", "--user", "alice", "-o", "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(incidents.as_array().unwrap().len(), 1);
    let incident_id = s(&incidents[0]["id"]);
    let one = json(
        &app.admin(&["incident", "show", &incident_id, "-o", "json"], None)
            .await,
    );
    assert_eq!(one["family_id"], sid.as_str());
    let other = app
        .client(&[tessera::domain::client::GrantType::Password], false, "")
        .await
        .0;
    let none = json(
        &app.admin(
            &["incident", "list", "--client", &other, "-o", "json"],
            None,
        )
        .await,
    );
    assert_eq!(none.as_array().unwrap().len(), 0);
    let text = ok(&app.admin(&["incident", "list"], None).await);
    assert!(
        text.contains(&incident_id) && text.contains("stolen-copy"),
        "{text}"
    );
}
