//! EAL set-up shared by this crate's tests. DPDK allows one `rte_eal_init`
//! per process, so every test that needs the EAL runs in its own child
//! process (rusty-fork) and initialises it there with its own file prefix.

use dpdk_bindings::Eal;

/// EAL arguments for tests: no hugepages, no PCI, a private file prefix.
pub fn eal_args(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--no-huge",
        "--no-pci",
        "-m",
        "256",
        "--log-level",
        "lib.eal:error",
        "--no-telemetry",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("--file-prefix=dnlb-bt-{}", std::process::id()));
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

pub fn init(extra: &[&str]) -> Eal {
    Eal::init(eal_args(extra)).expect("EAL init")
}
