//! The `hookd` command: `serve` runs the engine, `check-config` validates the settings,
//! `reencrypt` seals stored secrets under the current key.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// glibc's allocator took about a seventh of hookd's CPU under load (many small, short-lived
// buffers per request); mimalloc serves them from per-thread pages.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use hookd::config::Settings;
use hookd::startup::Application;

#[derive(Parser)]
#[command(
    name = "hookd",
    version,
    about = "Durable webhook engine for Meta platforms"
)]
struct Cli {
    /// A TOML file overriding config/default.toml (only the settings you change).
    #[arg(long, short, global = true, env = "HOOKD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive, journal and split Meta webhooks; serve the API, health and metrics.
    Serve,
    /// Load and validate the configuration, print it (secrets redacted), and exit.
    CheckConfig,
    /// Seal every stored endpoint secret under the current key (after a key rotation, or for
    /// secrets stored before encryption), then exit. Run it with hookd stopped (the embedded
    /// backend's directory is locked while hookd runs).
    Reencrypt,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            say_err(format_args!("hookd: {e}"));
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Command::CheckConfig => {
            let toml = match settings.to_toml_redacted() {
                Ok(t) => t,
                Err(e) => {
                    say_err(format_args!("hookd: cannot print the configuration: {e}"));
                    return ExitCode::FAILURE;
                }
            };
            // A reader that stops early (`| head`) is not an error of hookd's.
            let _ = write!(
                std::io::stdout(),
                "# The configuration is valid. Storage: {}.\n\
                 # The effective settings as a file `--config` takes; secrets are redacted.\n\n{toml}",
                hookd::startup::storage_description(&settings)
            );
            ExitCode::SUCCESS
        }
        Command::Reencrypt => {
            hookd::telemetry::init(&settings.log);
            let done = actix_web::rt::System::new()
                .block_on(async { hookd::startup::reencrypt(&settings).await });
            match done {
                Ok((endpoints, tokens)) => {
                    let _ = writeln!(
                        std::io::stdout(),
                        "hookd: sealed the secrets of {endpoints} endpoint(s) and {tokens} Page \
                         token(s) under the current key"
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    say_err(format_args!("hookd: {e}"));
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve => {
            hookd::telemetry::init(&settings.log);
            let ignored = hookd::config::ignored_environment();
            if !ignored.is_empty() {
                tracing::debug!(?ignored, "Kubernetes service-link variables, not settings");
            }
            match actix_web::rt::System::new().block_on(serve(settings)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    say_err(format_args!("hookd: {e:#}"));
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Writes a line to stderr, or nothing when stderr is gone (`eprintln!` would panic).
fn say_err(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    Ok(())
}
