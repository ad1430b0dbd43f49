//! Passkeys against a software authenticator (webauthn-authenticator-rs's `SoftPasskey`, which
//! makes and signs as a security key does): registration, the second step, single-use and
//! expiring challenges, the origin check, the sign counter of a cloned authenticator, and the
//! CLI's view and reset. The discoverable sign-in (a credential with a user handle, which the
//! software authenticator cannot keep) runs in real Chromium (`real_browser::passkeys`).

use std::time::Duration;

use serde_json::Value;
use tessera::domain::second_factor as factor;
use tessera::grant::passkey::{Begun, PasskeyError, RelyingParty};
use tessera::store::models::PasskeyRow;
use tessera::value::UserId;
use url::Url;
use webauthn_authenticator_rs::prelude::{
    CreationChallengeResponse, RequestChallengeResponse, WebauthnAuthenticator,
};
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::helpers::{both_backends, Db, TestApp, PASSWORD};

both_backends!(
    a_passkey_is_registered_and_used_as_the_second_step,
    challenges_are_single_use_and_expire_and_origins_are_checked,
    a_cloned_authenticator_is_refused_by_its_sign_counter,
    the_cli_shows_and_resets_passkeys,
);

const ISSUER: &str = "https://tessera.test";

type Authenticator = WebauthnAuthenticator<SoftPasskey>;

fn authenticator() -> Authenticator {
    // `true`: it reports user verification, as a PIN or fingerprint would give.
    WebauthnAuthenticator::new(SoftPasskey::new(true))
}

fn origin(s: &str) -> Url {
    Url::parse(s).unwrap()
}

/// The options as the browser receives them; a security key keeps no resident credential,
/// so this one answers as a non-discoverable passkey (the server accepts either).
fn creation(begun: &Begun) -> CreationChallengeResponse {
    let mut options = begun.options.clone();
    let selection = options
        .pointer_mut("/publicKey/authenticatorSelection")
        .unwrap();
    assert_eq!(selection["residentKey"], "required");
    assert_eq!(selection["userVerification"], "required");
    selection["residentKey"] = "discouraged".into();
    selection["requireResidentKey"] = false.into();
    serde_json::from_value(options).unwrap()
}

fn request(begun: &Begun) -> RequestChallengeResponse {
    serde_json::from_value(begun.options.clone()).unwrap()
}

async fn user_id(app: &TestApp, name: &str) -> UserId {
    let name = name.to_owned();
    app.with_conn(move |c| tessera::domain::user::by_name(c, &name).unwrap().id)
        .await
}

/// Registers a passkey named `name` for `username` with `key`.
async fn register(app: &TestApp, key: &mut Authenticator, username: &str, name: &str) -> String {
    let now = app.clock.now();
    let username = username.to_owned();
    let begun = app
        .with_conn(move |c| {
            let user = tessera::domain::user::by_name(c, &username).unwrap();
            let rp = RelyingParty::new(ISSUER).unwrap();
            (
                user.id.clone(),
                rp.begin_registration(c, &user, now).unwrap(),
            )
        })
        .await;
    let (id, begun) = begun;
    let answer = key
        .do_registration(origin(ISSUER), creation(&begun))
        .unwrap();
    let answer = serde_json::to_string(&answer).unwrap();
    let name = name.to_owned();
    app.with_conn(move |c| {
        let rp = RelyingParty::new(ISSUER).unwrap();
        rp.finish_registration(c, &id, &begun.ceremony, &answer, &name, now)
            .unwrap()
            .id
    })
    .await
}

/// A second step with `key` for `user`, answered from `at`; the outcome.
async fn second_step(
    app: &TestApp,
    key: &mut Authenticator,
    user: &UserId,
    at: &str,
) -> Result<(), PasskeyError> {
    let (begun, answer) = begin_and_answer(app, key, user, at).await;
    finish(app, user, &begun.ceremony, &answer).await
}

async fn begin_and_answer(
    app: &TestApp,
    key: &mut Authenticator,
    user: &UserId,
    at: &str,
) -> (Begun, String) {
    let now = app.clock.now();
    let id = user.clone();
    let begun = app
        .with_conn(move |c| {
            let rp = RelyingParty::new(ISSUER).unwrap();
            rp.begin_second_step(c, &id, now)
                .unwrap()
                .expect("a passkey")
        })
        .await;
    let answer = key.do_authentication(origin(at), request(&begun)).unwrap();
    (begun, serde_json::to_string(&answer).unwrap())
}

async fn finish(
    app: &TestApp,
    user: &UserId,
    ceremony: &str,
    answer: &str,
) -> Result<(), PasskeyError> {
    let now = app.clock.now();
    let (id, ceremony, answer) = (user.clone(), ceremony.to_owned(), answer.to_owned());
    app.with_conn(move |c| {
        let rp = RelyingParty::new(ISSUER).unwrap();
        rp.finish_second_step(c, &id, &ceremony, &answer, now)
    })
    .await
}

async fn a_passkey_is_registered_and_used_as_the_second_step(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let alice = user_id(&app, "alice").await;
    let mut key = authenticator();
    let credential = register(&app, &mut key, "alice", "  Work laptop ").await;
    let id = alice.clone();
    let factors = app
        .with_conn(move |c| factor::factors(c, &id).unwrap())
        .await;
    assert_eq!(factors.passkeys.len(), 1);
    assert_eq!(factors.passkeys[0].name, "Work laptop", "trimmed");
    assert_eq!(factors.passkeys[0].id, credential);
    assert!(factors.passkeys[0].last_used_at.is_none());
    assert!(factors.second_step_due());

    app.advance(Duration::from_secs(60));
    let before = app.clock.now();
    second_step(&app, &mut key, &alice, ISSUER).await.unwrap();
    let id = alice.clone();
    let factors = app
        .with_conn(move |c| factor::factors(c, &id).unwrap())
        .await;
    let used = factors.passkeys[0].last_used_at.expect("its use recorded");
    assert!(used >= before && used <= app.clock.now());

    // Another user cannot answer with it, nor begin a second step without a passkey.
    app.user("bob").await;
    let bob = user_id(&app, "bob").await;
    let id = bob.clone();
    let now = app.clock.now();
    let none = app
        .with_conn(move |c| {
            RelyingParty::new(ISSUER)
                .unwrap()
                .begin_second_step(c, &id, now)
                .unwrap()
        })
        .await;
    assert!(none.is_none());
    // A name is needed, and a short one.
    let now = app.clock.now();
    let refused = app
        .with_conn(move |c| {
            let user = tessera::domain::user::by_name(c, "bob").unwrap();
            let rp = RelyingParty::new(ISSUER).unwrap();
            let begun = rp.begin_registration(c, &user, now).unwrap();
            rp.finish_registration(c, &user.id, &begun.ceremony, "{}", &"x".repeat(65), now)
        })
        .await;
    assert!(matches!(refused, Err(PasskeyError::BadName)), "{refused:?}");

    // The password grant cannot carry the second step: refused for her, as for an app.
    let (client, secret) = app.password_client().await;
    let res = app.sign_in((&client, &secret), "alice", PASSWORD).await;
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

async fn challenges_are_single_use_and_expire_and_origins_are_checked(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let alice = user_id(&app, "alice").await;
    let mut key = authenticator();
    register(&app, &mut key, "alice", "Phone").await;

    // An answer is taken once: the same one again finds no challenge.
    let (begun, answer) = begin_and_answer(&app, &mut key, &alice, ISSUER).await;
    finish(&app, &alice, &begun.ceremony, &answer)
        .await
        .unwrap();
    let again = finish(&app, &alice, &begun.ceremony, &answer).await;
    assert!(matches!(again, Err(PasskeyError::Expired)), "{again:?}");
    // Nor does an old answer serve a new challenge.
    let (fresh, _) = begin_and_answer(&app, &mut key, &alice, ISSUER).await;
    let replayed = finish(&app, &alice, &fresh.ceremony, &answer).await;
    assert!(
        matches!(replayed, Err(PasskeyError::Refused(_))),
        "{replayed:?}"
    );

    // A challenge expires after five minutes.
    let (late, answer) = begin_and_answer(&app, &mut key, &alice, ISSUER).await;
    app.advance(Duration::from_secs(5 * 60 + 1));
    let expired = finish(&app, &alice, &late.ceremony, &answer).await;
    assert!(matches!(expired, Err(PasskeyError::Expired)), "{expired:?}");

    // Another origin, even under the relying party's domain, is refused.
    let other = second_step(&app, &mut key, &alice, "https://login.tessera.test").await;
    assert!(matches!(other, Err(PasskeyError::Refused(_))), "{other:?}");
    // A ceremony is for its user only.
    app.user("bob").await;
    let bob = user_id(&app, "bob").await;
    let (begun, answer) = begin_and_answer(&app, &mut key, &alice, ISSUER).await;
    let stolen = finish(&app, &bob, &begun.ceremony, &answer).await;
    assert!(matches!(stolen, Err(PasskeyError::Expired)), "{stolen:?}");

    // A passkey sign-in needs the credential to name its user (a discoverable one).
    let now = app.clock.now();
    let begun = app
        .with_conn(move |c| {
            RelyingParty::new(ISSUER)
                .unwrap()
                .begin_sign_in(c, now)
                .unwrap()
        })
        .await;
    assert!(begun.options.get("mediation").is_none(), "a modal dialog");
    let mut options = begun.options.clone();
    // The software key answers only for credentials it is told of.
    let id = alice.clone();
    let allowed = app
        .with_conn(move |c| {
            RelyingParty::new(ISSUER)
                .unwrap()
                .begin_second_step(c, &id, now)
                .unwrap()
                .unwrap()
        })
        .await;
    options["publicKey"]["allowCredentials"] =
        allowed.options["publicKey"]["allowCredentials"].clone();
    let answer = key
        .do_authentication(origin(ISSUER), serde_json::from_value(options).unwrap())
        .unwrap();
    let answer = serde_json::to_string(&answer).unwrap();
    let ceremony = begun.ceremony.clone();
    let anonymous = app
        .with_conn(move |c| {
            RelyingParty::new(ISSUER)
                .unwrap()
                .finish_sign_in(c, &ceremony, &answer, now)
        })
        .await;
    assert!(
        matches!(anonymous, Err(PasskeyError::Refused(_))),
        "{anonymous:?}"
    );
}

async fn a_cloned_authenticator_is_refused_by_its_sign_counter(db: Db) {
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let alice = user_id(&app, "alice").await;
    let mut key = authenticator();
    let credential = register(&app, &mut key, "alice", "Key").await;
    second_step(&app, &mut key, &alice, ISSUER).await.unwrap();
    second_step(&app, &mut key, &alice, ISSUER).await.unwrap();
    // A copy of the key was used meanwhile and moved the stored counter past this one's.
    let id = credential.clone();
    let counter = app
        .with_conn(move |c| {
            let row = PasskeyRow::find(c, &id).unwrap().unwrap();
            let mut stored: Value = serde_json::from_str(&row.credential).unwrap();
            let counter = stored["cred"]["counter"].as_u64().unwrap();
            stored["cred"]["counter"] = (counter + 100).into();
            let cloned = stored.to_string();
            assert!(PasskeyRow::used(c, &id, &row.credential, &cloned, row.created_at).unwrap());
            counter
        })
        .await;
    assert!(counter >= 2, "the counter followed each use: {counter}");
    let refused = second_step(&app, &mut key, &alice, ISSUER).await;
    assert!(
        matches!(refused, Err(PasskeyError::Refused(_))),
        "{refused:?}"
    );

    // The same when the other use comes after the ceremony began: the ceremony's own copy of
    // the credential is older than the row, and the row is what counts.
    let mut key = authenticator();
    app.user("bob").await;
    let bob = user_id(&app, "bob").await;
    let credential = register(&app, &mut key, "bob", "Key").await;
    let (begun, answer) = begin_and_answer(&app, &mut key, &bob, ISSUER).await;
    let id = credential.clone();
    app.with_conn(move |c| {
        let row = PasskeyRow::find(c, &id).unwrap().unwrap();
        let mut stored: Value = serde_json::from_str(&row.credential).unwrap();
        stored["cred"]["counter"] = 100.into();
        let moved = stored.to_string();
        assert!(PasskeyRow::used(c, &id, &row.credential, &moved, row.created_at).unwrap());
    })
    .await;
    let refused = finish(&app, &bob, &begun.ceremony, &answer).await;
    assert!(
        matches!(&refused, Err(PasskeyError::Refused(why)) if why.contains("counter")),
        "{refused:?}"
    );
}

async fn the_cli_shows_and_resets_passkeys(db: Db) {
    use crate::cli::json;
    let app = TestApp::spawn(db).await;
    app.user("alice").await;
    let mut key = authenticator();
    register(&app, &mut key, "alice", "Laptop").await;
    let shown = json(
        &app.admin(&["user", "mfa", "show", "alice", "-o", "json"], None)
            .await,
    );
    assert_eq!(shown["passkeys"][0]["name"], "Laptop", "{shown}");
    assert!(shown["passkeys"][0]["last_used_at"].is_null());
    let text = crate::cli::ok(&app.admin(&["user", "mfa", "show", "alice"], None).await);
    assert!(
        text.contains("passkeys           1") && text.contains("Laptop"),
        "{text}"
    );
    let reset = json(
        &app.admin(
            &[
                "user",
                "mfa",
                "reset",
                "alice",
                "--passkeys",
                "--yes",
                "-o",
                "json",
            ],
            None,
        )
        .await,
    );
    assert_eq!(reset["passkeys_removed"], 1, "{reset}");
    assert_eq!(reset["totp_removed"], false);
    let shown = json(
        &app.admin(&["user", "mfa", "show", "alice", "-o", "json"], None)
            .await,
    );
    assert_eq!(shown["passkeys"], serde_json::json!([]));
}
