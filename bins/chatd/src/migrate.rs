//! `chatd migrate`: copies a standalone deployment (the original's layout, chatd's additions
//! included) into the cluster layout of a Redis Cluster, with a progress bar on stderr and the
//! reports on stdout. The work itself is `chat_storage::migration`; see docs/operations.md,
//! "Moving to Redis Cluster".

use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use chat_storage::migration::{CopyReport, IndexReport, Migration, MigrationSettings, Progress, VerifyReport};
use indicatif::{ProgressBar, ProgressStyle};

use crate::settings::Settings;

/// `chatd migrate`'s arguments.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The standalone Redis to copy from (`redis://[:password@]host:port/db`).
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// Seed nodes of the Redis Cluster to copy to (several after one flag, or the flag repeated,
    /// or comma-separated).
    #[arg(long = "to-cluster", value_name = "URL", required = true, num_args = 1.., value_delimiter = ',')]
    pub to_cluster: Vec<String>,
    /// The key prefix (default: `redis.prefix` of chatd's settings, env `CHATD_REDIS__PREFIX`).
    #[arg(long)]
    pub prefix: Option<String>,
    /// Read both sides and report what would be indexed and copied; write nothing anywhere.
    #[arg(long, conflicts_with_all = ["verify_only", "restart"])]
    pub dry_run: bool,
    /// Only compare the source with the target (after a migration).
    #[arg(long, conflicts_with = "restart")]
    pub verify_only: bool,
    /// Copy everything again, though an earlier run finished (or stopped) its copy.
    #[arg(long)]
    pub restart: bool,
    /// How many keys one step of the scan asks for; the position is saved after each step.
    #[arg(long, default_value_t = 500, value_name = "KEYS")]
    pub batch: usize,
    /// Test hook: stop after this many steps of the copy, as an interruption would.
    #[arg(long, hide = true)]
    pub stop_after_batches: Option<u64>,
}

/// Exit status when the verification found differences.
const MISMATCHES: u8 = 1;
/// Exit status for invalid settings.
const INVALID: u8 = 2;
/// Exit status when a side could not be reached or a command failed (run again to resume).
const FAILED: u8 = 3;

/// Runs the migration the arguments ask for.
// The reports are the command's output, and its errors go to the operator.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub async fn run(args: MigrateArgs, settings: &Settings) -> ExitCode {
    let history = match settings.realtime.history_window() {
        Ok(history) => history,
        Err(error) => {
            eprintln!("chatd migrate: invalid configuration: {error}");
            return ExitCode::from(INVALID);
        }
    };
    let prefix = args.prefix.clone().unwrap_or_else(|| settings.redis.prefix.clone());
    let migration_settings = MigrationSettings {
        source: args.from.clone(),
        seeds: args.to_cluster.clone(),
        prefix: prefix.clone(),
        batch: args.batch,
        connect_timeout: Duration::from_millis(settings.redis.connect_timeout_ms),
        response_timeout: Duration::from_millis(settings.redis.response_timeout_ms.max(10_000)),
        history,
    };
    let migration = match Migration::connect(&migration_settings).await {
        Ok(migration) => migration,
        Err(error) => {
            eprintln!("chatd migrate: {error}");
            return ExitCode::from(FAILED);
        }
    };
    let mode = if args.dry_run {
        " (dry run: nothing is written)"
    } else if args.verify_only {
        " (verification only)"
    } else {
        ""
    };
    println!("chatd migrate: keys under {prefix:?}, to {} seed node(s){mode}", args.to_cluster.len());
    match migrate(&migration, &args).await {
        Ok(code) => code,
        Err(error @ chat_storage::StoreError::Unavailable(_)) => {
            eprintln!("chatd migrate: {error}; the same command run again resumes");
            ExitCode::from(FAILED)
        }
        Err(error) => {
            eprintln!("chatd migrate: {error}");
            ExitCode::from(FAILED)
        }
    }
}

#[allow(clippy::print_stdout)]
async fn migrate(migration: &Migration, args: &MigrateArgs) -> Result<ExitCode, chat_storage::StoreError> {
    let bar = Bar::default();
    if args.verify_only {
        return Ok(verified(&migration.verify(&bar, None).await?));
    }
    let index = migration.index(args.dry_run, &bar).await?;
    print_index(&index, args.dry_run);
    let copy = migration.copy(args.dry_run, args.restart, Some(index.keys), args.stop_after_batches, &bar).await?;
    print_copy(&copy, args.dry_run);
    if args.dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    if copy.stopped {
        println!("stopped before the end (--stop-after-batches): run again to resume");
        return Ok(ExitCode::SUCCESS);
    }
    Ok(verified(&migration.verify(&bar, Some(index.keys)).await?))
}

#[allow(clippy::print_stdout)]
fn print_index(report: &IndexReport, dry_run: bool) {
    let done = if dry_run { "would index" } else { "indexed" };
    println!(
        "index: {} keys before indexing; {} chats, {done} {}; {} inboxes, {done} {}",
        report.keys, report.chats, report.chats_indexed, report.inboxes, report.inboxes_indexed
    );
}

#[allow(clippy::print_stdout)]
fn print_copy(report: &CopyReport, dry_run: bool) {
    if report.already_done {
        println!("copy: an earlier run finished the copy; nothing copied (--restart copies again)");
        return;
    }
    if let Some(cursor) = report.resumed_at {
        println!("copy: resumed where an earlier run stopped (scan cursor {cursor})");
    }
    println!("copy: {}", if dry_run { "would copy" } else { "copied" });
    for (kind, count) in &report.kinds {
        println!("  {kind:<32}{count:>10}");
    }
    if !report.unknown.is_empty() {
        println!("  keys of no known kind, copied under the same name: {}", report.unknown.join(", "));
    }
    if !report.unreadable.is_empty() {
        println!("  left out, unreadable: {}", report.unreadable.join(", "));
    }
}

#[allow(clippy::print_stdout)]
fn verified(report: &VerifyReport) -> ExitCode {
    println!(
        "verify: {} keys compared ({} chats, {} inboxes): {} mismatch(es)",
        report.keys,
        report.chats,
        report.inboxes,
        report.mismatches.len()
    );
    for mismatch in &report.mismatches {
        println!(
            "  mismatch: {} -> {}: expected {}, found {}",
            mismatch.source, mismatch.target, mismatch.expected, mismatch.found
        );
    }
    if report.mismatches.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(MISMATCHES) }
}

/// The progress bar on stderr (drawn only when stderr is a terminal).
#[derive(Debug, Default)]
struct Bar(Mutex<Option<ProgressBar>>);

impl Progress for Bar {
    fn start(&self, pass: &str, total: Option<u64>) {
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template("{prefix:>7} [{bar:40}] {pos}/{len} keys ({eta})")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{prefix:>7} {spinner} {pos} keys")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_prefix(pass.to_owned());
        *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bar);
    }

    fn advance(&self, keys: u64) {
        if let Some(bar) = &*self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
            // More keys than counted (written meanwhile): the bar grows rather than overflows.
            if bar.length().is_some_and(|length| bar.position() + keys > length) {
                bar.set_length(bar.position() + keys);
            }
            bar.inc(keys);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
            bar.finish();
        }
    }
}
