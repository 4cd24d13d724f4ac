//! Kernel configurations chosen by measurement, per adapter and shape class.
//!
//! A [`KernelConfig`] is every choice that changes which kernels a call runs (variant, GEMM
//! kernel, split-K of the step product, schedules). The choices come, in this order of
//! precedence, from: the environment (`WGRNN_KERNELS`, `WGRNN_GEMM`, `WGRNN_STEP_SPLIT`,
//! `WGRNN_WAVEFRONT`, `WGRNN_NARROW_BATCH`, `WGRNN_PERSISTENT`, `WGRNN_CPU_BLOCKS`,
//! `WGRNN_CPU_SUBGROUPS`), the local tuning cache that `wgrnn tune` writes (read only when a
//! caller asks, [`Context::load_tune_cache`]; the CLI does unless `WGRNN_TUNE_CACHE=off`), the
//! shipped defaults (`src/tune_defaults.json`, adapters already measured), and the built-in
//! rules by adapter type. The library never reads the local cache by itself, so tests run on the
//! shipped defaults.
//!
//! The cache is keyed by adapter name, driver, driver version, backend and wgrnn version: an
//! entry written by another driver or release is ignored. Within an entry, a configuration per
//! [`shape_class`] (hidden size and batch bucket). A checkpoint records the configuration its
//! run used (`models::checkpoint::kernel_config`) and `--resume` reuses it, so a run stays
//! deterministic per adapter and configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bench::{BenchOptions, Pass, Shape, run_bench};
use crate::context::{Context, KernelVariant, Persistent};
use crate::error::{Error, Result};

/// The most K slices a step's recurrent product is split into.
pub const MAX_STEP_SPLIT: usize = 16;

/// Relative gain a candidate must show over the current choice to replace it: timings of one
/// configuration vary by a few percent from run to run, so smaller gains are noise.
pub const MIN_GAIN: f64 = 0.03;

const SHIPPED: &str = include_str!("tune_defaults.json");

/// Every kernel and schedule choice of a context (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelConfig {
    /// Tiled (GPUs) or simple (CPU drivers) kernels.
    pub variant: KernelVariant,
    /// Large GEMMs of the tiled variant on `matmul_micro` instead of `matmul_large`.
    pub gemm_micro: bool,
    /// K slices of a step's recurrent product (1: the fused step kernel).
    pub step_split: usize,
    /// Wavefront over layers for unidirectional stacks.
    pub wavefront: bool,
    /// Largest batch run by the matrix-vector step kernels (0: off).
    pub narrow_batch: usize,
    /// Single-workgroup policy.
    pub persistent: Persistent,
    /// Register-blocked kernels of the simple variant.
    pub cpu_blocks: bool,
    /// Subgroup-shared loads in the simple variant's register-blocked kernels, where the
    /// adapter allows them (absent from files written before it existed: on).
    #[serde(default = "default_true")]
    pub cpu_subgroups: bool,
    /// Workgroups a dispatch should have to fill the device.
    pub target_workgroups: usize,
}

fn default_true() -> bool {
    true
}

/// The shape class of a stack with `hidden` units run on `batch` rows: tuned choices are per
/// class. Buckets: H <= 128, <= 512, larger; B <= 4 (matrix-vector steps), <= 32, larger.
pub fn shape_class(hidden: usize, batch: usize) -> String {
    let h = match hidden {
        0..=128 => "h<=128",
        129..=512 => "h<=512",
        _ => "h>512",
    };
    let b = match batch {
        0..=4 => "b<=4",
        5..=32 => "b<=32",
        _ => "b>32",
    };
    format!("{h},{b}")
}

/// What identifies an adapter's measurements: a cache entry applies only to the same adapter,
/// driver, backend and wgrnn version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdapterKey {
    /// The adapter's name.
    pub adapter: String,
    /// The driver's name.
    pub driver: String,
    /// The driver's version string.
    pub driver_info: String,
    /// The backend (`vulkan`, ...).
    pub backend: String,
    /// The wgrnn version that measured.
    pub wgrnn: String,
}

impl AdapterKey {
    /// The key of `info` with this build's version.
    pub fn of(info: &wgpu::AdapterInfo) -> Self {
        AdapterKey {
            adapter: info.name.clone(),
            driver: info.driver.clone(),
            driver_info: info.driver_info.clone(),
            backend: format!("{:?}", info.backend).to_lowercase(),
            wgrnn: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// One class's tuned choice and what it measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tuned {
    /// The chosen configuration.
    pub config: KernelConfig,
    /// Summed median GPU (or wall) milliseconds of the class's shapes and passes: with the
    /// starting configuration, and with the chosen one.
    pub baseline_ms: f64,
    /// See `baseline_ms`.
    pub tuned_ms: f64,
    /// The shapes that were timed (labels).
    pub shapes: Vec<String>,
}

/// One adapter's entry of the local cache.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// Whose measurements.
    pub key: AdapterKey,
    /// By [`shape_class`].
    pub classes: BTreeMap<String, Tuned>,
}

/// The local cache file (`format: "wgrnn-tune"`), one entry per adapter key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CacheFile {
    /// `"wgrnn-tune"`.
    pub format: String,
    /// Entries, one per adapter key.
    pub entries: Vec<CacheEntry>,
}

#[derive(Clone, Debug, Deserialize)]
struct ShippedFile {
    adapters: Vec<ShippedAdapter>,
}

#[derive(Clone, Debug, Deserialize)]
struct ShippedAdapter {
    /// Case-insensitive substring of the adapter's name.
    adapter_contains: String,
    /// Whole-adapter configuration (every class).
    default: Option<KernelConfig>,
    #[serde(default)]
    classes: BTreeMap<String, KernelConfig>,
}

/// The tables a context resolves classes with.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tables {
    shipped: Option<ShippedAdapter>,
    cache: Option<BTreeMap<String, KernelConfig>>,
    /// The context's configuration when it was made (shipped default and environment): what
    /// a class without a tuned entry runs.
    pub(crate) base: Option<KernelConfig>,
}

impl Tables {
    /// The shipped entry for `info`'s adapter (none when it was never measured).
    pub(crate) fn shipped(info: &wgpu::AdapterInfo) -> Self {
        let name = info.name.to_lowercase();
        let shipped = shipped_file().ok().and_then(|f| {
            f.adapters
                .into_iter()
                .find(|a| name.contains(&a.adapter_contains.to_lowercase()))
        });
        Tables {
            shipped,
            cache: None,
            base: None,
        }
    }

    /// The adapter-wide shipped configuration, if any.
    pub(crate) fn shipped_default(&self) -> Option<&KernelConfig> {
        self.shipped.as_ref().and_then(|s| s.default.as_ref())
    }

    /// The configuration for `class` and where it came from.
    fn lookup(&self, class: &str) -> Option<(KernelConfig, Source)> {
        if let Some(c) = self.cache.as_ref().and_then(|c| c.get(class)) {
            return Some((c.clone(), Source::Cache));
        }
        let s = self.shipped.as_ref()?;
        s.classes
            .get(class)
            .or(s.default.as_ref())
            .map(|c| (c.clone(), Source::Shipped))
    }
}

fn shipped_file() -> Result<ShippedFile> {
    serde_json::from_str(SHIPPED).map_err(|e| Error::config(format!("src/tune_defaults.json: {e}")))
}

/// Where a context's configuration for a class came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The local cache of `wgrnn tune`.
    Cache,
    /// The shipped defaults.
    Shipped,
    /// The built-in rules by adapter type (the adapter was never measured).
    BuiltIn,
}

impl Source {
    /// `cache`, `shipped` or `built-in`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Cache => "cache",
            Source::Shipped => "shipped",
            Source::BuiltIn => "built-in",
        }
    }
}

/// The local cache's path: `WGRNN_TUNE_CACHE` (a path; `off` or `0` disables the cache), else
/// `$XDG_CACHE_HOME/wgrnn/tune.json`, else `~/.cache/wgrnn/tune.json`. `None` when disabled or
/// no home is known.
pub fn cache_path() -> Option<PathBuf> {
    match std::env::var("WGRNN_TUNE_CACHE").as_deref() {
        Ok("off" | "0" | "false") => return None,
        Ok(p) if !p.is_empty() => return Some(PathBuf::from(p)),
        _ => {}
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("wgrnn").join("tune.json"))
}

/// Reads a cache file; a missing file is an empty cache, a malformed one an error naming it.
pub fn read_cache(path: &Path) -> Result<CacheFile> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(CacheFile {
                format: "wgrnn-tune".into(),
                entries: Vec::new(),
            });
        }
        Err(e) => {
            return Err(Error::Io {
                path: path.display().to_string(),
                source: e,
            });
        }
    };
    let f: CacheFile = serde_json::from_str(&text).map_err(|e| {
        Error::config(format!(
            "{}: not a wgrnn tuning cache ({e}); delete it or run `wgrnn tune` again",
            path.display()
        ))
    })?;
    if f.format != "wgrnn-tune" {
        return Err(Error::config(format!(
            "{}: format {:?} is not \"wgrnn-tune\"",
            path.display(),
            f.format
        )));
    }
    Ok(f)
}

/// Replaces (or adds) `entry` in the cache at `path`, written atomically.
pub fn write_cache(path: &Path, entry: CacheEntry) -> Result<()> {
    let mut f = read_cache(path)?;
    f.entries.retain(|e| e.key != entry.key);
    f.entries.push(entry);
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
    }
    let text = serde_json::to_string_pretty(&f)
        .map_err(|e| Error::config(format!("{}: {e}", path.display())))?;
    crate::files::write_atomic(path, text.as_bytes())
}

/// Whether the environment variable `name` is set (non-empty): it then forces its field.
fn env_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty())
}

impl Context {
    /// Every kernel and schedule choice in force.
    pub fn kernel_config(&self) -> KernelConfig {
        KernelConfig {
            variant: self.variant(),
            gemm_micro: self.gemm_micro(),
            step_split: self.step_split(),
            wavefront: self.wavefront(),
            narrow_batch: self.narrow_batch(),
            persistent: self.persistent(),
            cpu_blocks: self.cpu_blocks(),
            cpu_subgroups: self.cpu_subgroups(),
            target_workgroups: self.target_workgroups(),
        }
    }

    /// Puts `cfg` in force. With `keep_env`, fields whose environment variable is set keep
    /// their value (the environment outranks tuned choices); without, `cfg` is taken whole (a
    /// resumed run's recorded configuration).
    pub fn apply_kernel_config(&self, cfg: &KernelConfig, keep_env: bool) {
        let take = |var: &str| !keep_env || !env_set(var);
        if take("WGRNN_KERNELS") && !(keep_env && self.variant_forced) {
            self.set_variant(cfg.variant);
        }
        if take("WGRNN_GEMM") {
            self.set_gemm_micro(cfg.gemm_micro);
        }
        if take("WGRNN_STEP_SPLIT") {
            self.set_step_split(cfg.step_split);
        }
        if take("WGRNN_WAVEFRONT") {
            self.set_wavefront(cfg.wavefront);
        }
        if take("WGRNN_NARROW_BATCH") {
            self.set_narrow_batch(cfg.narrow_batch);
        }
        if take("WGRNN_PERSISTENT") {
            self.set_persistent(cfg.persistent);
        }
        if take("WGRNN_CPU_BLOCKS") {
            self.set_cpu_blocks(cfg.cpu_blocks);
        }
        if take("WGRNN_CPU_SUBGROUPS") {
            self.set_cpu_subgroups(cfg.cpu_subgroups);
        }
        self.set_target_workgroups(cfg.target_workgroups);
    }

    /// Reads the local tuning cache ([`cache_path`]) so that [`use_tuned`](Self::use_tuned)
    /// prefers its choices for this adapter. Returns the path when an entry for this adapter,
    /// driver and version was found. Errors: a malformed cache file.
    pub fn load_tune_cache(&self) -> Result<Option<PathBuf>> {
        let Some(path) = cache_path() else {
            return Ok(None);
        };
        let key = AdapterKey::of(self.adapter_info());
        let file = read_cache(&path)?;
        let Some(entry) = file.entries.into_iter().find(|e| e.key == key) else {
            return Ok(None);
        };
        let classes = entry
            .classes
            .into_iter()
            .map(|(k, t)| (k, t.config))
            .collect();
        if let Ok(mut t) = self.tune.lock() {
            t.cache = Some(classes);
        }
        Ok(Some(path))
    }

    /// Puts in force the configuration for a stack of `hidden` units on `batch` rows: the
    /// local cache's (once loaded), else the shipped default's, else the context's starting
    /// configuration (built-in rules); environment overrides stay. Returns where the choice
    /// came from.
    pub fn use_tuned(&self, hidden: usize, batch: usize) -> Source {
        let class = shape_class(hidden, batch);
        let (found, base) = match self.tune.lock() {
            Ok(t) => (t.lookup(&class), t.base.clone()),
            Err(_) => (None, None),
        };
        match (found, base) {
            (Some((cfg, src)), _) => {
                self.apply_kernel_config(&cfg, true);
                src
            }
            (None, Some(base)) => {
                self.apply_kernel_config(&base, true);
                Source::BuiltIn
            }
            (None, None) => Source::BuiltIn,
        }
    }
}

/// Options of [`tune`].
#[derive(Clone, Debug)]
pub struct TuneOptions {
    /// Timed runs per candidate and pass after one warm-up.
    pub reps: usize,
    /// Passes timed per shape (summed).
    pub passes: Vec<Pass>,
    /// Cap on T while tuning (the per-step choices do not depend on T; 0: no cap).
    pub max_seq: usize,
}

/// One candidate and its time.
#[derive(Clone, Debug)]
pub struct Trial {
    /// Which knob and value, e.g. `gemm_micro=true`.
    pub change: String,
    /// Summed median milliseconds (infinite when the candidate failed to run).
    pub ms: f64,
    /// Kept as the new choice.
    pub kept: bool,
}

/// One class's outcome.
#[derive(Clone, Debug)]
pub struct ClassOutcome {
    /// [`shape_class`].
    pub class: String,
    /// The choice and its times.
    pub tuned: Tuned,
    /// Every candidate tried, in order.
    pub trials: Vec<Trial>,
}

/// The candidate values of each knob for `start`'s variant.
fn knobs(start: &KernelConfig) -> Vec<(&'static str, Vec<KernelConfigEdit>)> {
    use KernelConfigEdit::*;
    // Tile sizes follow the workgroups a grid should have (the GEMM's 64 or 128 tiles, the
    // step tiles' rows per invocation): half and twice the adapter-type guess.
    let t = start.target_workgroups.max(2);
    match start.variant {
        KernelVariant::Tiled => vec![
            ("gemm_micro", vec![GemmMicro(false), GemmMicro(true)]),
            (
                "target_workgroups",
                vec![Target(t), Target(t / 2), Target(2 * t)],
            ),
            (
                "step_split",
                vec![StepSplit(1), StepSplit(2), StepSplit(4), StepSplit(8)],
            ),
            ("wavefront", vec![Wavefront(true), Wavefront(false)]),
            ("narrow_batch", vec![Narrow(4), Narrow(0)]),
            (
                "persistent",
                vec![Persist(Persistent::Auto), Persist(Persistent::Never)],
            ),
        ],
        KernelVariant::Simple => vec![
            ("cpu_blocks", vec![CpuBlocks(true), CpuBlocks(false)]),
            (
                "cpu_subgroups",
                vec![CpuSubgroups(true), CpuSubgroups(false)],
            ),
            ("wavefront", vec![Wavefront(false), Wavefront(true)]),
        ],
    }
}

/// One knob set to one value.
#[derive(Clone, Copy, Debug)]
enum KernelConfigEdit {
    GemmMicro(bool),
    StepSplit(usize),
    Wavefront(bool),
    Narrow(usize),
    Persist(Persistent),
    CpuBlocks(bool),
    CpuSubgroups(bool),
    Target(usize),
}

impl KernelConfigEdit {
    fn apply(self, c: &KernelConfig) -> KernelConfig {
        let mut c = c.clone();
        match self {
            Self::GemmMicro(v) => c.gemm_micro = v,
            Self::StepSplit(v) => c.step_split = v,
            Self::Wavefront(v) => c.wavefront = v,
            Self::Narrow(v) => c.narrow_batch = v,
            Self::Persist(v) => c.persistent = v,
            Self::CpuBlocks(v) => c.cpu_blocks = v,
            Self::CpuSubgroups(v) => c.cpu_subgroups = v,
            Self::Target(v) => c.target_workgroups = v,
        }
        c
    }

    fn describe(self) -> String {
        match self {
            Self::GemmMicro(v) => format!("gemm_micro={v}"),
            Self::StepSplit(v) => format!("step_split={v}"),
            Self::Wavefront(v) => format!("wavefront={v}"),
            Self::Narrow(v) => format!("narrow_batch={v}"),
            Self::Persist(v) => format!("persistent={}", format!("{v:?}").to_lowercase()),
            Self::CpuBlocks(v) => format!("cpu_blocks={v}"),
            Self::CpuSubgroups(v) => format!("cpu_subgroups={v}"),
            Self::Target(v) => format!("target_workgroups={v}"),
        }
    }
}

/// Summed median time of `shapes` x `passes` under `cfg`.
fn cost(ctx: &Context, cfg: &KernelConfig, shapes: &[Shape], opts: &TuneOptions) -> Result<f64> {
    ctx.apply_kernel_config(cfg, false);
    let mut total = 0.0;
    for s in shapes {
        for &pass in &opts.passes {
            let r = run_bench(ctx, s, pass, BenchOptions::new(1, opts.reps.max(1)))?;
            total += r.time_ms().0;
        }
    }
    Ok(total)
}

/// Times candidate configurations for every shape class among `shapes` on `ctx`'s adapter and
/// returns the fastest per class (coordinate descent: each knob in turn, its values tried with
/// the others fixed, a value kept when it is at least [`MIN_GAIN`] faster). Starts from the
/// shipped (or built-in) configuration of each class, never from the local cache; restores the
/// context's configuration afterwards. `progress` hears one line per trial.
pub fn tune(
    ctx: &Context,
    shapes: &[Shape],
    opts: &TuneOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<ClassOutcome>> {
    let saved = ctx.kernel_config();
    let out = tune_classes(ctx, shapes, opts, progress);
    ctx.apply_kernel_config(&saved, false);
    out
}

fn tune_classes(
    ctx: &Context,
    shapes: &[Shape],
    opts: &TuneOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<ClassOutcome>> {
    let mut by_class: BTreeMap<String, Vec<Shape>> = BTreeMap::new();
    for s in shapes {
        let mut s = s.clone();
        if opts.max_seq > 0 {
            s.seq = s.seq.min(opts.max_seq);
        }
        by_class
            .entry(shape_class(s.hidden, s.batch))
            .or_default()
            .push(s);
    }
    let tables = ctx.tune.lock().map(|t| t.clone()).unwrap_or_default();
    let shipped = Tables {
        cache: None,
        ..tables
    };
    let builtin = shipped.base.clone().unwrap_or_else(|| ctx.kernel_config());
    let mut out = Vec::new();
    for (class, group) in by_class {
        let start = shipped
            .lookup(&class)
            .map(|(c, _)| c)
            .unwrap_or_else(|| builtin.clone());
        let baseline = cost(ctx, &start, &group, opts)?;
        progress(&format!("{class}: start {baseline:.3} ms"));
        let (mut best, mut best_ms) = (start, baseline);
        let mut trials = Vec::new();
        for (_, values) in knobs(&best) {
            for edit in values {
                let cand = edit.apply(&best);
                if cand == best {
                    continue;
                }
                // A candidate this adapter cannot run (a pipeline it refuses, a limit) loses;
                // the search goes on.
                let ms = match cost(ctx, &cand, &group, opts) {
                    Ok(ms) => ms,
                    Err(e) => {
                        progress(&format!("{class}: {} failed: {e}", edit.describe()));
                        f64::INFINITY
                    }
                };
                let kept = ms < best_ms * (1.0 - MIN_GAIN);
                progress(&format!(
                    "{class}: {} {ms:.3} ms{}",
                    edit.describe(),
                    if kept { " (kept)" } else { "" }
                ));
                trials.push(Trial {
                    change: edit.describe(),
                    ms,
                    kept,
                });
                if kept {
                    best = cand;
                    best_ms = ms;
                }
            }
        }
        out.push(ClassOutcome {
            class,
            tuned: Tuned {
                config: best,
                baseline_ms: baseline,
                tuned_ms: best_ms,
                shapes: group.iter().map(|s| s.label.clone()).collect(),
            },
            trials,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_defaults_parse() {
        let f = shipped_file().expect("src/tune_defaults.json parses");
        assert!(f.adapters.iter().any(|a| a.adapter_contains == "llvmpipe"));
    }

    #[test]
    fn classes_bucket_hidden_and_batch() {
        assert_eq!(shape_class(128, 4), "h<=128,b<=4");
        assert_eq!(shape_class(129, 5), "h<=512,b<=32");
        assert_eq!(shape_class(1024, 64), "h>512,b>32");
    }

    #[test]
    fn cache_round_trips_and_rejects_garbage() {
        let dir = std::env::temp_dir().join(format!("wgrnn-tune-{}", std::process::id()));
        let path = dir.join("tune.json");
        let cfg = KernelConfig {
            variant: KernelVariant::Tiled,
            gemm_micro: true,
            step_split: 4,
            wavefront: false,
            narrow_batch: 0,
            persistent: Persistent::Never,
            cpu_blocks: true,
            cpu_subgroups: false,
            target_workgroups: 132,
        };
        let key = AdapterKey {
            adapter: "x".into(),
            driver: "d".into(),
            driver_info: "1".into(),
            backend: "vulkan".into(),
            wgrnn: "0".into(),
        };
        let tuned = Tuned {
            config: cfg.clone(),
            baseline_ms: 2.0,
            tuned_ms: 1.0,
            shapes: vec!["S3".into()],
        };
        let entry = CacheEntry {
            key: key.clone(),
            classes: [("h>512,b>32".to_string(), tuned)].into_iter().collect(),
        };
        write_cache(&path, entry.clone()).unwrap();
        write_cache(&path, entry.clone()).unwrap(); // replaces, does not duplicate
        let f = read_cache(&path).unwrap();
        assert_eq!(f.entries, vec![entry]);
        std::fs::write(&path, "{not json").unwrap();
        let e = read_cache(&path).unwrap_err().to_string();
        assert!(e.contains("tune.json"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
