//! The OpenAPI document and the routes agree: every route is in it, and nothing else is.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::{Db, TestApp};

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_server_has() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let res = app
        .http
        .get(format!("{}/openapi.json", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let served: Value = res.json().await.unwrap();
    let kept: Value = serde_json::from_str(tessera::http::OPENAPI).unwrap();
    assert_eq!(served, kept);
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(served["info"]["version"], env!("CARGO_PKG_VERSION"));

    let documented: BTreeSet<(String, String)> = served["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| {
                    ["get", "post", "put", "patch", "delete", "head", "options"]
                        .contains(&k.as_str())
                })
                .map(move |m| (path.clone(), m.to_uppercase()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = tessera::http::ROUTES
        .iter()
        .flat_map(|(path, methods)| {
            methods
                .iter()
                .map(move |m| (path.to_string(), m.to_string()))
        })
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the document: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "documented but not routed: {unrouted:?}"
    );

    // And the server answers each one (not 404), and 405 with Allow for a method it lacks.
    for (path, method) in &routed {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let res = app
            .http
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_ne!(res.status(), 404, "{method} {path}");
        let res = app
            .http
            .request(reqwest::Method::DELETE, format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "DELETE {path}");
        assert!(res.headers().contains_key("allow"), "DELETE {path}");
    }
}
