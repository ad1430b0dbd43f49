//! Browser sign-in (authorization_code + PKCE), following the pages with a cookie jar.

mod codes;
mod flow;
mod pages;
mod passkey_pages;
mod policy;
mod prompt;
mod second_step;
