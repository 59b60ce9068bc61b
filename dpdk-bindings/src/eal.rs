//! The Environment Abstraction Layer: one initialisation per process, lcore
//! enumeration and launching work on worker lcores.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::{check, from_rte_errno, Error, Result};
use crate::sys;

/// An EAL logical core id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LcoreId(pub u32);

impl fmt::Display for LcoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A NUMA socket id as DPDK reports it (`SOCKET_ID_ANY` is -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketId(pub i32);

impl SocketId {
    /// Any socket.
    pub const ANY: SocketId = SocketId(sys::SOCKET_ID_ANY);
}

static EAL_INITIALISED: AtomicBool = AtomicBool::new(false);

struct EalInner {
    args: Vec<String>,
    /// EAL's runtime directory (`/var/run/dpdk/PREFIX` for root), removed
    /// after cleanup.
    runtime_dir: Option<std::path::PathBuf>,
}

impl Drop for EalInner {
    fn drop(&mut self) {
        // SAFETY: the last handle is gone, so every port and mempool (each of
        // which holds a handle) has been closed and freed; no lcore launched
        // through `Eal::launch` can still run because `Launched` holds a
        // handle too.
        unsafe {
            sys::rte_eal_cleanup();
        }
        // rte_eal_cleanup leaves the runtime directory's files (~13 MB with
        // --no-huge, on a tmpfs: memory) behind. This process was the
        // primary of its file prefix (EAL refuses a second one), so nothing
        // else needs them once it stops.
        if let Some(dir) = &self.runtime_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A handle on the initialised EAL. Clones share it; `rte_eal_cleanup` runs
/// when the last clone (including those held by ports, mempools and launched
/// lcores) is dropped.
#[derive(Clone)]
pub struct Eal {
    inner: Arc<EalInner>,
}

impl fmt::Debug for Eal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Eal")
            .field("args", &self.inner.args)
            .finish()
    }
}

impl Eal {
    /// Initialises the EAL with `args` (without the program name, which is
    /// added). Fails with [`Error::EalAlreadyInitialized`] on a second call in
    /// the same process, whatever happened to the first.
    pub fn init<I, S>(args: I) -> Result<Eal>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut owned: Vec<String> = vec!["dnlb".to_string()];
        owned.extend(args.into_iter().map(|s| s.as_ref().to_string()));
        let cstrings = owned
            .iter()
            .map(|s| CString::new(s.as_str()).map_err(|_| Error::NulInArgument(s.clone())))
            .collect::<Result<Vec<_>>>()?;
        if EAL_INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(Error::EalAlreadyInitialized);
        }
        // rte_eal_init may permute argv; give it a private array of pointers.
        let mut argv: Vec<*mut c_char> =
            cstrings.iter().map(|c| c.as_ptr() as *mut c_char).collect();
        let argc = argv.len() as c_int;
        // SAFETY: argv holds argc valid NUL-terminated strings that outlive
        // the call (cstrings is alive); the EAL is initialised at most once
        // per process, guarded by EAL_INITIALISED.
        let ret = unsafe { sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(from_rte_errno("rte_eal_init"));
        }
        // SAFETY: after a successful init EAL returns a pointer to its own
        // NUL-terminated path buffer, valid for the process's life; it is
        // copied at once.
        let runtime_dir = unsafe {
            let p = sys::rte_eal_get_runtime_dir();
            (!p.is_null()).then(|| {
                std::path::PathBuf::from(std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
            })
        };
        Ok(Eal {
            inner: Arc::new(EalInner {
                args: owned,
                runtime_dir,
            }),
        })
    }

    /// EAL's runtime directory for this process's file prefix, removed when
    /// the last handle is dropped.
    pub fn runtime_dir(&self) -> Option<&std::path::Path> {
        self.inner.runtime_dir.as_deref()
    }

    /// The arguments EAL was initialised with (program name first).
    pub fn args(&self) -> &[String] {
        &self.inner.args
    }

    /// The DPDK version string, e.g. "DPDK 22.11.11".
    pub fn version() -> String {
        // SAFETY: rte_version returns a pointer to a static string.
        unsafe { CStr::from_ptr(sys::dnlb_version()) }
            .to_string_lossy()
            .into_owned()
    }

    /// The main lcore (the one that called `init`).
    pub fn main_lcore(&self) -> LcoreId {
        // SAFETY: EAL is initialised (we hold a handle).
        LcoreId(unsafe { sys::rte_get_main_lcore() })
    }

    /// Number of enabled lcores, main included.
    pub fn lcore_count(&self) -> u32 {
        // SAFETY: EAL is initialised.
        unsafe { sys::rte_lcore_count() }
    }

    /// Enabled worker lcores (all enabled lcores but the main one), ascending.
    pub fn worker_lcores(&self) -> Vec<LcoreId> {
        let mut out = Vec::new();
        let mut i: u32 = u32::MAX; // -1: start before lcore 0
        loop {
            // SAFETY: EAL is initialised; skip_main=1, wrap=0 iterates enabled
            // worker lcores and returns RTE_MAX_LCORE at the end.
            i = unsafe { sys::rte_get_next_lcore(i, 1, 0) };
            if i >= sys::RTE_MAX_LCORE {
                break;
            }
            out.push(LcoreId(i));
        }
        out
    }

    /// Whether `lcore` is enabled in this EAL.
    pub fn lcore_enabled(&self, lcore: LcoreId) -> bool {
        // SAFETY: EAL is initialised; any id is accepted.
        lcore.0 < sys::RTE_MAX_LCORE && unsafe { sys::rte_lcore_is_enabled(lcore.0) } != 0
    }

    /// The NUMA socket of an lcore.
    pub fn lcore_socket(&self, lcore: LcoreId) -> SocketId {
        // SAFETY: EAL is initialised; out-of-range ids return an error value.
        SocketId(unsafe { sys::rte_lcore_to_socket_id(lcore.0) } as i32)
    }

    /// The lcore the calling thread runs on, if it is an EAL thread.
    pub fn current_lcore() -> Option<LcoreId> {
        // SAFETY: reads the per-lcore TLS variable through the shim.
        let id = unsafe { sys::dnlb_lcore_id() };
        (id != u32::MAX).then_some(LcoreId(id))
    }

    /// TSC ticks per second.
    pub fn tsc_hz(&self) -> u64 {
        // SAFETY: EAL is initialised (TSC frequency is measured at init).
        unsafe { sys::rte_get_tsc_hz() }
    }

    /// Runs `f` on worker lcore `lcore`. The returned handle waits for it.
    pub fn launch<F>(&self, lcore: LcoreId, f: F) -> Result<Launched>
    where
        F: FnOnce() -> i32 + Send + 'static,
    {
        if !self.lcore_enabled(lcore) || lcore == self.main_lcore() {
            return Err(Error::LcoreUnavailable(lcore.0));
        }
        let boxed: Box<Box<dyn FnOnce() -> i32 + Send>> = Box::new(Box::new(f));
        let arg = Box::into_raw(boxed) as *mut c_void;
        // SAFETY: `trampoline` takes ownership of `arg`, a leaked
        // Box<Box<dyn FnOnce>>, exactly once; if the launch fails the box is
        // reclaimed here instead.
        let ret = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg, lcore.0) };
        if ret < 0 {
            // SAFETY: the launch failed, so the trampoline never ran and we
            // still own the box.
            drop(unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() -> i32 + Send>) });
            return Err(if ret == -libc::EBUSY {
                Error::LcoreUnavailable(lcore.0)
            } else {
                check("rte_eal_remote_launch", ret).unwrap_err()
            });
        }
        Ok(Launched {
            lcore,
            _eal: self.clone(),
            waited: false,
        })
    }
}

unsafe extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Box<dyn FnOnce>> leaked by `Eal::launch`, and
    // the EAL passes it to exactly one trampoline call.
    let f = unsafe { Box::from_raw(arg as *mut Box<dyn FnOnce() -> i32 + Send>) };
    // A panic must not unwind into C.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(-1)
}

/// Work running on a worker lcore. [`Launched::wait`] joins it; dropping the
/// handle also waits, so the EAL cannot be cleaned up under a running lcore.
pub struct Launched {
    lcore: LcoreId,
    _eal: Eal,
    waited: bool,
}

impl fmt::Debug for Launched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Launched")
            .field("lcore", &self.lcore)
            .finish()
    }
}

impl Launched {
    /// The lcore the work runs on.
    pub fn lcore(&self) -> LcoreId {
        self.lcore
    }

    /// Blocks until the work returns; gives its return code (-1 if it panicked).
    pub fn wait(mut self) -> i32 {
        self.waited = true;
        // SAFETY: the lcore was launched by us and not yet waited for.
        unsafe { sys::rte_eal_wait_lcore(self.lcore.0) }
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        if !self.waited {
            // SAFETY: as in `wait`.
            unsafe {
                sys::rte_eal_wait_lcore(self.lcore.0);
            }
        }
    }
}

/// Reads the time-stamp counter (cheap, for per-burst timing): the
/// instruction itself on x86_64 (what DPDK's inline `rte_rdtsc` is), DPDK's
/// through the shim elsewhere.
#[inline(always)]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: RDTSC has no preconditions and touches no memory.
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: rdtsc has no preconditions.
    unsafe {
        sys::dnlb_rdtsc()
    }
}
