//! The GPU context: instance, adapter, device and queue, the adapter's limits, the caches
//! (pipelines, pooled buffers) that every op shares, and the per-adapter kernel and schedule
//! choices (kernel variant, wavefront, single workgroup, narrow batch), each overridable by an
//! environment variable and a setter.
//!
//! The adapter is chosen honouring wgpu's own `WGPU_BACKEND` (e.g. `vulkan`) and
//! `WGPU_ADAPTER_NAME` (a case-insensitive substring of the adapter's name). The device is
//! requested with the adapter's own limits, not wgpu's conservative defaults.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::pipeline::{Pipeline, PipelineKey};

/// What to install when no adapter exists; part of the error message.
pub const INSTALL_HINT: &str = "no Vulkan/Metal/DX12/GL adapter was found. On Debian/Ubuntu install \
Mesa's software Vulkan driver with `apt-get install -y mesa-vulkan-drivers` (or a GPU driver), \
or run `bash scripts/setup.sh`";

/// Which implementations of the GEMM and recurrent-step kernels suit this adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KernelVariant {
    /// Tiles staged through workgroup memory (64x64 GEMM tiles; the recurrent product of a
    /// step as a small GEMM with the cell as epilogue): right for real GPUs.
    Tiled,
    /// No workgroup memory and no barriers, register blocks read straight from memory: right
    /// for CPU adapters (lavapipe), where each barrier splits the shader and costs a lot.
    Simple,
}

/// The arithmetic of the GEMMs (and, through the split step, the recurrent products).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// f32 throughout: the default and the contract of the conformance suite.
    F32,
    /// Opt-in (`WGRNN_PRECISION=f16`): GEMM inputs rounded to f16, f32 accumulation, on
    /// tensor cores through wgpu's experimental cooperative matrices (`matmul_coop`). Only on
    /// adapters offering 16x16x16 f16 -> f32 matrices with 32-lane subgroups.
    F16,
}

impl Precision {
    /// `f32` or `f16`: the value of `WGRNN_PRECISION` and of a checkpoint's record.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }
}

/// Why `adapter` cannot run [`Precision::F16`], or `None` when it can.
fn coop_unsupported(adapter: &wgpu::Adapter) -> Option<String> {
    let info = adapter.get_info();
    let f = adapter.features();
    let need = wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16;
    if !f.contains(need) {
        return Some(format!(
            "{} offers no cooperative matrices with f16 (features: cooperative-matrix {}, shader-f16 {})",
            info.name,
            f.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX),
            f.contains(wgpu::Features::SHADER_F16)
        ));
    }
    let ok = adapter.cooperative_matrix_properties().iter().any(|p| {
        (p.m_size, p.n_size, p.k_size) == (16, 16, 16)
            && p.ab_type == wgpu::wgt::CooperativeScalarType::F16
            && p.cr_type == wgpu::wgt::CooperativeScalarType::F32
    });
    if !ok {
        return Some(format!(
            "{} has no 16x16x16 f16 x f16 -> f32 cooperative matrix",
            info.name
        ));
    }
    if (info.subgroup_min_size, info.subgroup_max_size) != (32, 32) {
        return Some(format!(
            "{} has subgroups of {}..{} lanes (matmul_coop needs 32)",
            info.name, info.subgroup_min_size, info.subgroup_max_size
        ));
    }
    None
}

/// When a unidirectional inference forward runs as one single-workgroup `seq_forward` dispatch
/// instead of one dispatch per (wavefront) step. `WGRNN_PERSISTENT=auto|always|never` sets it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Persistent {
    /// By adapter and shape: see [`Context::use_persistent`].
    Auto,
    /// For every unidirectional inference forward (tests, measurements).
    Always,
    /// Never.
    Never,
}

/// The `Auto` rule of [`Context::use_persistent`].
fn persistent_auto(
    device: wgpu::DeviceType,
    batch: usize,
    hidden: usize,
    weight_bytes: usize,
) -> bool {
    device != wgpu::DeviceType::Cpu
        && batch.div_ceil(4) * hidden <= 256
        && weight_bytes <= 256 << 10
}

/// Running totals of what this context sent to the queue, counted where it happens (every
/// `queue.submit` of `encoder.rs`). Take [`Context::counts`] before and after a call to see
/// what the call did.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    submits: AtomicU64,
    readbacks: AtomicU64,
    dispatches: AtomicU64,
}

impl Counters {
    /// One submitted command buffer of `dispatches` compute dispatches.
    pub(crate) fn submitted(&self, dispatches: usize) {
        self.submits.fetch_add(1, Ordering::Relaxed);
        self.dispatches
            .fetch_add(dispatches as u64, Ordering::Relaxed);
    }

    /// One submitted readback (a copy into a staging buffer).
    pub(crate) fn read_back(&self) {
        self.readbacks.fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of a context's queue traffic since it was created. The difference of two
/// snapshots ([`Counts::since`]) is what happened in between.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Command buffers of recorded work submitted ([`crate::Recorder::submit`]).
    pub submits: u64,
    /// Readback submissions (copies to a staging buffer for [`crate::Tensor::to_vec`] and its
    /// kin).
    pub readbacks: u64,
    /// Compute dispatches in the submitted command buffers.
    pub dispatches: u64,
}

impl Counts {
    /// What happened between `earlier` and this snapshot.
    pub fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            submits: self.submits - earlier.submits,
            readbacks: self.readbacks - earlier.readbacks,
            dispatches: self.dispatches - earlier.dispatches,
        }
    }
}

/// Free pooled bytes kept for reuse; beyond this the oldest free buffers are released.
pub const POOL_FREE_BYTES: u64 = 512 << 20;

/// The pool's size class of a request: 16-byte multiples up to 4 KiB, then the next of
/// 2^k, 1.25 2^k, 1.5 2^k, 1.75 2^k.
fn size_class(bytes: u64) -> u64 {
    let b = bytes.max(16).div_ceil(16) * 16;
    if b <= 4096 {
        return b;
    }
    let p = 1u64 << (63 - b.leading_zeros()); // the power of two at or below b
    let step = p / 4;
    b.div_ceil(step) * step
}

/// Pooled buffers by size class, each list oldest first, and the bytes they hold.
#[derive(Default)]
struct Pool {
    by_size: HashMap<u64, Vec<Arc<wgpu::Buffer>>>,
    bytes: u64,
    /// Insertion counter (for "oldest first").
    order: Vec<(u64, std::sync::Weak<wgpu::Buffer>)>,
}

impl Pool {
    /// A buffer of `size` nobody else holds.
    fn take(&mut self, size: u64) -> Option<Arc<wgpu::Buffer>> {
        self.by_size
            .get(&size)?
            .iter()
            .find(|b| Arc::strong_count(b) == 1)
            .cloned()
    }

    fn insert(&mut self, b: Arc<wgpu::Buffer>) {
        self.bytes += b.size();
        self.order.push((b.size(), Arc::downgrade(&b)));
        self.by_size.entry(b.size()).or_default().push(b);
        if self.free_bytes() > POOL_FREE_BYTES {
            self.release_free(POOL_FREE_BYTES);
        }
    }

    /// Bytes of the pooled buffers no tensor holds.
    fn free_bytes(&self) -> u64 {
        self.by_size
            .values()
            .flatten()
            .filter(|b| Arc::strong_count(b) == 1)
            .map(|b| b.size())
            .sum()
    }

    /// Releases free buffers, oldest first, until at most `keep` free bytes remain.
    fn release_free(&mut self, keep: u64) {
        let mut free = self.free_bytes();
        let mut drop_ptrs = std::collections::HashSet::new();
        for (size, w) in &self.order {
            if free <= keep {
                break;
            }
            if let Some(b) = w.upgrade()
                && Arc::strong_count(&b) == 2
            {
                // Held only by the pool (and this upgrade).
                drop_ptrs.insert(Arc::as_ptr(&b));
                free -= size;
            }
        }
        for list in self.by_size.values_mut() {
            list.retain(|b| !drop_ptrs.contains(&Arc::as_ptr(b)));
        }
        self.by_size.retain(|_, l| !l.is_empty());
        self.order.retain(|(_, w)| w.strong_count() > 0);
        self.bytes = self.by_size.values().flatten().map(|b| b.size()).sum();
    }
}

/// The GPU context. Create one per process and share it (`&Context` is `Sync`).
pub struct Context {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    pub(crate) limits: wgpu::Limits,
    pub(crate) features: wgpu::Features,
    adapter_features: wgpu::Features,
    variant: Mutex<KernelVariant>,
    /// Modules built with wgpu's runtime checks (`WGRNN_SHADER_CHECKS=1`) instead of trusted.
    shader_checks: bool,
    /// The variant was forced by the constructor ([`Context::with_variant`]): tuned choices
    /// keep it, as they keep an environment override.
    pub(crate) variant_forced: bool,
    precision: Precision,
    coop_props: Vec<String>,
    gemm_micro: std::sync::atomic::AtomicBool,
    step_split: std::sync::atomic::AtomicUsize,
    /// The tuning tables in force: the shipped defaults, plus the local cache once loaded.
    pub(crate) tune: Mutex<crate::tune::Tables>,
    pub(crate) pipelines: Mutex<HashMap<PipelineKey, Arc<Pipeline>>>,
    /// Parsed shader modules, one per kernel family (pipelines of a family share it).
    pub(crate) modules: Mutex<HashMap<crate::shaders::Shader, Arc<wgpu::ShaderModule>>>,
    pool: Mutex<Pool>,
    /// The uniform buffer holding every dispatch's parameters (see `encoder.rs`).
    pub(crate) params: Mutex<Option<wgpu::Buffer>>,
    pub(crate) uncaptured: Arc<Mutex<Vec<String>>>,
    pub(crate) counters: Counters,
    target_groups: std::sync::atomic::AtomicUsize,
    wavefront: std::sync::atomic::AtomicBool,
    narrow_batch: std::sync::atomic::AtomicUsize,
    cpu_blocks: std::sync::atomic::AtomicBool,
    cpu_subgroups: std::sync::atomic::AtomicBool,
    persistent: Mutex<Persistent>,
    /// Per-kernel GPU time while profiling (`WGRNN_PROFILE=1`, [`Context::set_profile`]):
    /// entry point -> (dispatches, milliseconds).
    pub(crate) profile: Mutex<Option<HashMap<&'static str, (u64, f64)>>>,
}

impl Context {
    /// Starts (with an empty table) or stops per-kernel profiling: while on, every dispatch
    /// runs in its own pass between two timestamps and each submission waits for its times, so
    /// the work runs slower. Returns false (and stays off) when the adapter has no timestamp
    /// queries. `WGRNN_PROFILE=1` turns it on at creation.
    pub fn set_profile(&self, on: bool) -> bool {
        let ok = on && self.features.contains(wgpu::Features::TIMESTAMP_QUERY);
        *self.profile.lock().unwrap_or_else(|p| p.into_inner()) = ok.then(HashMap::new);
        ok
    }

    /// Whether dispatches are being profiled ([`Context::set_profile`]).
    pub(crate) fn profiling(&self) -> bool {
        self.profile
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Per-kernel GPU time so far when profiling: `(entry point, dispatches, milliseconds)`,
    /// the most expensive first; `None` when not profiling.
    pub fn profile(&self) -> Option<Vec<(&'static str, u64, f64)>> {
        let guard = self.profile.lock().unwrap_or_else(|p| p.into_inner());
        let map = guard.as_ref()?;
        let mut rows: Vec<_> = map.iter().map(|(k, &(n, ms))| (*k, n, ms)).collect();
        rows.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(b.0)));
        Some(rows)
    }
}

impl Drop for Context {
    /// When profiling, prints the per-kernel table to stderr (how `WGRNN_PROFILE=1` reports
    /// on any `wgrnn` command).
    fn drop(&mut self) {
        let Some(rows) = self.profile() else { return };
        let total: f64 = rows.iter().map(|r| r.2).sum();
        eprintln!("WGRNN_PROFILE: GPU time per kernel ({total:.1} ms in all)");
        eprintln!(
            "{:>10} {:>6} {:>10} {:>10}  kernel",
            "ms", "%", "dispatches", "us each"
        );
        for (name, n, ms) in rows {
            eprintln!(
                "{ms:>10.1} {:>6.1} {n:>10} {:>10.1}  {name}",
                100.0 * ms / total.max(1e-12),
                1e3 * ms / n.max(1) as f64
            );
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Context({} / {:?})", self.info.name, self.info.backend)
    }
}

/// An on/off environment switch: `Some(false)` for 0/off/false, `Some(true)` for 1/on/true,
/// `None` when unset or anything else (the caller's default).
fn env_switch(name: &str) -> Option<bool> {
    match std::env::var(name).as_deref() {
        Ok("0" | "off" | "false") => Some(false),
        Ok("1" | "on" | "true") => Some(true),
        _ => None,
    }
}

fn device_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

fn backend_rank(b: wgpu::Backend) -> u32 {
    match b {
        wgpu::Backend::Vulkan | wgpu::Backend::Metal | wgpu::Backend::Dx12 => 0,
        _ => 1,
    }
}

impl Context {
    /// Opens the best adapter: the one named by `WGPU_ADAPTER_NAME` if set, else a discrete GPU
    /// before an integrated one before a CPU driver, Vulkan/Metal/DX12 before GL.
    ///
    /// Errors: [`Error::NoAdapter`] with what to install when nothing usable exists.
    pub fn new() -> Result<Self> {
        Self::open(None)
    }

    /// Like [`new`](Self::new), with the kernel variant forced (tests run both on one adapter).
    pub fn with_variant(variant: KernelVariant) -> Result<Self> {
        Self::open(Some(variant))
    }

    fn open(forced: Option<KernelVariant>) -> Result<Self> {
        // Without WGPU_BACKEND, try the primary backends (Vulkan, Metal, DX12) first and probe
        // GL only when none has an adapter: GL probing is slow and noisy on headless machines.
        let candidates = match wgpu::Backends::from_env() {
            Some(b) => vec![b],
            None => vec![wgpu::Backends::PRIMARY, wgpu::Backends::SECONDARY],
        };
        let mut adapters = Vec::new();
        for backends in candidates {
            let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
            desc.backends = backends;
            desc.flags = wgpu::InstanceFlags::default().with_env();
            let instance = wgpu::Instance::new(desc);
            adapters = pollster::block_on(instance.enumerate_adapters(backends));
            if !adapters.is_empty() {
                break;
            }
        }
        if let Ok(name) = std::env::var("WGPU_ADAPTER_NAME") {
            let want = name.to_lowercase();
            let all: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
            adapters.retain(|a| a.get_info().name.to_lowercase().contains(&want));
            if adapters.is_empty() {
                return Err(Error::NoAdapter(format!(
                    "WGPU_ADAPTER_NAME={name:?} matches none of the adapters found: {all:?}"
                )));
            }
        }
        // Compute needs storage buffers in compute shaders; GL adapters without them are useless.
        adapters.retain(|a| {
            a.get_downlevel_capabilities()
                .flags
                .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
                && a.limits().max_storage_buffers_per_shader_stage >= 8
        });
        adapters.sort_by_key(|a| {
            let i = a.get_info();
            (device_rank(i.device_type), backend_rank(i.backend))
        });
        let adapter = adapters.into_iter().next().ok_or_else(|| {
            Error::NoAdapter(match std::env::var("WGPU_BACKEND") {
                Ok(b) => format!("WGPU_BACKEND={b}: {INSTALL_HINT}"),
                Err(_) => INSTALL_HINT.to_string(),
            })
        })?;
        Self::from_adapter(adapter, forced)
    }

    fn from_adapter(adapter: wgpu::Adapter, forced: Option<KernelVariant>) -> Result<Self> {
        let info = adapter.get_info();
        let wanted = wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS
            | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES
            | wgpu::Features::SUBGROUP
            | wgpu::Features::SHADER_F16;
        let adapter_features = adapter.features();
        let precision = match std::env::var("WGRNN_PRECISION").as_deref() {
            Ok("f16") => Precision::F16,
            Ok("f32") | Err(_) => Precision::F32,
            Ok(other) => {
                return Err(Error::config(format!(
                    "WGRNN_PRECISION={other:?}: expected f32 or f16"
                )));
            }
        };
        let mut features = adapter_features & wanted;
        let mut experimental = wgpu::ExperimentalFeatures::disabled();
        if precision == Precision::F16 {
            if let Some(why) = coop_unsupported(&adapter) {
                return Err(Error::config(format!("WGRNN_PRECISION=f16: {why}")));
            }
            features |= wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX;
            // SAFETY: wgpu's experimental cooperative matrices are opted into by the user
            // (WGRNN_PRECISION=f16); only matmul_coop uses them.
            experimental = unsafe { wgpu::ExperimentalFeatures::enabled() };
        }
        let coop_props =
            if adapter_features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX) {
                adapter
                    .cooperative_matrix_properties()
                    .iter()
                    .map(|p| {
                        format!(
                            "{}x{}x{} {:?}->{:?}",
                            p.m_size, p.n_size, p.k_size, p.ab_type, p.cr_type
                        )
                        .to_lowercase()
                    })
                    .collect()
            } else {
                Vec::new()
            };
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("wgrnn"),
            required_features: features,
            required_limits: limits.clone(),
            experimental_features: experimental,
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::NoAdapter(format!("{} refused a device: {e}", info.name)))?;
        // wgpu's default handler panics; keep the message and return it as an error instead.
        let uncaptured = Arc::new(Mutex::new(Vec::new()));
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            if let Ok(mut v) = sink.lock() {
                v.push(e.to_string());
            }
        }));
        let variant = match (forced, std::env::var("WGRNN_KERNELS").as_deref()) {
            (Some(v), _) => v,
            (None, Ok("tiled")) => KernelVariant::Tiled,
            (None, Ok("simple")) => KernelVariant::Simple,
            _ if info.device_type == wgpu::DeviceType::Cpu => KernelVariant::Simple,
            _ => KernelVariant::Tiled,
        };
        // Measured on lavapipe: the input product inside the step runs at the step kernel's
        // rate, about half the GEMM's, and a CPU driver gains nothing from fewer dispatches
        // (docs/PERFORMANCE.md); GPUs gain dispatches and workgroups per dispatch.
        let wavefront =
            env_switch("WGRNN_WAVEFRONT").unwrap_or(info.device_type != wgpu::DeviceType::Cpu);
        let persistent = match std::env::var("WGRNN_PERSISTENT").as_deref() {
            Ok("always") => Persistent::Always,
            Ok("never") => Persistent::Never,
            _ => Persistent::Auto,
        };
        // Batches up to this size run the tiled variant's forward steps as matrix-vector
        // products (`*_gemv`); `WGRNN_NARROW_BATCH=0` turns that off.
        let narrow_batch = std::env::var("WGRNN_NARROW_BATCH")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(4usize)
            .min(4);
        // Simple variant: register-blocked GEMM and step kernels (matmul_cpu.wgsl,
        // recurrent_cpu.wgsl) where the shapes allow; `WGRNN_CPU_BLOCKS=0` keeps the plain ones.
        let cpu_blocks = env_switch("WGRNN_CPU_BLOCKS").unwrap_or(true);
        // Simple variant: kernels that share loads across a subgroup (matmul_cpu_subgroup.wgsl)
        // where the adapter's subgroups hold 8 lanes; `WGRNN_CPU_SUBGROUPS=0` keeps the others.
        let cpu_subgroups = env_switch("WGRNN_CPU_SUBGROUPS").unwrap_or(true);
        let target = match info.device_type {
            wgpu::DeviceType::DiscreteGpu => 132,
            _ => 16,
        };
        // Trusted modules (no injected index clamps, loop counters or division guards) unless
        // `WGRNN_SHADER_CHECKS=1`: see `shaders::create`.
        let shader_checks = env_switch("WGRNN_SHADER_CHECKS").unwrap_or(false);
        // The register-tiled GEMM of matmul.wgsl (`matmul_micro`) for large products on the
        // tiled variant: off until measured on an adapter (`wgrnn tune`), `WGRNN_GEMM=micro`.
        let gemm_micro = matches!(std::env::var("WGRNN_GEMM").as_deref(), Ok("micro"));
        // Split-K of the per-step recurrent product (1 = the fused step kernel).
        let step_split = std::env::var("WGRNN_STEP_SPLIT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1usize)
            .clamp(1, crate::tune::MAX_STEP_SPLIT);
        let tune = Mutex::new(crate::tune::Tables::shipped(&info));
        // Per-kernel timestamps (`WGRNN_PROFILE=1`): each dispatch in its own timed pass, the
        // totals printed when the context is dropped. Slower (every submission waits).
        let profile = Mutex::new(
            (env_switch("WGRNN_PROFILE") == Some(true)
                && features.contains(wgpu::Features::TIMESTAMP_QUERY))
            .then(HashMap::new),
        );
        Ok(Context {
            device,
            queue,
            info,
            limits,
            features,
            adapter_features,
            variant: Mutex::new(variant),
            shader_checks,
            variant_forced: forced.is_some(),
            precision,
            coop_props,
            gemm_micro: gemm_micro.into(),
            step_split: step_split.into(),
            tune,
            pipelines: Mutex::new(HashMap::new()),
            modules: Mutex::new(HashMap::new()),
            pool: Mutex::new(Pool::default()),
            params: Mutex::new(None),
            uncaptured,
            counters: Counters::default(),
            target_groups: target.into(),
            wavefront: wavefront.into(),
            narrow_batch: narrow_batch.into(),
            cpu_blocks: cpu_blocks.into(),
            cpu_subgroups: cpu_subgroups.into(),
            persistent: Mutex::new(persistent),
            profile,
        })
        .inspect(|ctx| {
            // The shipped configuration of an adapter already measured (environment first).
            let shipped = ctx
                .tune
                .lock()
                .ok()
                .and_then(|t| t.shipped_default().cloned());
            if let (Some(cfg), None) = (shipped, forced) {
                ctx.apply_kernel_config(&cfg, true);
            }
            let base = ctx.kernel_config();
            if let Ok(mut t) = ctx.tune.lock() {
                t.base = Some(base);
            }
        })
    }

    /// Submissions, readbacks and dispatches so far, from every thread using this context (see
    /// [`Counts`]).
    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        Counts {
            submits: c.submits.load(Ordering::Relaxed),
            readbacks: c.readbacks.load(Ordering::Relaxed),
            dispatches: c.dispatches.load(Ordering::Relaxed),
        }
    }

    /// The adapter's name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)` or `NVIDIA H100 80GB HBM3`.
    pub fn adapter_name(&self) -> &str {
        &self.info.name
    }

    /// The backend in use, e.g. `vulkan`.
    pub fn backend(&self) -> String {
        format!("{:?}", self.info.backend).to_lowercase()
    }

    /// The adapter's full description.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// The limits the device was created with (the adapter's own).
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// True when GPU timestamps can be written between commands of one encoder.
    pub fn has_timestamps(&self) -> bool {
        self.features.contains(
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS,
        )
    }

    /// The adapter's optional features that matter for these kernels, as `(name, offered)`:
    /// f16 arithmetic in shaders, subgroup operations, and wgpu's experimental cooperative
    /// matrices (requested only for the opt-in [`Precision::F16`]).
    pub fn compute_features(&self) -> Vec<(&'static str, bool)> {
        let f = self.adapter_features;
        vec![
            ("shader-f16", f.contains(wgpu::Features::SHADER_F16)),
            ("subgroup", f.contains(wgpu::Features::SUBGROUP)),
            (
                "cooperative-matrix (experimental)",
                f.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX),
            ),
        ]
    }

    /// The adapter's cooperative-matrix configurations (`MxNxK ab->cr`), empty when it offers
    /// none.
    pub fn cooperative_matrices(&self) -> Vec<String> {
        self.coop_props.clone()
    }

    /// Which kernel implementations this context uses (`WGRNN_KERNELS=tiled|simple`
    /// overrides the choice by adapter type).
    pub fn variant(&self) -> KernelVariant {
        self.variant
            .lock()
            .map(|v| *v)
            .unwrap_or(KernelVariant::Tiled)
    }

    /// Switches the kernel variant (tuning, a resumed run's recorded configuration).
    pub fn set_variant(&self, v: KernelVariant) {
        if let Ok(mut g) = self.variant.lock() {
            *g = v;
        }
    }

    /// Whether shader modules keep wgpu's runtime checks (`WGRNN_SHADER_CHECKS=1`); by default
    /// they are trusted, built without them (fixed when the context is created).
    pub fn shader_checks(&self) -> bool {
        self.shader_checks
    }

    /// The GEMMs' arithmetic (fixed when the context is created: `WGRNN_PRECISION`).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Whether large GEMMs of the tiled variant run the register-tiled `matmul_micro` kernel
    /// (vec4 workgroup memory, 8x8 per invocation, double-buffered) instead of `matmul_large`.
    pub fn gemm_micro(&self) -> bool {
        self.gemm_micro.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Turns `matmul_micro` on or off (tuning, measurements, tests).
    pub fn set_gemm_micro(&self, on: bool) {
        self.gemm_micro
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Into how many K slices the tiled variant splits a step's recurrent product (1: the fused
    /// step kernel; more: a split-K GEMM then `step_cell_split`, which sums the slices in order
    /// and applies the cell). Used where the fused kernel's grid would not fill the device.
    pub fn step_split(&self) -> usize {
        self.step_split.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets [`step_split`](Self::step_split) (1..=[`crate::tune::MAX_STEP_SPLIT`]).
    pub fn set_step_split(&self, s: usize) {
        self.step_split.store(
            s.clamp(1, crate::tune::MAX_STEP_SPLIT),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// Workgroups a dispatch should have to fill the device: the tiled kernels shrink their
    /// tiles while a grid would have fewer. wgpu does not report compute units, so this is a
    /// guess from the adapter type (132 for discrete GPUs, 16 otherwise).
    pub fn target_workgroups(&self) -> usize {
        self.target_groups
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Overrides [`target_workgroups`](Self::target_workgroups) (tuning, tests).
    pub fn set_target_workgroups(&self, n: usize) {
        self.target_groups
            .store(n.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether unidirectional stacks of two or more layers run their forwards (inference, and
    /// training without inter-layer dropout) as a wavefront over layers (T + L - 1 step
    /// dispatches instead of L*T; `Rnn::schedule` has the other conditions). On by default
    /// except on CPU adapters; `WGRNN_WAVEFRONT=1|0` overrides.
    pub fn wavefront(&self) -> bool {
        self.wavefront.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Turns the wavefront schedule on or off (measurements, tests).
    pub fn set_wavefront(&self, on: bool) {
        self.wavefront
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The largest batch whose forward steps the tiled variant runs as matrix-vector products
    /// (one workgroup per hidden unit, lanes splitting the products): 4 unless
    /// `WGRNN_NARROW_BATCH` (0..=4) says otherwise.
    pub fn narrow_batch(&self) -> usize {
        self.narrow_batch.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sets [`narrow_batch`](Self::narrow_batch) (at most 4; 0 turns the kernels off).
    pub fn set_narrow_batch(&self, b: usize) {
        self.narrow_batch
            .store(b.min(4), std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the simple variant (CPU adapters) uses its register-blocked kernels: the 8x8
    /// GEMM blocks of `matmul_cpu.wgsl` (vec4 loads where the layout allows) and, for hidden
    /// sizes that are multiples of 4, the step blocks of `recurrent_cpu.wgsl`. On unless
    /// `WGRNN_CPU_BLOCKS=0`; off, the simple variant runs its one-unit-per-invocation kernels.
    pub fn cpu_blocks(&self) -> bool {
        self.cpu_blocks.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Turns the register-blocked CPU kernels on or off (measurements, tests).
    pub fn set_cpu_blocks(&self, on: bool) {
        self.cpu_blocks
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the simple variant's register-blocked kernels share operand loads across a
    /// subgroup (`matmul_subgroup` and the `*_subgroup` step blocks: on llvmpipe a storage
    /// load costs one lane at a time, a subgroup broadcast a register shuffle). Used only where [`Self::has_cpu_subgroups`];
    /// on unless `WGRNN_CPU_SUBGROUPS=0`.
    pub fn cpu_subgroups(&self) -> bool {
        self.cpu_subgroups
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Turns the subgroup kernels of the simple variant on or off (measurements, tests).
    pub fn set_cpu_subgroups(&self, on: bool) {
        self.cpu_subgroups
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the device can run the subgroup kernels of the simple variant: the SUBGROUP
    /// feature, and subgroups of at least 8 lanes (their 8-invocation workgroups must be one
    /// subgroup; lavapipe's are 8 lanes at 256 bits, 4 at `LP_NATIVE_VECTOR_WIDTH=128`).
    pub fn has_cpu_subgroups(&self) -> bool {
        self.features.contains(wgpu::Features::SUBGROUP) && self.info.subgroup_min_size >= 8
    }

    /// The single-workgroup policy (see [`Persistent`]).
    pub fn persistent(&self) -> Persistent {
        self.persistent
            .lock()
            .map(|p| *p)
            .unwrap_or(Persistent::Auto)
    }

    /// Sets the single-workgroup policy (measurements, tests).
    pub fn set_persistent(&self, p: Persistent) {
        if let Ok(mut g) = self.persistent.lock() {
            *g = p;
        }
    }

    /// Whether a unidirectional inference forward over `seq` steps of `batch` rows of `hidden`
    /// units, reading `weight_bytes` of recurrent (and upper layers' input) weights per
    /// wavefront step, runs as one single-workgroup dispatch. `Auto`, on GPUs: for more than
    /// one step, when every invocation owns at most one unit for four rows per layer
    /// (`ceil(B/4) * H <= 256`) and the weights of a step are at most 256 KiB, i.e. when one
    /// compute unit streams a step's weights (~120 GB/s from L2, a prediction for the H100)
    /// faster than a dispatch costs (~2.4 us there); larger steps go to the per-step
    /// matrix-vector kernels, which spread the weights over every compute unit, and a single
    /// step to the per-layer kernels (no weight pack to build). Never on CPU adapters (one
    /// workgroup runs on one thread: 2.7x slower per step on lavapipe for S1).
    pub fn use_persistent(
        &self,
        seq: usize,
        batch: usize,
        hidden: usize,
        weight_bytes: usize,
    ) -> bool {
        match self.persistent() {
            Persistent::Always => true,
            Persistent::Never => false,
            Persistent::Auto => {
                seq > 1 && persistent_auto(self.info.device_type, batch, hidden, weight_bytes)
            }
        }
    }

    /// Runs `f` inside validation and out-of-memory error scopes and turns what they catch (and
    /// anything the uncaptured-error handler saw meanwhile) into an [`Error`].
    pub(crate) fn scoped<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let val = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let out = f();
        let v = pollster::block_on(val.pop());
        let o = pollster::block_on(oom.pop());
        if let Some(e) = o {
            return Err(Error::OutOfMemory(e.to_string()));
        }
        if let Some(e) = v {
            return Err(Error::Device(e.to_string()));
        }
        self.take_uncaptured()?;
        Ok(out)
    }

    pub(crate) fn take_uncaptured(&self) -> Result<()> {
        let mut v = self
            .uncaptured
            .lock()
            .map_err(|_| Error::Device("poisoned lock".into()))?;
        if v.is_empty() {
            Ok(())
        } else {
            let msg = v.join("; ");
            v.clear();
            Err(Error::Device(msg))
        }
    }

    /// The largest tensor in bytes: the adapter's storage-binding limit (or its buffer limit
    /// when smaller).
    pub fn max_tensor_bytes(&self) -> u64 {
        self.limits
            .max_storage_buffer_binding_size
            .min(self.limits.max_buffer_size)
    }

    /// Checks that a 32-bit tensor `name` of `shape` can be bound as one storage buffer and
    /// returns its element count; call it before allocating anything for the tensor, host or
    /// device. An element count that overflows is refused the same way.
    pub fn check_tensor(&self, name: &str, shape: &[usize]) -> Result<usize> {
        let n = crate::tensor::try_numel(shape);
        let bytes = n
            .and_then(|n| (n as u64).checked_mul(4))
            .unwrap_or(u64::MAX);
        self.check_binding_size(name, bytes)?;
        Ok(n.unwrap_or(usize::MAX))
    }

    /// Checks that a tensor of `bytes` can be bound as one storage buffer.
    pub(crate) fn check_binding_size(&self, name: &str, bytes: u64) -> Result<()> {
        let limit = self.max_tensor_bytes();
        if bytes > limit {
            return Err(Error::Limit {
                name: name.to_string(),
                bytes,
                limit_name: "max_storage_buffer_binding_size",
                limit,
            });
        }
        Ok(())
    }

    /// A storage buffer of at least `bytes`, reused from the pool when one of its size class
    /// is no longer held by anybody. Sizes are rounded up to classes (steps of a quarter of a
    /// power of two, at most 25% more), so the varying shapes of bucketed batches reuse
    /// buffers; free buffers beyond [`POOL_FREE_BYTES`] are released, oldest first. The
    /// content is undefined: every kernel writes what it reads.
    pub(crate) fn alloc(&self, name: &str, bytes: u64) -> Result<Arc<wgpu::Buffer>> {
        self.check_binding_size(name, bytes)?;
        let size = size_class(bytes).min(self.max_tensor_bytes().div_ceil(16) * 16);
        let lock = || {
            self.pool
                .lock()
                .map_err(|_| Error::Device("poisoned lock".into()))
        };
        if let Some(b) = lock()?.take(size) {
            return Ok(b);
        }
        let buf = Arc::new(self.scoped(|| {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(name),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?);
        lock()?.insert(buf.clone());
        Ok(buf)
    }

    /// Releases pooled buffers nobody holds (their memory returns to the driver).
    pub fn trim_pool(&self) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.release_free(0);
        }
    }

    /// Bytes currently held by the buffer pool (in use or free).
    pub fn pool_bytes(&self) -> u64 {
        self.pool.lock().map(|p| p.bytes).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::persistent_auto;
    use wgpu::DeviceType::{Cpu, DiscreteGpu};

    #[test]
    fn size_classes_waste_at_most_a_quarter() {
        use super::size_class;
        assert_eq!(size_class(1), 16);
        assert_eq!(size_class(4096), 4096);
        assert_eq!(size_class(4097), 5120);
        assert_eq!(size_class(5121), 6144);
        for b in [4097u64, 10_000, 123_457, 1 << 20, (1 << 20) + 1, 99_999_999] {
            let c = size_class(b);
            assert!(c >= b && c % 16 == 0 && (c - b) * 4 <= b, "{b} -> {c}");
        }
    }

    #[test]
    fn single_workgroup_rule() {
        // S1 (LSTM H=256, B=1): 1 MiB of W_hh per step goes to the per-step kernels.
        assert!(!persistent_auto(DiscreteGpu, 1, 256, 4 * 4 * 256 * 256));
        // A small 2-layer stack: 48 KiB per wavefront step.
        assert!(persistent_auto(DiscreteGpu, 4, 32, 4 * 4 * 32 * 32 * 3));
        // Too many units per invocation, or a CPU adapter.
        assert!(!persistent_auto(DiscreteGpu, 8, 200, 1024));
        assert!(!persistent_auto(Cpu, 1, 32, 1024));
    }
}
