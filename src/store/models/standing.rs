use diesel::dsl::exists;
use diesel::prelude::*;

use crate::store::models::User;
use crate::store::schema::{clients, revoked_access_tokens, token_families, users};
use crate::store::AnyConnection;
use crate::value::{ClientId, FamilyId, UserId};

/// Whether an access token still stands, as far as the database knows: everything a bearer
/// check needs, in one query.
#[derive(Debug)]
pub struct Standing {
    pub revoked: bool,
    /// Its family (if it has one) is unrevoked.
    pub family_active: bool,
    pub client_active: bool,
    /// The subject, when the token was issued to a user; `None` also when the user is gone.
    pub user: Option<User>,
}

/// The token's `jti`, `sid`, `client_id` and, for a user's token, `sub`.
pub struct TokenRefs<'a> {
    pub jti: &'a str,
    pub sid: Option<&'a FamilyId>,
    pub client_id: &'a ClientId,
    pub user_id: Option<&'a UserId>,
}

impl Standing {
    pub fn read(conn: &mut AnyConnection, token: &TokenRefs<'_>) -> QueryResult<Standing> {
        let revoked = exists(revoked_access_tokens::table.find(token.jti));
        let family_active = exists(
            token_families::table
                .find(token.sid.map_or("", FamilyId::as_str))
                .filter(token_families::revoked_at.is_null()),
        );
        let client_active = exists(
            clients::table
                .find(token.client_id)
                .filter(clients::disabled_at.is_null()),
        );
        let standing = |(revoked, family, client_active): (bool, bool, bool), user| Standing {
            revoked,
            family_active: family || token.sid.is_none(),
            client_active,
            user,
        };
        match token.user_id {
            Some(user_id) => {
                let row: Option<(User, (bool, bool, bool))> = users::table
                    .find(user_id)
                    .select((User::as_select(), (revoked, family_active, client_active)))
                    .first(conn)
                    .optional()?;
                Ok(match row {
                    Some((user, checks)) => standing(checks, Some(user)),
                    // No user row: the token cannot stand, whatever else holds.
                    None => Standing {
                        revoked: false,
                        family_active: true,
                        client_active: true,
                        user: None,
                    },
                })
            }
            None => diesel::select((revoked, family_active, client_active))
                .get_result(conn)
                .map(|checks| standing(checks, None)),
        }
    }
}
