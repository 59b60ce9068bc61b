//! Finds the system DPDK through pkg-config, compiles the C shim for DPDK's
//! static-inline functions with DPDK's own cflags, and generates bindings with
//! an allowlist of the `rte_*` items the safe layer uses.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const MIN_DPDK: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=shim/shim.h");
    println!("cargo:rerun-if-changed=shim/shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let lib = match pkg_config::Config::new()
        .atleast_version(MIN_DPDK)
        .probe("libdpdk")
    {
        Ok(lib) => lib,
        Err(e) => {
            eprintln!(
                "\n\ndnlb needs DPDK >= {MIN_DPDK} development files, found through pkg-config \
                 (`pkg-config --modversion libdpdk`).\n\
                 On Debian 12: apt-get install libdpdk-dev dpdk pkg-config clang libclang-dev\n\
                 (scripts/test.sh installs everything).\n\npkg-config said: {e}\n"
            );
            std::process::exit(1);
        }
    };

    // The exact cflags matter: they carry `-include rte_config.h` and
    // `-march=...`, which rte_memcpy.h needs. The pkg-config crate only
    // exposes include paths and defines, so ask pkg-config directly.
    let pkg_config = env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".to_string());
    let out = Command::new(&pkg_config)
        .args(["--cflags", "libdpdk"])
        .output()
        .expect("running pkg-config --cflags libdpdk");
    assert!(
        out.status.success(),
        "pkg-config --cflags libdpdk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cflags: Vec<String> = String::from_utf8(out.stdout)
        .expect("pkg-config output is UTF-8")
        .split_whitespace()
        .map(str::to_string)
        .collect();

    let mut build = cc::Build::new();
    build
        .file("shim/shim.c")
        .include("shim")
        .opt_level(3)
        .warnings(true);
    for f in &cflags {
        build.flag(f);
    }
    build.compile("dnlb_dpdk_shim");

    let mut builder = bindgen::Builder::default()
        .header("shim/shim.h")
        .clang_args(cflags.iter())
        .clang_args(
            lib.include_paths
                .iter()
                .map(|p| format!("-I{}", p.display())),
        )
        .allowlist_function("dnlb_.*")
        .allowlist_function("rte_eal_init")
        .allowlist_function("rte_eal_cleanup")
        .allowlist_function("rte_eal_get_runtime_dir")
        .allowlist_function("rte_eal_remote_launch")
        .allowlist_function("rte_eal_wait_lcore")
        .allowlist_function("rte_eal_get_lcore_state")
        .allowlist_function("rte_lcore_count")
        .allowlist_function("rte_get_main_lcore")
        .allowlist_function("rte_get_next_lcore")
        .allowlist_function("rte_lcore_is_enabled")
        .allowlist_function("rte_lcore_to_socket_id")
        .allowlist_function("rte_socket_id")
        .allowlist_function("rte_get_tsc_hz")
        .allowlist_function("rte_strerror")
        .allowlist_function("rte_pktmbuf_pool_create")
        .allowlist_function("rte_mempool_free")
        .allowlist_function("rte_mempool_avail_count")
        .allowlist_function("rte_mempool_in_use_count")
        .allowlist_function("rte_eth_dev_count_avail")
        .allowlist_function("rte_eth_dev_is_valid_port")
        .allowlist_function("rte_eth_dev_info_get")
        .allowlist_function("rte_eth_dev_configure")
        .allowlist_function("rte_eth_dev_adjust_nb_rx_tx_desc")
        .allowlist_function("rte_eth_rx_queue_setup")
        .allowlist_function("rte_eth_tx_queue_setup")
        .allowlist_function("rte_eth_dev_start")
        .allowlist_function("rte_eth_dev_stop")
        .allowlist_function("rte_eth_dev_close")
        .allowlist_function("rte_eth_dev_get_port_by_name")
        .allowlist_function("rte_eth_dev_get_name_by_port")
        .allowlist_function("rte_eth_dev_socket_id")
        .allowlist_function("rte_eth_promiscuous_enable")
        .allowlist_function("rte_eth_stats_get")
        .allowlist_function("rte_eth_stats_reset")
        .allowlist_function("rte_eth_macaddr_get")
        .allowlist_function("rte_eth_dev_get_mtu")
        .allowlist_function("rte_eth_dev_set_mtu")
        .allowlist_function("rte_eth_link_get_nowait")
        .allowlist_type("rte_mbuf")
        .allowlist_type("rte_mempool")
        .allowlist_type("rte_eth_conf")
        .allowlist_type("rte_eth_dev_info")
        .allowlist_type("rte_eth_stats")
        .allowlist_type("rte_eth_link")
        .allowlist_type("rte_ether_addr")
        .allowlist_type("rte_eth_rxconf")
        .allowlist_type("rte_eth_txconf")
        .allowlist_type("rte_lcore_state_t")
        .allowlist_var("RTE_ETH_RSS_.*")
        .allowlist_var("RTE_ETH_MQ_RX_.*")
        .allowlist_var("RTE_PKTMBUF_HEADROOM")
        .allowlist_var("RTE_MBUF_DEFAULT_BUF_SIZE")
        .allowlist_var("RTE_MAX_LCORE")
        .allowlist_var("RTE_MAX_ETHPORTS")
        .allowlist_var("RTE_ETH_NAME_MAX_LEN")
        .allowlist_var("SOCKET_ID_ANY")
        .allowlist_var("RTE_ETHER_ADDR_LEN")
        .default_enum_style(bindgen::EnumVariation::Rust {
            non_exhaustive: false,
        })
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    // rte_eth_conf / rte_eth_dev_info pull in a few packed+aligned types that
    // bindgen cannot lay out faithfully; none of their fields are used here.
    for t in [
        "rte_l2tpv2_combined_msg_hdr",
        "rte_arp_hdr",
        "rte_gtp_psc_generic_hdr",
    ] {
        builder = builder.opaque_type(t).no_debug(t);
    }
    let bindings = builder.generate().expect("generating DPDK bindings");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("bindings.rs");
    bindings.write_to_file(out).expect("writing bindings.rs");
}
