//! `chatd`: realtime chat beside your platform. Reads its configuration, then serves until stopped.

use std::path::PathBuf;
use std::process::ExitCode;

use chatd::settings::Settings;
use chatd::startup::Application;
use clap::Parser;

/// jemalloc: a request allocates and frees many small buffers (JSON, keys, frames); glibc's
/// malloc spent about a fifth of chatd's CPU on them under load (docs/performance.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// chatd — realtime chat beside your platform. Without a command, serves.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file (TOML). Default: ./chatd.toml when it exists.
    #[arg(long, env = "CHATD_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Copy a standalone Redis deployment into Redis Cluster (the cluster layout), then verify.
    Migrate(chatd::migrate::MigrateArgs),
}

#[actix_web::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match Settings::load(args.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            // Logging is configured by the settings that failed to load: report plainly.
            #[allow(clippy::print_stderr)]
            {
                eprintln!("chatd: invalid configuration: {error}");
            }
            return ExitCode::from(2);
        }
    };
    chatd::telemetry::init(&settings.log);
    if let Some(Command::Migrate(migrate)) = args.command {
        return chatd::migrate::run(migrate, &settings).await;
    }
    let application = match Application::build(&settings) {
        Ok(application) => application,
        Err(error) => {
            tracing::error!(%error, "chatd cannot start");
            return ExitCode::from(2);
        }
    };
    tracing::info!(
        host = %settings.http.host,
        port = application.port(),
        env = ?settings.env,
        handle = %settings.chat.handle,
        "chatd listening"
    );
    match application.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "chatd stopped with an error");
            ExitCode::FAILURE
        }
    }
}
