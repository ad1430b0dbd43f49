//! Second factors in the store, on both backends: an authenticator app's set-up and codes
//! (computed here from the secret Tessera hands out, as the app would), each accepted once
//! within one step of drift; single-use recovery codes; nothing readable from the database.

use std::time::Duration;

use diesel::prelude::*;
use tessera::domain::crypto::MasterKey;
use tessera::domain::second_factor::{self as factor, FactorError, RECOVERY_CODES};
use tessera::store::models::User;
use tessera::value::UnixMs;
use totp_rs::Totp;

use crate::helpers::{both_backends, Db, TestApp};

both_backends!(
    an_app_counts_once_a_code_confirms_it,
    each_code_is_accepted_once_within_a_step_of_drift,
    recovery_codes_are_single_use_and_replaced_as_a_set,
    nothing_secret_is_readable_from_the_database,
);

/// The code the user's app shows at `at`.
fn code_at(secret: &str, at: UnixMs) -> String {
    let app = Totp::from_url(format!("otpauth://totp/T:a?secret={secret}&issuer=T")).unwrap();
    app.generate(u64::try_from(at.millis() / 1000).unwrap())
        .to_string()
}

async fn alice(app: &TestApp) -> User {
    app.user("alice").await;
    app.with_conn(|c| tessera::domain::user::by_name(c, "alice").unwrap())
        .await
}

fn master(app: &TestApp) -> MasterKey {
    MasterKey::from_text(&app.master_key).unwrap()
}

async fn an_app_counts_once_a_code_confirms_it(db: Db) {
    let app = TestApp::spawn(db).await;
    let user = alice(&app).await;
    let (m, now) = (master(&app), app.clock.now());
    let id = user.id.clone();
    let (enrolment, before) = app
        .with_conn(move |c| {
            let e = factor::begin_totp(c, &m, &user, "tessera.test", now).unwrap();
            (e, factor::factors(c, &user.id).unwrap())
        })
        .await;
    assert!(
        enrolment
            .uri
            .starts_with("otpauth://totp/tessera.test:alice?"),
        "{}",
        enrolment.uri
    );
    assert!(enrolment
        .uri
        .contains(&format!("secret={}", enrolment.secret)));
    assert!(enrolment.qr_svg.starts_with("<svg") && enrolment.qr_svg.ends_with("</svg>"));
    assert_eq!(before.totp, None, "not a factor before a code confirms it");
    assert!(!before.any());

    let (m, secret) = (master(&app), enrolment.secret.clone());
    let right = code_at(&secret, now);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let (refused, unconfirmed_check, confirmed, after, again) = app
        .with_conn(move |c| {
            let refused = factor::confirm_totp(c, &m, &id, wrong, now).unwrap();
            // An unconfirmed app is no second factor yet.
            let unconfirmed_check = factor::check_totp(c, &m, &id, &right, now).unwrap();
            let confirmed = factor::confirm_totp(c, &m, &id, &right, now).unwrap();
            let after = factor::factors(c, &id).unwrap();
            let user = User::find(c, &id).unwrap().unwrap();
            let again = factor::begin_totp(c, &m, &user, "tessera.test", now);
            (refused, unconfirmed_check, confirmed, after, again)
        })
        .await;
    assert!(!refused && !unconfirmed_check && confirmed);
    assert_eq!(after.totp, Some((now, Some(now))));
    assert!(after.any());
    assert!(matches!(again, Err(FactorError::AlreadyEnrolled)));
}

async fn each_code_is_accepted_once_within_a_step_of_drift(db: Db) {
    let app = TestApp::spawn(db).await;
    let user = alice(&app).await;
    let (m, start) = (master(&app), app.clock.now());
    let id = user.id.clone();
    let secret = app
        .with_conn(move |c| {
            let e = factor::begin_totp(c, &m, &user, "tessera.test", start).unwrap();
            let first = code_at(&e.secret, start);
            assert!(factor::confirm_totp(c, &m, &user.id, &first, start).unwrap());
            e.secret
        })
        .await;
    let step = Duration::from_secs(30);
    let check = |code: String, at: UnixMs| {
        let (m, id) = (master(&app), id.clone());
        app.with_conn(move |c| factor::check_totp(c, &m, &id, &code, at).unwrap())
    };
    // The confirming code was spent: the same code again is refused, in the same step.
    assert!(!check(code_at(&secret, start), start).await);
    // Two steps on: the code of one step ago still counts (drift), once.
    let later = start + step * 2;
    let behind = code_at(&secret, later - step);
    assert!(check(behind.clone(), later).await);
    assert!(!check(behind, later).await, "a replay inside its window");
    // The current code and the next one (a phone ahead of the server) count; once each.
    assert!(check(code_at(&secret, later), later).await);
    assert!(check(code_at(&secret, later + step), later).await);
    assert!(!check(code_at(&secret, later + step), later).await);
    // Two steps of drift is too many; so is a code of a step older than one accepted.
    let much_later = later + step * 10;
    assert!(!check(code_at(&secret, much_later + step * 2), much_later).await);
    assert!(!check(code_at(&secret, much_later - step * 2), much_later).await);
    assert!(!check("12345".into(), much_later).await);
    assert!(!check("abcdef".into(), much_later).await);
    // With spaces, as an app groups the digits.
    let code = code_at(&secret, much_later);
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    assert!(check(spaced, much_later).await);
    // After removal, no code counts.
    let (m, id2) = (master(&app), id.clone());
    let next = code_at(&secret, much_later + step);
    let after_removal = app
        .with_conn(move |c| {
            assert!(factor::remove_totp(c, &id2).unwrap());
            factor::check_totp(c, &m, &id2, &next, much_later + step).unwrap()
        })
        .await;
    assert!(!after_removal);
}

async fn recovery_codes_are_single_use_and_replaced_as_a_set(db: Db) {
    let app = TestApp::spawn(db).await;
    let user = alice(&app).await;
    let (m, now) = (master(&app), app.clock.now());
    let id = user.id.clone();
    app.with_conn(move |c| {
        let codes = factor::new_recovery_codes(c, &m, &id, now).unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        assert!(codes
            .iter()
            .all(|c| c.len() == 14 && c.matches('-').count() == 2));
        assert_eq!(factor::factors(c, &id).unwrap().recovery_codes_left, 10);
        assert!(factor::factors(c, &id).unwrap().any());
        // Used once; typed in capitals and without dashes, it is the same code.
        assert!(factor::spend_recovery_code(c, &m, &id, &codes[0], now).unwrap());
        assert!(!factor::spend_recovery_code(c, &m, &id, &codes[0], now).unwrap());
        let typed = codes[1].replace('-', "").to_uppercase();
        assert!(factor::spend_recovery_code(c, &m, &id, &typed, now).unwrap());
        assert!(!factor::spend_recovery_code(c, &m, &id, "0000-0000-0000", now).unwrap());
        assert_eq!(factor::factors(c, &id).unwrap().recovery_codes_left, 8);
        // A new set replaces the old one entirely.
        let fresh = factor::new_recovery_codes(c, &m, &id, now).unwrap();
        assert!(!factor::spend_recovery_code(c, &m, &id, &codes[2], now).unwrap());
        assert!(factor::spend_recovery_code(c, &m, &id, &fresh[0], now).unwrap());
        assert_eq!(factor::factors(c, &id).unwrap().recovery_codes_left, 9);
    })
    .await;
}

async fn nothing_secret_is_readable_from_the_database(db: Db) {
    let app = TestApp::spawn(db).await;
    let user = alice(&app).await;
    let (m, now) = (master(&app), app.clock.now());
    let id = user.id.clone();
    let (enrolment, codes) = app
        .with_conn(move |c| {
            let e = factor::begin_totp(c, &m, &user, "tessera.test", now).unwrap();
            (e, factor::new_recovery_codes(c, &m, &user.id, now).unwrap())
        })
        .await;
    let dump = app
        .with_conn(|c| {
            use tessera::store::schema::{recovery_codes, user_totp};
            let sealed: Vec<String> = user_totp::table
                .select(user_totp::secret_sealed)
                .load(c)
                .unwrap();
            let hashes: Vec<String> = recovery_codes::table
                .select(recovery_codes::code_hash)
                .load(c)
                .unwrap();
            format!("{sealed:?} {hashes:?}")
        })
        .await;
    assert!(!dump.contains(&enrolment.secret), "{dump}");
    for code in &codes {
        assert!(!dump.contains(code.as_str()) && !dump.contains(&code.replace('-', "")));
    }
    // Another master key reads neither.
    let other = MasterKey::from_bytes(&[7u8; 32]).unwrap();
    let code = code_at(&enrolment.secret, now);
    let first = codes[0].clone();
    let (with_other, other_recovery) = app
        .with_conn(move |c| {
            (
                factor::confirm_totp(c, &other, &id, &code, now),
                factor::spend_recovery_code(c, &other, &id, &first, now).unwrap(),
            )
        })
        .await;
    assert!(matches!(with_other, Err(FactorError::Sealed)));
    assert!(!other_recovery);
}
