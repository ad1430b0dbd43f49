use std::io::{BufRead, IsTerminal};

use anyhow::Context as _;
use clap::Subcommand;
use serde::Serialize;
use tessera::domain::password::PasswordHasher;
use tessera::domain::user::{self, Username};

use super::Context;
use crate::output::{emit, rfc3339};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is prompted for (without echo) unless --password-stdin
    Create {
        username: String,
        /// Read the password from the first line of standard input
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Serialize)]
struct UserView<'a> {
    id: &'a str,
    username: &'a str,
    created_at: String,
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!("no terminal to prompt for the password: use --password-stdin");
    }
    let first = rpassword::prompt_password("Password: ")?;
    let again = rpassword::prompt_password("Password (again): ")?;
    if first != again {
        anyhow::bail!("the passwords do not match");
    }
    Ok(first)
}

pub fn run(ctx: &mut Context, cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create {
            username,
            password_stdin,
        } => {
            let username = Username::parse(&username)?;
            let password = read_password(password_stdin)?;
            let hasher = PasswordHasher::new(&ctx.settings.passwords, 1)?;
            let user = user::create(ctx.conn()?, &hasher, &username, &password)?;
            let view = UserView {
                id: &user.id,
                username: &user.username,
                created_at: rfc3339(user.created_at),
            };
            emit(ctx.output, &view, || {
                format!("created user {} (id {})", user.username, user.id)
            })
        }
    }
}
