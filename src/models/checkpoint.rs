//! The checkpoint folder every model family writes (`../shared/notes/model-commands.md`): one
//! interop-format file per RNN stack, `model.safetensors` for the other tensors under
//! PyTorch-style names, `optimizer.safetensors`, and `config.json` with `"kind"`,
//! `"format_version"`, the hyperparameters, the vocabulary, the step, the RNG state and the
//! kernel configuration. Folders are written by [`crate::files::write_dir_atomic`]; a training
//! output `DIR` holds `last/` and `best/`.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::context::{Context, KernelVariant, Persistent};
use crate::error::{Error, Result};
use crate::files::{
    complete_dir, read_f32_tensors, write_atomic, write_dir_atomic, write_safetensors,
};
use crate::interop::{load_weights, save_weights};
use crate::nn::{Optimizer, ParamStore};
use crate::rnn::{HostTensor, Rnn, RnnParams};
use crate::tensor::Tensor;

/// The `"format_version"` this build writes and reads.
pub const FORMAT_VERSION: u64 = 1;

fn format_err(path: &Path, problem: impl std::fmt::Display) -> Error {
    Error::Format {
        path: path.display().to_string(),
        problem: problem.to_string(),
    }
}

/// Writes `value` as pretty JSON to `path` atomically.
pub fn write_json(path: &Path, value: &Value) -> Result<()> {
    let mut s = serde_json::to_string_pretty(value).map_err(|e| format_err(path, e))?;
    s.push('\n');
    write_atomic(path, s.as_bytes())
}

/// Reads `path` as JSON.
pub fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        source: e,
    })?;
    serde_json::from_str(&text).map_err(|e| format_err(path, format!("line {}: {e}", e.line())))
}

/// The checkpoint folder `--checkpoint DIR` names: a training output's `best/` (or the
/// `best.old/` a crash left), else `DIR` itself when it holds `config.json`.
pub fn resolve(dir: &Path) -> Result<PathBuf> {
    if let Some(best) = complete_dir(&dir.join("best")) {
        return Ok(best);
    }
    if dir.join("config.json").is_file() {
        return Ok(dir.to_path_buf());
    }
    Err(format_err(
        dir,
        "not a checkpoint: holds neither best/ nor config.json",
    ))
}

/// Reads `DIR/config.json` of a checkpoint folder and checks its `"kind"` and
/// `"format_version"`.
pub fn read_config(dir: &Path, kind: &str) -> Result<Value> {
    let path = dir.join("config.json");
    let v = read_json(&path)?;
    match v.get("kind").and_then(Value::as_str) {
        Some(k) if k == kind => {}
        Some(k) => {
            return Err(format_err(
                &path,
                format!("a {k:?} checkpoint, expected {kind:?}"),
            ));
        }
        None => return Err(format_err(&path, "no \"kind\"")),
    }
    match v.get("format_version").and_then(Value::as_u64) {
        Some(FORMAT_VERSION) => Ok(v),
        other => Err(format_err(
            &path,
            format!("format_version {other:?}, this build reads {FORMAT_VERSION}"),
        )),
    }
}

/// Checks `--out DIR` for a new run (it must not exist or be empty) or, with `resume`, finds
/// the checkpoint to continue from (`DIR/last/`, or `DIR/last.old/` a crash left).
pub fn prepare_out(dir: &Path, resume: bool) -> Result<Option<PathBuf>> {
    let empty = match std::fs::read_dir(dir) {
        Ok(mut it) => it.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            return Err(Error::Io {
                path: dir.display().to_string(),
                source: e,
            });
        }
    };
    if resume {
        return complete_dir(&dir.join("last"))
            .map(Some)
            .ok_or_else(|| format_err(dir, "--resume: no checkpoint here (last/ is missing)"));
    }
    if !empty {
        return Err(format_err(
            dir,
            "--out exists and is not empty (give --resume to continue the run in it)",
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        path: dir.display().to_string(),
        source: e,
    })?;
    Ok(None)
}

/// The kernel configuration of `ctx` as recorded in `config.json` (`"kernels"`): the adapter,
/// whether shader modules were checked, and every field of [`crate::tune::KernelConfig`].
pub fn kernel_config(ctx: &Context) -> Value {
    let mut v = json!({
        "adapter": ctx.adapter_name(),
        "shader_checks": ctx.shader_checks(),
        "precision": ctx.precision(),
    });
    if let (Some(m), Ok(Value::Object(cfg))) =
        (v.as_object_mut(), serde_json::to_value(ctx.kernel_config()))
    {
        m.extend(cfg);
    }
    v
}

/// A context with the kernel configuration recorded in `config` (`"kernels"`), so a resumed
/// run computes with the same kernels and schedules. A fresh run (no config) gets a new
/// context that reads the local tuning cache (`wgrnn tune`; `WGRNN_TUNE_CACHE=off` skips it);
/// the family applies its shape class's choice before the first step
/// ([`Context::use_tuned`]).
pub fn context_for(config: Option<&Value>) -> Result<Context> {
    let Some(k) = config.and_then(|c| c.get("kernels")) else {
        let ctx = Context::new()?;
        ctx.load_tune_cache()?;
        return Ok(ctx);
    };
    let ctx = match k.get("variant").and_then(Value::as_str) {
        Some("tiled") => Context::with_variant(KernelVariant::Tiled)?,
        Some("simple") => Context::with_variant(KernelVariant::Simple)?,
        _ => Context::new()?,
    };
    // The GEMMs' precision is fixed per context (WGRNN_PRECISION): a resumed run must use the
    // recorded one (older checkpoints are f32).
    let recorded = k.get("precision").and_then(Value::as_str).unwrap_or("f32");
    let current = ctx.precision().name();
    if recorded != current {
        return Err(Error::config(format!(
            "the checkpoint was trained with WGRNN_PRECISION={recorded}, this run has {current}: \
             set WGRNN_PRECISION={recorded} to resume it"
        )));
    }
    // Every field recorded (checkpoints since the tuner): taken whole, the environment
    // notwithstanding.
    if let Ok(cfg) = serde_json::from_value::<crate::tune::KernelConfig>(k.clone()) {
        ctx.apply_kernel_config(&cfg, false);
        return Ok(ctx);
    }
    // Older checkpoints recorded the schedule fields only.
    if let Some(w) = k.get("wavefront").and_then(Value::as_bool) {
        ctx.set_wavefront(w);
    }
    match k.get("persistent").and_then(Value::as_str) {
        Some("always") => ctx.set_persistent(Persistent::Always),
        Some("never") => ctx.set_persistent(Persistent::Never),
        Some("auto") => ctx.set_persistent(Persistent::Auto),
        _ => {}
    }
    if let Some(n) = k.get("narrow_batch").and_then(Value::as_u64) {
        ctx.set_narrow_batch(n as usize);
    }
    if let Some(n) = k.get("target_workgroups").and_then(Value::as_u64) {
        ctx.set_target_workgroups(n as usize);
    }
    Ok(ctx)
}

/// `config[key]` as a `T`, or an error naming the file and the key.
pub fn field<T: serde::de::DeserializeOwned>(config: &Value, path: &Path, key: &str) -> Result<T> {
    let v = config
        .get(key)
        .ok_or_else(|| format_err(path, format!("config.json has no {key:?}")))?;
    serde_json::from_value(v.clone())
        .map_err(|e| format_err(path, format!("config.json {key:?}: {e}")))
}

/// What [`write_folder`] writes into a checkpoint folder.
pub struct Folder<'a> {
    /// One interop-format file per RNN stack (`rnn.safetensors`, `encoder.safetensors`, ...).
    pub rnns: &'a [(&'a str, &'a Rnn)],
    /// `model.safetensors`: every other tensor under its PyTorch-style name.
    pub model: &'a [(&'a str, &'a Tensor)],
    /// `optimizer.safetensors`.
    pub optimizer: Option<(&'a Optimizer, &'a ParamStore)>,
    /// Further safetensors files (e.g. a carried state), by file name.
    pub extra: &'a [(&'a str, Vec<(String, HostTensor)>)],
    /// `config.json`.
    pub config: &'a Value,
}

/// Reads named device tensors back as host tensors.
pub fn host_tensors(ctx: &Context, named: &[(&str, &Tensor)]) -> Result<Vec<(String, HostTensor)>> {
    named
        .iter()
        .map(|(n, t)| {
            Ok((
                n.to_string(),
                HostTensor::new(t.shape().to_vec(), t.to_vec(ctx)?)?,
            ))
        })
        .collect()
}

/// Writes a checkpoint folder atomically ([`write_dir_atomic`]): everything is read back
/// from the device first, then written into `DIR.tmp/` and swapped in.
pub fn write_folder(ctx: &Context, dir: &Path, f: &Folder) -> Result<()> {
    let rnns = f
        .rnns
        .iter()
        .map(|(n, r)| Ok((*n, r.params(ctx)?)))
        .collect::<Result<Vec<_>>>()?;
    let model = host_tensors(ctx, f.model)?;
    write_dir_atomic(dir, |tmp| {
        for (name, params) in &rnns {
            save_weights(tmp.join(name), params)?;
        }
        write_safetensors(tmp.join("model.safetensors"), &model, None)?;
        if let Some((opt, store)) = f.optimizer {
            opt.save(ctx, store, tmp.join("optimizer.safetensors"))?;
        }
        for (name, tensors) in f.extra {
            write_safetensors(tmp.join(name), tensors, None)?;
        }
        write_json(&tmp.join("config.json"), f.config)
    })
}

/// Loads an interop-format file into `rnn`, checking that it holds a stack of `rnn`'s cell,
/// layers, directions and sizes (dropout is not in the file; config.json has it).
pub fn load_rnn(ctx: &Context, rnn: &Rnn, path: &Path) -> Result<()> {
    let params = load_weights(path)?;
    let want = rnn.config();
    let got = params.config();
    let describe = |c: &crate::rnn::RnnConfig| {
        format!(
            "a {} stack of {} layers, input {}, hidden {}{}",
            c.mode.torch_name(),
            c.num_layers,
            c.input_size,
            c.hidden_size,
            if c.bidirectional {
                ", bidirectional"
            } else {
                ""
            }
        )
    };
    if got.mode != want.mode
        || got.num_layers != want.num_layers
        || got.input_size != want.input_size
        || got.hidden_size != want.hidden_size
        || got.bidirectional != want.bidirectional
        || got.bias != want.bias
    {
        return Err(format_err(
            path,
            format!(
                "holds {}; config.json says {}",
                describe(got),
                describe(want)
            ),
        ));
    }
    let named = params
        .iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect();
    rnn.set_params(ctx, &RnnParams::from_named(want, named)?)
}

/// Loads `model.safetensors`-style tensors into `named` device tensors: every name present
/// with its tensor's shape and nothing else in the file (strict); errors name the file and the
/// tensor.
pub fn load_named(ctx: &Context, path: &Path, named: &[(&str, &Tensor)]) -> Result<()> {
    let (tensors, _) = read_f32_tensors(path)?;
    let names: Vec<String> = named.iter().map(|(n, _)| n.to_string()).collect();
    let shapes: Vec<Vec<usize>> = named.iter().map(|(_, t)| t.shape().to_vec()).collect();
    let got = crate::nn::match_names(path, names.iter().zip(shapes.iter()), tensors)?;
    for ((_, t), h) in named.iter().zip(got) {
        t.write_range(ctx, 0, &h.data)?;
    }
    Ok(())
}
