//! Row types: `NewX` to insert, `X` to read, queries as associated functions over a connection.

mod client;
mod family;
mod key;
mod user;

pub use client::{Client, NewClient};
pub use family::{
    NewFamily, NewIncident, NewRefreshToken, RefreshToken, ReuseIncident, TokenFamily,
};
pub use key::StoredKey;
pub use user::{NewUser, User};
