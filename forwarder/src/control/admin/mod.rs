//! The admin HTTP API and the Prometheus endpoint.
//!
//! A hyper server on the control side's tokio runtime ([`server`]) checks
//! who may do what ([`access`]: the bearer token from the [`token`] file for
//! writes, `Host`/`Origin` on loopback, JSON bodies), turns each request
//! into an [`ApiCall`] ([`routes`]) and hands it to the control thread,
//! which owns all state and answers with an [`ApiReply`] ([`answer`]). So
//! API changes, reloads and health changes are serialised on one thread
//! and never race each other, and no client can hold the control thread.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/v1/status` | everything below, with counters |
//! | GET | `/v1/listeners`, `/v1/backends`, `/v1/runtime` | parts of it |
//! | GET | `/v1/explain?src=IP&sport=N&dst=IP&dport=N&proto=tcp\|udp` | where a flow goes and why (`control::explain`) |
//! | POST | `/v1/reload` | reload the config file |
//! | POST | `/v1/config/check` | dry run: `{"toml": TEXT}` validated and its plan diffed against the running one |
//! | POST | `/v1/target_groups/G/backends` | register a backend (JSON: keys of `[[target_group.backend]]`) |
//! | DELETE | `/v1/target_groups/G/backends/ADDR[?port=P]` | deregister |
//! | PUT | `/v1/target_groups/G/backends/ADDR/weight` | `{"weight": N}` |
//! | PUT | `/v1/target_groups/G/backends/ADDR/drain` | `{"deadline_secs": N}` or `{"until": "RFC 3339"}` |
//! | DELETE | `/v1/target_groups/G/backends/ADDR/drain` | cancel a drain |
//! | PUT | `/v1/listeners/L/elastic_ip` | `{"address": "A"}`: attach |
//! | DELETE | `/v1/listeners/L/elastic_ip` | detach |
//! | GET | `/metrics` | Prometheus text format |
//! | GET | `/`, `/console/` | the web console ([`console`]: embedded page, script and style) |

pub mod access;
pub mod answer;
pub mod console;
pub mod reply;
pub mod routes;
pub mod server;
pub mod token;

pub use answer::serve;
pub use reply::ApiReply;
pub use routes::{route, ApiCall};
pub use server::{AdminCounters, AdminServer, Envelope};
