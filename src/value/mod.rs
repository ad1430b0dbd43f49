//! Values every layer passes around: the ids of the things Tessera stores and the one time
//! type. Each knows how it is stored (diesel `Text` / `BigInt` on both backends) and nothing
//! else, so the store, the rules and the protocol can all name them, and a family id cannot be
//! given where a client id is wanted, nor seconds where milliseconds are.

mod amr;
mod id;
mod time;

pub use amr::Amr;
pub use id::{ClientId, FamilyId, TokenId, UserId};
pub use time::UnixMs;
