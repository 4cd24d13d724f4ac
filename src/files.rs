//! Files: the one module that writes them, and safetensors decoding.
//!
//! Every file wgrnn writes (interop outputs, checkpoints, metrics, images, JSON) goes through
//! [`write_atomic`]: the bytes go to a temporary name beside the target, are synced to disk,
//! and the temporary file is renamed over the target (then the folder is synced), so a crash
//! or a full disk never leaves a partial file where a good one was. Checkpoint folders go
//! through [`write_dir_atomic`]: `NAME.tmp/` is built and synced, the old `NAME/` is moved to
//! `NAME.old/`, `NAME.tmp/` is renamed to `NAME/`, and only then is `NAME.old/` removed; a kill
//! at any moment leaves `NAME/` or `NAME.old/` complete ([`complete_dir`] finds it).
//!
//! safetensors: [`read_safetensors`] decodes every tensor (f32, f16, bf16, f64, i32, i64) with
//! errors naming the file and the tensor; [`write_safetensors`] writes f32 tensors.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};
use crate::rnn::HostTensor;

/// `path` with `suffix` appended to its file name (`last` -> `last.tmp`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Syncs a folder, so a rename inside it survives a crash (a no-op where folders cannot be
/// opened, as on Windows).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let d = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(d)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Writes `bytes` to `path` atomically: a temporary file `.NAME.PID.tmp` beside it, synced,
/// renamed over `path`, and the folder synced. On any failure the temporary file is removed
/// and `path` is untouched; the error names `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(path, e)
    })
}

/// Replaces the folder `dir` by one that `fill` builds, atomically: `fill` writes into
/// `DIR.tmp/` (made fresh), which is synced and swapped in by renames; the previous `DIR/`
/// stays as `DIR.old/` until the swap is done. When `fill` fails, `DIR/` is untouched and
/// `DIR.tmp/` removed.
pub fn write_dir_atomic(dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = with_suffix(dir, ".tmp");
    let old = with_suffix(dir, ".old");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
    }
    std::fs::create_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    sync_dir(&tmp).map_err(|e| io_err(&tmp, e))?;
    if dir.exists() {
        // A complete DIR/ exists: keep it as DIR.old/ until the new one is in place. A DIR.old/
        // left by an earlier crash is superseded by DIR/.
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| io_err(&old, e))?;
        }
        std::fs::rename(dir, &old).map_err(|e| io_err(dir, e))?;
    }
    std::fs::rename(&tmp, dir).map_err(|e| io_err(dir, e))?;
    sync_dir(dir.parent().unwrap_or(Path::new("."))).map_err(|e| io_err(dir, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io_err(&old, e))?;
    }
    Ok(())
}

/// The complete version of a folder written by [`write_dir_atomic`]: `dir` itself, or
/// `DIR.old/` when a crash between the two renames left no `dir`; `None` when neither exists.
pub fn complete_dir(dir: &Path) -> Option<PathBuf> {
    if dir.is_dir() {
        return Some(dir.to_path_buf());
    }
    let old = with_suffix(dir, ".old");
    old.is_dir().then_some(old)
}

/// Values of one tensor read from a file: floats (f32/f16/bf16 converted to f32) or integers.
#[derive(Clone, Debug, PartialEq)]
pub enum FileData {
    /// f32, f16 or bf16 in the file.
    Float(Vec<f32>),
    /// i32 or i64 in the file.
    Int(Vec<i64>),
    /// f64 in the file (golden files; `wgrnn run` refuses it for inputs and weights).
    F64(Vec<f64>),
}

/// A tensor read from a safetensors file.
#[derive(Clone, Debug, PartialEq)]
pub struct FileTensor {
    /// Shape as stored.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub data: FileData,
}

/// The tensors and metadata of one safetensors file, in the file's order.
#[derive(Clone, Debug)]
pub struct TensorFile {
    /// The path, for messages.
    pub path: String,
    /// The `__metadata__` map.
    pub metadata: HashMap<String, String>,
    /// `(name, tensor)` pairs.
    pub tensors: Vec<(String, FileTensor)>,
}

fn format_err(path: &str, problem: impl std::fmt::Display) -> Error {
    Error::Format {
        path: path.to_string(),
        problem: problem.to_string(),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn decode(path: &str, name: &str, v: &TensorView) -> Result<FileData> {
    let b = v.data();
    Ok(match v.dtype() {
        Dtype::F32 => FileData::Float(
            b.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ),
        Dtype::F16 => FileData::Float(
            b.chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        ),
        Dtype::BF16 => FileData::Float(
            b.chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
        ),
        Dtype::F64 => FileData::F64(
            b.chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
        Dtype::I32 => FileData::Int(
            b.chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64)
                .collect(),
        ),
        Dtype::I64 => FileData::Int(
            b.chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
        d => {
            return Err(format_err(
                path,
                format!(
                    "{name}: dtype {d:?} is not supported (use f32, f16, bf16; i32/i64 for lengths)"
                ),
            ));
        }
    })
}

/// Reads every tensor of a safetensors file.
pub fn read_safetensors(path: impl AsRef<Path>) -> Result<TensorFile> {
    let p = path.as_ref().display().to_string();
    let bytes = std::fs::read(path.as_ref()).map_err(|e| Error::Io {
        path: p.clone(),
        source: e,
    })?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| format_err(&p, format!("not a valid safetensors file: {e}")))?;
    let (_, meta) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| format_err(&p, format!("not a valid safetensors file: {e}")))?;
    let mut names: Vec<(usize, String)> = meta
        .tensors()
        .iter()
        .map(|(n, info)| (info.data_offsets.0, n.clone()))
        .collect();
    names.sort();
    let mut tensors = Vec::new();
    for (_, name) in names {
        let v = st
            .tensor(&name)
            .map_err(|e| format_err(&p, format!("{name}: {e}")))?;
        let data = decode(&p, &name, &v)?;
        tensors.push((
            name,
            FileTensor {
                shape: v.shape().to_vec(),
                data,
            },
        ));
    }
    Ok(TensorFile {
        path: p,
        metadata: meta.metadata().clone().unwrap_or_default(),
        tensors,
    })
}

/// Encodes f32 tensors (and metadata) as safetensors bytes: the header lists the metadata in
/// key order and the tensors in the given order, so equal content gives equal bytes (the
/// safetensors crate writes its metadata map in hash order, which differs from run to run).
/// Errors name `path` and the tensor.
pub fn encode_safetensors(
    path: &Path,
    tensors: &[(String, HostTensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let p = path.display().to_string();
    let mut header = serde_json::Map::new();
    if let Some(m) = metadata {
        let sorted: std::collections::BTreeMap<String, String> = m.into_iter().collect();
        header.insert("__metadata__".into(), serde_json::json!(sorted));
    }
    let mut offset = 0usize;
    for (name, t) in tensors {
        if name == "__metadata__" || header.contains_key(name) {
            return Err(format_err(&p, format!("{name}: listed twice or reserved")));
        }
        if t.data.len() != crate::tensor::numel(&t.shape) {
            return Err(format_err(
                &p,
                format!("{name}: {} values for shape {:?}", t.data.len(), t.shape),
            ));
        }
        let end = offset + 4 * t.data.len();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut head = serde_json::to_vec(&header).map_err(|e| format_err(&p, e))?;
    // Pad the header with spaces so the data starts 8-byte aligned.
    head.resize(head.len().div_ceil(8) * 8, b' ');
    let mut out = Vec::with_capacity(8 + head.len() + offset);
    out.extend_from_slice(&(head.len() as u64).to_le_bytes());
    out.extend_from_slice(&head);
    for (_, t) in tensors {
        for v in &t.data {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(out)
}

/// Writes f32 tensors (and metadata) to `path` atomically ([`write_atomic`]).
pub fn write_safetensors(
    path: impl AsRef<Path>,
    tensors: &[(String, HostTensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let path = path.as_ref();
    write_atomic(path, &encode_safetensors(path, tensors, metadata)?)
}

/// Named f32 host tensors.
pub type Named = Vec<(String, HostTensor)>;

/// Reads a safetensors file whose tensors must all be f32 (checkpoints), in the file's order,
/// and its metadata.
pub fn read_f32_tensors(path: impl AsRef<Path>) -> Result<(Named, HashMap<String, String>)> {
    let f = read_safetensors(path)?;
    let mut out = Vec::new();
    for (name, t) in f.tensors {
        let FileData::Float(data) = t.data else {
            return Err(format_err(&f.path, format!("{name}: expected f32 values")));
        };
        let t = HostTensor::new(t.shape, data)
            .map_err(|e| format_err(&f.path, format!("{name}: {e}")))?;
        out.push((name, t));
    }
    Ok((out, f.metadata))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("wgrnn-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn atomic_file_replaces_and_leaves_no_temporary() {
        let d = scratch("file");
        let f = d.join("a.txt");
        write_atomic(&f, b"one").unwrap();
        write_atomic(&f, b"two").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"two");
        assert_eq!(entries(&d), ["a.txt"]);
        // A target in a missing folder fails, names the target and leaves nothing behind.
        let e = write_atomic(&d.join("no/such/b.txt"), b"x").unwrap_err();
        assert!(e.to_string().contains("b.txt"), "{e}");
        assert_eq!(entries(&d), ["a.txt"]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn atomic_folder_swaps_only_when_complete() {
        let d = scratch("dir");
        let ck = d.join("last");
        write_dir_atomic(&ck, |t| write_atomic(&t.join("x"), b"1")).unwrap();
        write_dir_atomic(&ck, |t| write_atomic(&t.join("x"), b"2")).unwrap();
        assert_eq!(std::fs::read(ck.join("x")).unwrap(), b"2");
        assert_eq!(entries(&d), ["last"]);
        // A failing fill leaves the previous folder as it was.
        let e = write_dir_atomic(&ck, |t| {
            write_atomic(&t.join("x"), b"3")?;
            Err(Error::config("interrupted"))
        });
        assert!(e.is_err());
        assert_eq!(std::fs::read(ck.join("x")).unwrap(), b"2");
        assert_eq!(entries(&d), ["last"]);
        // A crash between the two renames leaves only last.old/: complete_dir finds it.
        std::fs::rename(&ck, d.join("last.old")).unwrap();
        assert_eq!(complete_dir(&ck), Some(d.join("last.old")));
        write_dir_atomic(&ck, |t| write_atomic(&t.join("x"), b"4")).unwrap();
        assert_eq!(complete_dir(&ck), Some(ck.clone()));
        assert_eq!(entries(&d), ["last"]);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn safetensors_round_trip_and_errors() {
        let d = scratch("st");
        let f = d.join("t.safetensors");
        let t = HostTensor::new(vec![2, 3], (0..6).map(|i| i as f32).collect()).unwrap();
        let meta = HashMap::from([("k".to_string(), "v".to_string())]);
        write_safetensors(&f, &[("w".into(), t.clone())], Some(meta)).unwrap();
        let (named, meta) = read_f32_tensors(&f).unwrap();
        assert_eq!(named, vec![("w".to_string(), t)]);
        assert_eq!(meta["k"], "v");
        // Equal content, equal bytes, whatever the metadata map's hash order.
        let many: HashMap<String, String> =
            (0..20).map(|i| (format!("k{i}"), i.to_string())).collect();
        let named = [(
            "w".to_string(),
            HostTensor::new(vec![1], vec![1.5]).unwrap(),
        )];
        let one = encode_safetensors(&f, &named, Some(many.clone())).unwrap();
        let mut pairs: Vec<(String, String)> = many.into_iter().collect();
        pairs.reverse();
        let shuffled: HashMap<String, String> = pairs.into_iter().collect();
        assert_eq!(one, encode_safetensors(&f, &named, Some(shuffled)).unwrap());
        std::fs::write(&f, b"not safetensors").unwrap();
        let e = read_f32_tensors(&f).unwrap_err();
        assert!(matches!(e, Error::Format { .. }) && e.to_string().contains("t.safetensors"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
