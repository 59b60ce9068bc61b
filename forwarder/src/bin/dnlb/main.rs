//! The `dnlb` command.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use dnlb_forwarder::control::{self, Event, Events, RunOptions};

/// `println!` that leaves a closed stdout (`dnlb check | head -1`) alone
/// instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// `print!`, likewise.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($t)*);
    }};
}

/// `eprintln!` that leaves a closed stderr alone.
macro_rules! errln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($t)*);
    }};
}

mod capture;
mod explain;
mod status;

/// dnlb: a distributed layer-4 load balancer on DPDK.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How `dnlb run` writes its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum EventFormat {
    /// One readable line each (the final report: several).
    Text,
    /// One JSON object per line, with an `event` field naming the kind.
    Json,
}

/// Events written to stdout. A closed stdout (`dnlb run | head`) loses
/// events but never stops the gateway.
fn stdout_events(format: EventFormat) -> Events {
    Events::to(move |e: &Event| {
        use std::io::Write;
        let line = match format {
            EventFormat::Text => e.to_string(),
            EventFormat::Json => match serde_json::to_string(e) {
                Ok(j) => j,
                Err(err) => format!(
                    "{{\"event\":\"unserialisable\",\"error\":{:?}}}",
                    err.to_string()
                ),
            },
        };
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    })
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the forwarder until SIGINT or SIGTERM; SIGHUP reloads the config.
    Run {
        /// Configuration file (TOML).
        #[arg(short, long)]
        config: PathBuf,
        /// Print a stats event every N milliseconds.
        #[arg(long, value_name = "MS")]
        stats_interval_ms: Option<u64>,
        /// How events (ready, reloads, health, routes, stats, the final
        /// report) are written to stdout.
        #[arg(long, value_enum, default_value_t = EventFormat::Text)]
        events: EventFormat,
        /// Reload when the config file changes, checking every N
        /// milliseconds (0: only on SIGHUP).
        #[arg(long, value_name = "MS", default_value_t = 1000)]
        watch_config_ms: u64,
    },
    /// Validate a configuration (with its run-time changes) and print the
    /// effective plan (exit 1 on errors).
    Check {
        /// Configuration file (TOML).
        config: PathBuf,
    },
    /// Show a running gateway's listeners and backends (from its admin API).
    Status {
        /// How to reach the gateway's admin API.
        #[command(flatten)]
        api: status::ApiArgs,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
        /// First wait up to SECONDS until the gateway serves: BIRD confirmed
        /// every VIP, no new version staged (exit 1 if it does not). Run it
        /// after restarting a gateway, before restarting the next.
        #[arg(long, value_name = "SECONDS")]
        wait_serving: Option<u64>,
    },
    /// Where a running gateway sends a flow and why (from its admin API):
    /// the listener, the backend, the current and previous tables' answers,
    /// each worker's flow-table entry. IPv6 as [ADDR]:PORT.
    Explain(explain::Args),
    /// Capture the packets of one flow (or of a CIDR filter) on a running
    /// gateway, as received and as they leave with the decision, into a
    /// pcapng file (through its admin API; needs the token).
    Capture(capture::Args),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Status {
            api,
            json,
            wait_serving,
        } => match status::run(api, json, wait_serving.map(std::time::Duration::from_secs)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                errln!("dnlb status: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Capture(args) => match capture::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                errln!("dnlb capture: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Explain(args) => match explain::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                errln!("dnlb explain: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Check { config } => match dnlb_config::runtime::load(&config) {
            Ok(loaded) => {
                for line in control::plan::lines(&loaded.config) {
                    outln!("{line}");
                }
                if !loaded.changes.is_empty() || !loaded.stale.is_empty() {
                    outln!(
                        "run-time changes from {} (made through the admin API, included above):",
                        loaded.runtime_path.display()
                    );
                    for c in loaded.changes.describe() {
                        outln!("  {c}");
                    }
                    for c in &loaded.stale {
                        outln!("  stale: {c}");
                    }
                }
                outln!("{}: OK", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                errln!("{e}");
                errln!("{}: {} error(s)", config.display(), e.errors().len());
                ExitCode::FAILURE
            }
        },
        Command::Run {
            config,
            stats_interval_ms,
            events,
            watch_config_ms,
        } => {
            let cfg = match dnlb_config::runtime::load(&config) {
                Ok(c) => c.config,
                Err(e) => {
                    errln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let shutdown = Arc::new(AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                if let Err(e) = signal_hook::flag::register(sig, shutdown.clone()) {
                    errln!("cannot install signal handler: {e}");
                    return ExitCode::FAILURE;
                }
            }
            let reload = Arc::new(AtomicBool::new(false));
            if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
            {
                errln!("cannot install SIGHUP handler: {e}");
                return ExitCode::FAILURE;
            }
            let opts = RunOptions {
                stats_interval: stats_interval_ms.map(Duration::from_millis),
                config_path: Some(config.clone()),
                reload: Some(reload),
                watch_interval: (watch_config_ms > 0)
                    .then(|| Duration::from_millis(watch_config_ms)),
                events: stdout_events(events),
            };
            match control::run(&cfg, &opts, &shutdown) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    errln!("dnlb: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
