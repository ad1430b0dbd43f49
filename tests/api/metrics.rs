//! `/metrics` on `server.metrics_listen`: scraped and parsed with a Prometheus text parser; a
//! sign-in, a refresh and a replay move the counters they should, and nothing else does.

use std::collections::HashMap;

use prometheus_parse::{Scrape, Value as Sample};

use crate::helpers::{both_backends, Db, TestApp};

both_backends!(a_refresh_and_a_replay_move_the_right_counters);

/// The samples of a scrape, keyed `name{label="value",…}` with labels in name order.
pub(crate) struct Metrics(HashMap<String, f64>);

impl Metrics {
    pub(crate) async fn scrape(app: &TestApp) -> Metrics {
        let url = app.metrics.as_deref().expect("metrics_listen was set");
        let res = reqwest::get(url).await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        let text = res.text().await.unwrap();
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
        let mut samples = HashMap::new();
        for s in scrape.samples {
            let mut labels: Vec<(String, String)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            labels.sort();
            let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            let key = format!("{}{{{}}}", s.metric, labels.join(","));
            let value = match s.value {
                Sample::Counter(v) | Sample::Gauge(v) | Sample::Untyped(v) => v,
                Sample::Histogram(h) => h.last().map_or(0.0, |b| b.count),
                Sample::Summary(_) => continue,
            };
            samples.insert(key, value);
        }
        assert!(!samples.is_empty(), "no samples in:\n{text}");
        Metrics(samples)
    }

    pub(crate) fn get(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(0.0)
    }

    fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }
}

async fn a_refresh_and_a_replay_move_the_right_counters(db: Db) {
    let app = TestApp::spawn_with(db, &[("TESSERA_SERVER__METRICS_LISTEN", "127.0.0.1:0")]).await;
    // Not on the API's address.
    let res = reqwest::get(format!("{}/metrics", app.address))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let (id, secret) = app.password_client().await;
    app.user("alice").await;
    let before = Metrics::scrape(&app).await;
    let version = format!(
        "tessera_build_info{{version=\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(before.get(&version), 1.0);
    for key in [
        "tessera_db_pool_connections{state=\"idle\"}",
        "tessera_db_pool_connections{state=\"in_use\"}",
        "tessera_password_hash_slots{}",
        "tessera_password_hash_slots_in_use{}",
    ] {
        assert!(before.has(key), "{key} missing");
    }
    assert!(before.get("tessera_password_hash_slots{}") >= 1.0);
    // Nothing failed over.
    assert!(before.has("tessera_db_server_changes_total{}"));
    assert_eq!(before.get("tessera_db_server_changes_total{}"), 0.0);
    assert_eq!(before.get("tessera_db_connections_lost_total{}"), 0.0);
    assert_eq!(before.get("tessera_password_hash_slots_in_use{}"), 0.0);

    let tokens = app.password_grant((&id, &secret), "alice").await;
    let first = tokens["refresh_token"].as_str().unwrap().to_owned();
    let next = app.refreshed((&id, &secret), &first).await;
    let second = next["refresh_token"].as_str().unwrap().to_owned();
    app.refreshed((&id, &secret), &second).await;
    // The first token again, long after the grace window's successor was used: a replay.
    let res = app.refresh((&id, &secret), &first).await;
    assert_eq!(res.status(), 400);
    let after = Metrics::scrape(&app).await;

    let moved = |key: &str| after.get(key) - before.get(key);
    assert_eq!(
        moved("tessera_tokens_issued_total{grant_type=\"password\"}"),
        1.0
    );
    assert_eq!(
        moved("tessera_tokens_issued_total{grant_type=\"refresh_token\"}"),
        2.0
    );
    assert_eq!(moved("tessera_refreshes_total{outcome=\"rotated\"}"), 2.0);
    assert_eq!(
        moved("tessera_refreshes_total{outcome=\"reuse_detected\"}"),
        1.0
    );
    assert_eq!(moved("tessera_reuse_incidents_total{}"), 1.0);
    for quiet in ["grace_retry", "expired", "revoked", "refused", "error"] {
        assert_eq!(
            moved(&format!("tessera_refreshes_total{{outcome=\"{quiet}\"}}")),
            0.0,
            "{quiet}"
        );
    }
    // A token of the revoked family now: revoked, not another incident.
    let res = app.refresh((&id, &secret), &second).await;
    assert_eq!(res.status(), 400);
    let later = Metrics::scrape(&app).await;
    let moved_since = |key: &str| later.get(key) - after.get(key);
    assert_eq!(
        moved_since("tessera_refreshes_total{outcome=\"revoked\"}"),
        1.0
    );
    assert_eq!(moved_since("tessera_reuse_incidents_total{}"), 0.0);

    // Requests by route pattern, method and status; the histogram counted each.
    let token_ok = "tessera_http_requests_total{method=\"POST\",route=\"/token\",status=\"200\"}";
    assert_eq!(moved(token_ok), 3.0);
    assert_eq!(
        moved("tessera_http_requests_total{method=\"POST\",route=\"/token\",status=\"400\"}"),
        1.0
    );
    assert!(
        moved("tessera_http_request_duration_seconds{method=\"POST\",route=\"/token\"}") >= 4.0
    );
    // A path that matches no route is one label value, whatever the path.
    reqwest::get(format!("{}/no/such/{}", app.address, uuid::Uuid::new_v4()))
        .await
        .unwrap();
    let last = Metrics::scrape(&app).await;
    let unmatched =
        "tessera_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}";
    assert_eq!(last.get(unmatched) - later.get(unmatched), 1.0);
    assert!(
        last.get("tessera_password_hash_wait_seconds{}") >= 1.0,
        "the sign-in's wait for a hashing slot was observed"
    );
    assert!(last.get("tessera_db_pool_wait_seconds{}") >= 4.0);
}
