//! Table definitions, shared by both backends (migrations/postgres and migrations/sqlite define
//! the same columns). Times are Unix milliseconds (BIGINT) so that comparisons behave the same
//! on PostgreSQL and SQLite.

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        secret_hash -> Nullable<Text>,
        redirect_uris -> Text,
        grant_types -> Text,
        scopes -> Text,
        created_at -> BigInt,
        disabled_at -> Nullable<BigInt>,
        allow_introspection -> Bool,
        last_used_at -> Nullable<BigInt>,
        id_token_alg -> Nullable<Text>,
        post_logout_redirect_uris -> Text,
        backchannel_logout_uri -> Nullable<Text>,
        backchannel_logout_session_required -> Bool,
        allowed_origins -> Text,
        refresh_absolute_ttl_ms -> Nullable<BigInt>,
        require_dpop -> Bool,
        require_second_factor -> Bool,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        created_at -> BigInt,
        disabled_at -> Nullable<BigInt>,
        name -> Nullable<Text>,
        email -> Nullable<Text>,
        email_verified -> Bool,
        updated_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    token_families (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Text,
        scope -> Text,
        auth_method -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        revoked_reason -> Nullable<Text>,
        resources -> Nullable<Text>,
        auth_time -> Nullable<BigInt>,
        sid -> Nullable<Text>,
        end_noticed_at -> Nullable<BigInt>,
        dpop_jkt -> Nullable<Text>,
        amr -> Nullable<Text>,
    }
}

diesel::table! {
    user_totp (user_id) {
        user_id -> Text,
        secret_sealed -> Text,
        created_at -> BigInt,
        confirmed_at -> Nullable<BigInt>,
        last_step -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    recovery_codes (user_id, code_hash) {
        user_id -> Text,
        code_hash -> Text,
        created_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    passkeys (credential_id) {
        credential_id -> Text,
        user_id -> Text,
        name -> Text,
        credential -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webauthn_challenges (id) {
        id -> Text,
        user_id -> Nullable<Text>,
        purpose -> Text,
        state -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    dpop_proofs (id) {
        id -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    refresh_tokens (id) {
        id -> Text,
        family_id -> Text,
        parent_id -> Nullable<Text>,
        token_hash -> Text,
        issued_at -> BigInt,
        expires_at -> BigInt,
        rotated_at -> Nullable<BigInt>,
        replaced_by -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
    }
}

diesel::table! {
    reuse_incidents (id) {
        id -> Text,
        family_id -> Text,
        replayed_token_id -> Text,
        active_token_id -> Nullable<Text>,
        client_id -> Text,
        client_ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        occurred_at -> BigInt,
        dpop_jkt -> Nullable<Text>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        private_key -> Text,
        public_jwk -> Text,
        created_at -> BigInt,
        retired_at -> Nullable<BigInt>,
        activates_at -> BigInt,
    }
}

diesel::table! {
    login_failures (key) {
        key -> Text,
        failures -> BigInt,
        window_start -> BigInt,
        refused -> BigInt,
    }
}

diesel::table! {
    login_places (attempt, key) {
        attempt -> Text,
        key -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    logout_notices (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Text,
        sid -> Nullable<Text>,
        family_id -> Nullable<Text>,
        reason -> Text,
        created_at -> BigInt,
        attempts -> BigInt,
        next_attempt_at -> BigInt,
        claimed_until -> Nullable<BigInt>,
        delivered_at -> Nullable<BigInt>,
        failed_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::joinable!(logout_notices -> clients (client_id));
diesel::joinable!(token_families -> clients (client_id));
diesel::joinable!(token_families -> users (user_id));
diesel::joinable!(user_totp -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(passkeys -> users (user_id));
diesel::joinable!(refresh_tokens -> token_families (family_id));
diesel::joinable!(reuse_incidents -> token_families (family_id));

diesel::allow_tables_to_appear_in_same_query!(
    clients,
    users,
    token_families,
    refresh_tokens,
    reuse_incidents,
    signing_keys,
    login_failures,
    login_places,
    authorization_codes,
    consents,
    sessions,
    revoked_access_tokens,
    audit_events,
    resources,
    logout_notices,
    dpop_proofs,
    user_totp,
    recovery_codes,
    passkeys,
    webauthn_challenges,
);

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        client_id -> Text,
        user_id -> Text,
        scope -> Text,
        redirect_uri -> Text,
        pkce -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        family_id -> Nullable<Text>,
        redirect_uri_given -> Bool,
        resources -> Nullable<Text>,
        nonce -> Nullable<Text>,
        auth_time -> Nullable<BigInt>,
        sid -> Nullable<Text>,
        dpop_jkt -> Nullable<Text>,
        amr -> Nullable<Text>,
    }
}

diesel::table! {
    resources (uri) {
        uri -> Text,
        scopes -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        granted_at -> BigInt,
        resources -> Nullable<Text>,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        amr -> Nullable<Text>,
    }
}

diesel::table! {
    revoked_access_tokens (jti) {
        jti -> Text,
        client_id -> Text,
        expires_at -> BigInt,
        revoked_at -> BigInt,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        occurred_at -> BigInt,
        kind -> Text,
        actor -> Nullable<Text>,
        subject -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        detail -> Nullable<Text>,
        request_id -> Nullable<Text>,
        upstream_request_id -> Nullable<Text>,
    }
}
