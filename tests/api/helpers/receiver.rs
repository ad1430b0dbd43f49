//! An app's back-channel logout endpoint: a real HTTP listener on a random loopback port that
//! keeps every `logout_token` POSTed to it, and answers with the statuses it is told to (then
//! 200).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Default)]
struct State {
    /// Every request's `logout_token`, with its content type, in the order they came.
    received: Vec<(String, String)>,
    answers: VecDeque<u16>,
}

pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/backchannel", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, shared.clone()));
            }
        });
        Self { url, state }
    }

    /// The next requests get these statuses, one each; later ones 200.
    pub fn answer(&self, statuses: &[u16]) {
        self.state.lock().unwrap().answers.extend(statuses);
    }

    /// The logout tokens received so far.
    pub fn tokens(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state.received.iter().map(|(t, _)| t.clone()).collect()
    }

    pub fn content_types(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        state.received.iter().map(|(_, c)| c.clone()).collect()
    }

    /// Waits (up to `within`) until `n` tokens have come; returns them.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let tokens = self.tokens();
            if tokens.len() >= n {
                return tokens;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} logout tokens came, {n} expected",
                tokens.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One connection: one request, read to the end of its body, answered, closed.
async fn serve(mut stream: tokio::net::TcpStream, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, length) = loop {
        let Ok(n) = stream.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while buf.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type:"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    let body = &buf[head_end..head_end + length];
    let token = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let status = {
        let mut state = state.lock().unwrap();
        state.received.push((token, content_type));
        state.answers.pop_front().unwrap_or(200)
    };
    let response =
        format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\ncache-control: no-store\r\n\r\n");
    let _ = stream.write_all(response.as_bytes()).await;
}
