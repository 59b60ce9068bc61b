//! `dnlb-sim`: runs built-in or TOML scenarios under each strategy; prints
//! a table per scenario, writes JSON lines and SVG plots.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use dnlb_sim::builtin::{self, Size};
use dnlb_sim::scenario::EcmpMode;
use dnlb_sim::{plot, report, RunResult, Scenario, Strategy};

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Ecmp {
    /// As the scenario says (built-ins: resilient).
    Scenario,
    Modulo,
    Resilient,
    /// Each scenario twice, once per mode.
    Both,
}

/// Simulates a dnlb fleet under churn and counts broken connections per
/// flow-sync strategy.
#[derive(Debug, Parser)]
#[command(name = "dnlb-sim")]
struct Args {
    /// Built-in scenarios to run (`all`, or names; see --list).
    #[arg(long, value_delimiter = ',', default_value = "all")]
    scenario: Vec<String>,
    /// Scenario files (TOML) to run instead of built-ins.
    #[arg(long)]
    file: Vec<PathBuf>,
    /// List the built-in scenarios and exit.
    #[arg(long)]
    list: bool,
    /// Built-in size: `full` (64 gateways, 10k backends, 1M connections)
    /// or `small` (16, 1k, 100k).
    #[arg(long, default_value = "full")]
    size: String,
    /// Override the number of gateways.
    #[arg(long)]
    gateways: Option<u32>,
    /// Override the number of backends.
    #[arg(long)]
    backends: Option<u32>,
    /// Override the number of connections.
    #[arg(long)]
    connections: Option<u32>,
    /// Seed of the built-in scenarios.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Router hashing.
    #[arg(long, value_enum, default_value = "scenario")]
    ecmp: Ecmp,
    /// Strategies (comma-separated; default all).
    #[arg(long, value_delimiter = ',')]
    strategy: Vec<String>,
    /// Append JSON lines (one per run) to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Simulate nothing: print the tables and draw the plots of the runs in
    /// this JSON-lines file (as --json writes them; a later line for the
    /// same scenario and strategy replaces an earlier one), in scenario
    /// order and strategy order; with --json, write those runs there.
    #[arg(long)]
    from_json: Option<PathBuf>,
    /// Write SVG plots into this folder.
    #[arg(long)]
    plots: Option<PathBuf>,
}

fn scenarios(a: &Args) -> Result<Vec<Scenario>, String> {
    if !a.file.is_empty() {
        return a
            .file
            .iter()
            .map(|p| Scenario::from_file(p).map_err(|e| e.to_string()))
            .collect();
    }
    let mut size = match a.size.as_str() {
        "full" => Size::FULL,
        "small" => Size::SMALL,
        s => return Err(format!("unknown size {s:?} (full, small)")),
    };
    size.gateways = a.gateways.unwrap_or(size.gateways);
    size.backends = a.backends.unwrap_or(size.backends);
    size.connections = a.connections.unwrap_or(size.connections);
    let names: Vec<&str> = if a.scenario.iter().any(|s| s == "all") {
        builtin::NAMES.to_vec()
    } else {
        a.scenario.iter().map(String::as_str).collect()
    };
    names
        .into_iter()
        .map(|n| builtin::scenario(n, size, a.seed).ok_or(format!("unknown scenario {n:?}")))
        .collect()
}

fn with_modes(scs: Vec<Scenario>, e: Ecmp) -> Vec<Scenario> {
    let modes: &[EcmpMode] = match e {
        Ecmp::Scenario => return scs,
        Ecmp::Modulo => &[EcmpMode::Modulo],
        Ecmp::Resilient => &[EcmpMode::Resilient],
        Ecmp::Both => &[EcmpMode::Resilient, EcmpMode::Modulo],
    };
    scs.into_iter()
        .flat_map(|s| modes.iter().map(move |&m| builtin::with_ecmp(s.clone(), m)))
        .collect()
}

fn main() -> ExitCode {
    let a = Args::parse();
    if a.list {
        for n in builtin::NAMES {
            let sc = builtin::scenario(n, Size::FULL, 1).expect("built-in");
            println!("{n}: {}", sc.description);
        }
        return ExitCode::SUCCESS;
    }
    if let Some(path) = &a.from_json {
        let groups = std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|t| report::from_json_lines(&t));
        let done = groups.and_then(|g| {
            let mut out = Output::open(&a)?;
            g.into_iter().try_for_each(|runs| out.scenario(runs))?;
            out.summary()
        });
        return match done {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dnlb-sim: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let strategies: Result<Vec<Strategy>, String> = if a.strategy.is_empty() {
        Ok(Strategy::ALL.to_vec())
    } else {
        a.strategy
            .iter()
            .map(|s| Strategy::parse(s).ok_or(format!("unknown strategy {s:?}")))
            .collect()
    };
    let (scs, strategies) = match (scenarios(&a), strategies) {
        (Ok(s), Ok(t)) => (with_modes(s, a.ecmp), t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("dnlb-sim: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&a, &scs, &strategies) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dnlb-sim: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(a: &Args, scs: &[Scenario], strategies: &[Strategy]) -> Result<(), String> {
    let mut out = Output::open(a)?;
    for sc in scs {
        let mut runs = Vec::new();
        for &s in strategies {
            let r = dnlb_sim::Sim::new(sc, s).run();
            eprintln!(
                "{} / {}: {} broken of {} in {:.1} s",
                r.scenario, r.strategy, r.broken, r.connections, r.wall_seconds
            );
            runs.push(r);
        }
        out.scenario(runs)?;
    }
    out.summary()
}

/// Where runs go: JSON lines, a table per scenario on stdout, SVG plots.
struct Output {
    json: Option<std::fs::File>,
    plots: Option<PathBuf>,
    all: Vec<Vec<RunResult>>,
}

impl Output {
    fn open(a: &Args) -> Result<Output, String> {
        let json = match &a.json {
            Some(p) => Some(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("{}: {e}", p.display()))?,
            ),
            None => None,
        };
        if let Some(dir) = &a.plots {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        Ok(Output {
            json,
            plots: a.plots.clone(),
            all: Vec::new(),
        })
    }

    /// The runs of one scenario.
    fn scenario(&mut self, runs: Vec<RunResult>) -> Result<(), String> {
        if let Some(f) = self.json.as_mut() {
            for r in &runs {
                writeln!(f, "{}", r.json()).map_err(|e| e.to_string())?;
            }
        }
        println!("{}", report::table(&runs));
        if let (Some(dir), Some(first)) = (&self.plots, runs.first()) {
            let p = dir.join(format!("{}.svg", first.scenario));
            plot::scenario_chart(&runs, &p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        self.all.push(runs);
        Ok(())
    }

    /// The summary plot of every scenario.
    fn summary(&self) -> Result<(), String> {
        if let Some(dir) = &self.plots {
            let p = dir.join("summary.svg");
            plot::summary_chart(&self.all, &p).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        Ok(())
    }
}
