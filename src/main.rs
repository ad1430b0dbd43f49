use std::path::PathBuf;
use std::process::ExitCode;

use tessera::settings::Settings;
use tessera::startup::Application;

const USAGE: &str = "usage: tessera [--config FILE]\n\nConfiguration: defaults, then FILE (or $TESSERA_CONFIG, or ./tessera.toml), then TESSERA_<SECTION>__<KEY> variables. See tessera.example.toml.";

fn main() -> ExitCode {
    let mut config: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => match args.next() {
                Some(path) => config = Some(path.into()),
                None => return fail("--config needs a file"),
            },
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--version" | "-V" => {
                println!("tessera {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            other => return fail(&format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    tessera::telemetry::init();
    let settings = match Settings::load(config.as_deref()) {
        Ok(s) => s,
        Err(e) => return fail(&format!("{e:#}")),
    };
    let result = actix_web::rt::System::new().block_on(async move {
        let listen = settings.server.listen;
        let app = Application::build(settings).await?;
        tracing::info!(%listen, "tessera is ready");
        app.run_until_stopped().await?;
        tracing::info!("tessera stopped; closing database connections");
        anyhow::Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("{e:#}")),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("tessera: {message}");
    ExitCode::FAILURE
}
