//! How a user signed in, as RFC 8176 authentication method references (`amr`): kept on the
//! browser session, the authorization code and the token family, shown by `family show`, and
//! put in ID tokens.

use std::fmt;

/// The methods of one sign-in, in a fixed order.
#[derive(Clone, PartialEq, Eq)]
pub struct Amr(Vec<&'static str>);

/// Every value Tessera records (RFC 8176 §2), in the order they are written.
const KNOWN: [&str; 5] = ["pwd", "otp", "hwk", "user", "mfa"];

impl Amr {
    /// A password alone.
    pub fn password() -> Amr {
        Amr(vec!["pwd"])
    }

    /// A passkey alone: a hardware-bound key (`hwk`) used with user verification (`user`),
    /// which is itself two factors (`mfa`): the device, and the PIN or biometric unlocking it.
    pub fn passkey() -> Amr {
        Amr(vec!["hwk", "user", "mfa"])
    }

    /// A password, then a code: from an authenticator app or a recovery code (`otp`).
    pub fn password_and_code() -> Amr {
        Amr(vec!["pwd", "otp", "mfa"])
    }

    /// A password, then a passkey.
    pub fn password_and_passkey() -> Amr {
        Amr(vec!["pwd", "hwk", "user", "mfa"])
    }

    /// The methods stored as `stored` (space-separated); a row from before methods were
    /// recorded (`None`) was a password. Values Tessera does not know are dropped.
    pub fn parse(stored: Option<&str>) -> Amr {
        let Some(stored) = stored else {
            return Amr::password();
        };
        let given: Vec<&str> = stored.split_whitespace().collect();
        Amr(KNOWN.into_iter().filter(|k| given.contains(k)).collect())
    }

    /// As stored: space-separated.
    pub fn stored(&self) -> String {
        self.0.join(" ")
    }

    /// The values, for an ID token's `amr` claim.
    pub fn values(&self) -> &[&'static str] {
        &self.0
    }

    /// Whether the sign-in took more than one factor.
    pub fn multi_factor(&self) -> bool {
        self.0.contains(&"mfa")
    }
}

impl fmt::Debug for Amr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

impl fmt::Display for Amr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.stored())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_methods_read_back_in_order() {
        for amr in [
            Amr::password(),
            Amr::passkey(),
            Amr::password_and_code(),
            Amr::password_and_passkey(),
        ] {
            assert_eq!(Amr::parse(Some(&amr.stored())), amr);
        }
        assert_eq!(Amr::parse(None), Amr::password());
        assert_eq!(Amr::parse(Some("mfa sms pwd")).stored(), "pwd mfa");
        assert!(!Amr::password().multi_factor());
        assert!(Amr::passkey().multi_factor());
        assert!(Amr::password_and_code().multi_factor());
    }
}
