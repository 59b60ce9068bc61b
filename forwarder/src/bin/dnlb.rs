//! The `dnlb` command.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use dnlb_config::{Config, Device, IdlePolicy};
use dnlb_forwarder::control::{self, RunOptions};

/// dnlb: a distributed layer-4 load balancer on DPDK.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the forwarder until SIGINT or SIGTERM; SIGHUP reloads the config.
    Run {
        /// Configuration file (TOML).
        #[arg(short, long)]
        config: PathBuf,
        /// Print a stats line to stdout every N milliseconds.
        #[arg(long, value_name = "MS")]
        stats_interval_ms: Option<u64>,
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
        /// The admin API's URL. Default: from --config's [admin] section,
        /// else http://127.0.0.1:9100.
        #[arg(long)]
        api: Option<String>,
        /// Configuration file: the API address and token come from its
        /// [admin] section.
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// File holding the bearer token (overrides the config's).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
}

fn status(
    api: Option<String>,
    config: Option<PathBuf>,
    token_file: Option<PathBuf>,
    json: bool,
) -> Result<(), String> {
    let cfg = match &config {
        Some(c) => Some(dnlb_config::load(c).map_err(|e| e.to_string())?),
        None => None,
    };
    let admin = cfg.as_ref().and_then(|c| c.admin.clone());
    let url = api
        .or_else(|| {
            admin.as_ref().map(|a| {
                let mut l = a.listen;
                if l.ip().is_unspecified() {
                    l.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{l}")
            })
        })
        .unwrap_or_else(|| "http://127.0.0.1:9100".into());
    let token = match token_file {
        Some(f) => Some(
            std::fs::read_to_string(&f)
                .map_err(|e| format!("{}: {e}", f.display()))?
                .trim()
                .to_string(),
        ),
        None => admin.and_then(|a| a.token).map(|t| t.0),
    };
    let mut req = ureq::get(&format!("{}/v1/status", url.trim_end_matches('/')))
        .timeout(Duration::from_secs(10));
    if let Some(t) = &token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    let body = match req.call() {
        Ok(r) => r.into_string().map_err(|e| e.to_string())?,
        Err(ureq::Error::Status(code, r)) => {
            return Err(format!(
                "{url}: HTTP {code}: {}",
                r.into_string().unwrap_or_default().trim()
            ))
        }
        Err(e) => {
            return Err(format!(
                "{url}: {e} (is dnlb running with an [admin] section?)"
            ))
        }
    };
    if json {
        println!("{body}");
        return Ok(());
    }
    let s: control::status::Status =
        serde_json::from_str(&body).map_err(|e| format!("{url}: unexpected answer: {e}"))?;
    print!("{}", control::status::render_table(&s));
    Ok(())
}

fn print_plan(cfg: &Config) {
    let dp = &cfg.dataplane;
    println!(
        "gateway {} (zone {})",
        cfg.gateway.name,
        cfg.gateway.zone.as_deref().unwrap_or("-")
    );
    println!("EAL arguments: {}", dp.full_eal_args().join(" "));
    println!(
        "main lcore {}, workers on lcores {:?}",
        dp.main_lcore, dp.worker_lcores
    );
    match dp.idle {
        IdlePolicy::BusyPoll => println!("idle workers busy-poll"),
        IdlePolicy::Sleep { polls, sleep } => {
            println!("idle workers sleep {sleep:?} after {polls} empty polls")
        }
    }
    println!(
        "mbuf pool {} mbufs; {} RX / {} TX descriptors per queue",
        dp.pool_mbufs, dp.rx_descriptors, dp.tx_descriptors
    );
    let routes = dnlb_forwarder::control::run::non_vip_routes(dp);
    for (i, p) in dp.ports.iter().enumerate() {
        let kind = match &p.device {
            Device::Virtual { devargs } if devargs.is_empty() => "virtual".to_string(),
            Device::Virtual { devargs } => format!("virtual ({devargs})"),
            Device::Pci => "PCI".to_string(),
        };
        let non_vip = match routes[i] {
            Some(o) => format!("frames not for a VIP leave by {}", dp.ports[o.get()].name),
            None => "frames not for a VIP are dropped (counted as not_for_vip)".to_string(),
        };
        let host = if dp.host_port == Some(i) {
            " (host port)"
        } else {
            ""
        };
        let rss = if p.rss && dp.worker_lcores.len() > 1 {
            " with RSS"
        } else {
            ""
        };
        println!(
            "port {i} {}{host}: {kind}, {} RX/TX queue pairs{rss}; {non_vip}",
            p.name,
            dp.worker_lcores.len(),
        );
    }
    match &cfg.admin {
        Some(a) => println!(
            "admin API on http://{}{}",
            a.listen,
            if a.token.is_some() {
                " (bearer token required)"
            } else {
                ""
            }
        ),
        None => println!("no admin API (add an [admin] section)"),
    }
    match &cfg.routing {
        Some(r) => println!(
            "routes: VIPs announced through BIRD at {} (IPv4 in {}, IPv6 in {}); withdrawn {} ms before shutdown",
            r.bird_socket.display(),
            r.vips4_file.as_ref().map_or("-".into(), |f| f.display().to_string()),
            r.vips6_file.as_ref().map_or("-".into(), |f| f.display().to_string()),
            r.withdraw_delay.as_millis()
        ),
        None => println!("routes: not announced (no [routing] section)"),
    }
    if cfg.listeners.is_empty() {
        println!("no listeners: frames are only forwarded between ports");
        return;
    }
    let e = &cfg.encap;
    let mac = |m: [u8; 6]| {
        m.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    println!(
        "encapsulation: from {} / {} toward next hop {}, MTU {}, too big: {:?}, echo: {:?}",
        e.source_v4.map_or("-".to_string(), |a| a.to_string()),
        e.source_v6.map_or("-".to_string(), |a| a.to_string()),
        mac(e.next_hop_mac),
        e.mtu,
        e.too_big,
        e.icmp_echo
    );
    println!(
        "flows: {} per worker, idle timeouts TCP {:?} UDP {:?}",
        cfg.flows.capacity_per_worker, cfg.flows.tcp_idle_timeout, cfg.flows.udp_idle_timeout
    );
    for l in &cfg.listeners {
        let addrs: Vec<String> = l.addresses().map(|a| a.to_string()).collect();
        println!(
            "listener {}: {} {:?} port {} -> target group {} ({:?}, table {}, fragments {:?})",
            l.name,
            addrs.join(", "),
            l.protocol,
            l.port.map_or("all".to_string(), |p| p.to_string()),
            cfg.target_groups[l.target_group].name,
            l.scheduler,
            l.table_size,
            l.fragments
        );
    }
    for g in &cfg.target_groups {
        println!("target group {}: {} backend(s)", g.name, g.backends.len());
        if g.zone_affinity == dnlb_config::ZoneAffinity::PreferOwn {
            println!(
                "  new flows prefer zone {} while it has a usable backend",
                cfg.gateway.zone.as_deref().unwrap_or("-")
            );
        }
        for b in &g.backends {
            let drain = b.drain_until.map_or(String::new(), |t| {
                format!(" draining until {}", dnlb_config::time::from_system_time(t))
            });
            println!(
                "  {} port {} {:?} weight {} zone {} tunnel {:?}{drain}",
                b.address,
                b.port,
                b.kind,
                b.weight,
                b.zone.as_deref().unwrap_or("-"),
                b.tunnel
            );
        }
    }
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
            config,
            token_file,
            json,
        } => match status(api, config, token_file, json) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("dnlb status: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Check { config } => match dnlb_config::runtime::load(&config) {
            Ok(loaded) => {
                print_plan(&loaded.config);
                if !loaded.changes.is_empty() || !loaded.stale.is_empty() {
                    println!(
                        "run-time changes from {} (made through the admin API, included above):",
                        loaded.runtime_path.display()
                    );
                    for c in loaded.changes.describe() {
                        println!("  {c}");
                    }
                    for c in &loaded.stale {
                        println!("  stale: {c}");
                    }
                }
                println!("{}: OK", config.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                eprintln!("{}: {} error(s)", config.display(), e.errors().len());
                ExitCode::FAILURE
            }
        },
        Command::Run {
            config,
            stats_interval_ms,
            watch_config_ms,
        } => {
            let cfg = match dnlb_config::runtime::load(&config) {
                Ok(c) => c.config,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let shutdown = Arc::new(AtomicBool::new(false));
            for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                if let Err(e) = signal_hook::flag::register(sig, shutdown.clone()) {
                    eprintln!("cannot install signal handler: {e}");
                    return ExitCode::FAILURE;
                }
            }
            let reload = Arc::new(AtomicBool::new(false));
            if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
            {
                eprintln!("cannot install SIGHUP handler: {e}");
                return ExitCode::FAILURE;
            }
            let opts = RunOptions {
                stats_interval: stats_interval_ms.map(Duration::from_millis),
                config_path: Some(config.clone()),
                reload: Some(reload),
                watch_interval: (watch_config_ms > 0)
                    .then(|| Duration::from_millis(watch_config_ms)),
            };
            match control::run(&cfg, &opts, &shutdown) {
                Ok(_) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("dnlb: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
