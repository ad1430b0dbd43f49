//! The limits Tessera's throughput is measured against (bench/run.sh): raw Argon2id
//! verifications and raw ES256 signatures and verifications per second, on this machine's
//! cores, with the server's own code and parameters.
//!
//! `cargo run --release --example bench_limits -- argon2|es256 [seconds]` prints one JSON
//! object.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::crypto::{sign, verify};
use jsonwebtoken::Algorithm;
use tessera::domain::jwt_crypto::install_crypto_provider;
use tessera::domain::keys::{KeyAlgorithm, SigningKey};
use tessera::domain::password::PasswordHasher;
use tessera::settings::Settings;

/// Runs `work` on every core for `secs`; returns operations per second.
fn per_second(secs: f64, work: impl Fn() + Send + Sync + 'static) -> f64 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let done = Arc::new(AtomicU64::new(0));
    let work = Arc::new(work);
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let (done, work) = (done.clone(), work.clone());
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    work();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() -> anyhow::Result<()> {
    install_crypto_provider();
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_default();
    let secs: f64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(5.0);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let result = match what.as_str() {
        "argon2" => {
            // The server's default configuration: Argon2id 19 MiB, t=2, p=1.
            let settings = Settings::from_env(Vec::new())?;
            let hasher = PasswordHasher::new(&settings.hash_policy(Some(cores)))?;
            let phc = hasher.hash("correct horse battery staple")?;
            let argon2 = per_second(secs, move || {
                let _ = hasher.verify("wrong password", Some(&phc));
            });
            serde_json::json!({ "cores": cores, "argon2id_verify_per_s": argon2.round() })
        }
        "es256" => {
            let (key, _) = SigningKey::generate(KeyAlgorithm::ES256)?;
            let key = Arc::new(key);
            let message = b"eyJ0eXAiOiJhdCtqd3QiLCJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0";
            let k = key.clone();
            let es256_sign = per_second(secs, move || {
                let _ = sign(message, &k.encoding, Algorithm::ES256);
            });
            let signature = sign(message, &key.encoding, Algorithm::ES256)?;
            let es256_verify = per_second(secs, move || {
                let _ = verify(&signature, message, &key.decoding, Algorithm::ES256);
            });
            serde_json::json!({
                "cores": cores,
                "es256_sign_per_s": es256_sign.round(),
                "es256_verify_per_s": es256_verify.round(),
            })
        }
        _ => anyhow::bail!("usage: bench_limits argon2|es256 [seconds]"),
    };
    println!("{result}");
    Ok(())
}
