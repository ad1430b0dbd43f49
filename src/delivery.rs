//! The back-channel logout worker: every `backchannel.poll_interval`, claims the logout tokens
//! due for delivery ([`Backchannel::claim`], on the blocking pool), POSTs each to its app's
//! back-channel logout URI (Back-Channel Logout 1.0 §2.5: form-encoded `logout_token`, no
//! redirects followed, `backchannel.timeout` each, all at once), and records what each got.

use std::sync::Arc;

use crate::domain::backchannel::Attempt;
use crate::grant::backchannel::{Backchannel, Delivery};

/// Runs until the runtime that started the server ends.
pub async fn run(service: Backchannel) {
    let http = match reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(service.timeout)
        .user_agent(concat!(
            "tessera/",
            env!("CARGO_PKG_VERSION"),
            " back-channel logout"
        ))
        .build()
    {
        Ok(http) => http,
        Err(e) => {
            tracing::error!(error = %e, "no HTTP client: back-channel logout is off");
            return;
        }
    };
    let service = Arc::new(service);
    let mut ticks = tokio::time::interval(service.poll_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut full = false;
    loop {
        // A full batch: there may be more waiting, so go on at once.
        if !full {
            ticks.tick().await;
        }
        let s = service.clone();
        let claimed = match tokio::task::spawn_blocking(move || s.claim()).await {
            Ok(Ok(claimed)) => claimed,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "claiming back-channel logouts failed; trying again later");
                continue;
            }
            Err(_) => return,
        };
        full = claimed.len() >= service.batch();
        let mut posts = tokio::task::JoinSet::new();
        for delivery in claimed {
            let (http, service) = (http.clone(), service.clone());
            posts.spawn(async move { deliver(&http, &service, delivery).await });
        }
        while posts.join_next().await.is_some() {}
    }
}

/// Posts one logout token and records the outcome.
async fn deliver(http: &reqwest::Client, service: &Arc<Backchannel>, delivery: Delivery) {
    let sent = http
        .post(&delivery.uri)
        .form(&[("logout_token", delivery.logout_token.expose())])
        .send()
        .await;
    let attempt = match sent {
        Ok(res) if res.status().is_success() => Attempt::Delivered,
        Ok(res) if res.status().is_client_error() => {
            Attempt::Refused(format!("the app answered {}", res.status().as_u16()))
        }
        Ok(res) => Attempt::Failed(format!("the app answered {}", res.status().as_u16())),
        // The error's text names the URI, never the token (it is in the body).
        Err(e) => Attempt::Failed(e.without_url().to_string()),
    };
    let s = service.clone();
    let recorded = tokio::task::spawn_blocking(move || s.record(&delivery, &attempt)).await;
    if let Ok(Err(e)) = recorded {
        tracing::warn!(error = %e, "recording a back-channel logout failed; it will be tried again");
    }
}
