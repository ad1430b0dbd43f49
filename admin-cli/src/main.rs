//! `tessera-admin`: registers clients, manages users and revokes token families, straight on the
//! database the server uses, with the server's own rules and migrations.

mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;
use tessera::store::one_line;

fn main() -> ExitCode {
    let cli = commands::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera-admin: {}", one_line(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::commands::Cli::command().debug_assert();
    }

    /// Ids are base64url and key ids may start with `-`: they must not be taken for options.
    #[test]
    fn ids_may_start_with_a_hyphen() {
        use clap::Parser;
        let cli = super::commands::Cli::try_parse_from([
            "tessera-admin",
            "family",
            "revoke",
            "-x1",
            "--yes",
        ]);
        let text = format!("{:?}", cli.unwrap().command);
        assert!(
            text.contains("\"-x1\"") && text.contains("yes: true"),
            "{text}"
        );
        let cli = super::commands::Cli::try_parse_from([
            "tessera-admin",
            "key",
            "retire",
            "--yes",
            "-_k",
        ]);
        assert!(format!("{:?}", cli.unwrap().command).contains("\"-_k\""));
    }
}
