//! The web origins a browser app runs on, and so who may call and read the token endpoint for
//! a client from a script (CORS). A request's client is only the one it *names* here: these
//! rules run before it authenticates, and decide nothing an unauthenticated caller could not
//! learn otherwise.

use crate::domain::origin::{self, Origin};
use crate::store::models::ClientRow;
use crate::store::AnyConnection;
use crate::value::ClientId;

/// What a request from a script on another origin may do, as the client it names decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginCheck {
    /// A public client's request from an origin it did not register: refused before anything
    /// is consumed. The browser would hide the answer anyway, and the app, none the wiser,
    /// would then present a code or refresh token the server had already spent.
    Refused,
    /// It goes ahead; `readable`: the origin may read a successful answer.
    Allowed { readable: bool },
}

/// The check for a request naming `named`, sent by a script on `origin`. A confidential
/// client's requests are never refused: they come from servers, where a gateway may add an
/// `Origin` of its own; and it registers no origins, so none reads its answers. An unknown or
/// disabled client is left to client authentication, which refuses it the same way whatever
/// the origin.
pub fn check_origin(
    conn: &mut AnyConnection,
    named: Option<&ClientId>,
    origin: &Origin,
) -> diesel::QueryResult<OriginCheck> {
    let client = match named {
        Some(id) if super::plausible(id.as_str()) => super::get(conn, id)?,
        _ => None,
    };
    Ok(match client {
        Some(c) if c.disabled_at.is_none() => {
            let registered = c.app.allowed_origins.contains(origin);
            if c.is_public() && !registered {
                OriginCheck::Refused
            } else {
                OriginCheck::Allowed {
                    readable: registered,
                }
            }
        }
        _ => OriginCheck::Allowed { readable: false },
    })
}

/// Whether some enabled client registered `origin`. A preflight names no client, and neither
/// does an error: both may be read by any registered origin, so that an app can tell a refusal
/// from a network failure, and whether a named client exists shows nowhere.
pub fn origin_registered(conn: &mut AnyConnection, origin: &Origin) -> diesel::QueryResult<bool> {
    Ok(ClientRow::allowed_origins(conn)?
        .iter()
        .any(|stored| origin::stored(stored).contains(origin)))
}
