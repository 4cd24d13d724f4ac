//! safetensors files of named f32 tensors: written to a temporary file beside the target and
//! renamed over it, so a failure never leaves a partial file; read back with every error naming
//! the file and the tensor.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::{Error, Result};
use crate::rnn::HostTensor;

fn format_err(path: &Path, problem: impl std::fmt::Display) -> Error {
    Error::Format {
        path: path.display().to_string(),
        problem: problem.to_string(),
    }
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `tensors` (f32, little-endian) and the string `metadata` to `path` atomically.
pub(crate) fn write(
    path: &Path,
    tensors: &[(String, HostTensor)],
    metadata: HashMap<String, String>,
) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, t)| t.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, t), b)| {
            TensorView::new(Dtype::F32, t.shape.clone(), b)
                .map(|v| (name.as_str(), v))
                .map_err(|e| format_err(path, format!("{name}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let buf = safetensors::serialize(views, Some(metadata)).map_err(|e| format_err(path, e))?;
    let tmp = path.with_file_name(format!(
        "{}.{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&buf)?;
        f.sync_all()
    })();
    if let Err(e) = written.and_then(|_| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path, e));
    }
    Ok(())
}

/// Named host tensors.
pub(crate) type Named = Vec<(String, HostTensor)>;

/// Reads every tensor of `path` (all must be f32; in no particular order) and the metadata.
pub(crate) fn read(path: &Path) -> Result<(Named, HashMap<String, String>)> {
    let buf = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let (_, meta) = SafeTensors::read_metadata(&buf).map_err(|e| format_err(path, e))?;
    let st = SafeTensors::deserialize(&buf).map_err(|e| format_err(path, e))?;
    let mut out = Vec::new();
    for (name, view) in st.iter() {
        if view.dtype() != Dtype::F32 {
            return Err(format_err(
                path,
                format!("{name}: dtype {:?}, expected F32", view.dtype()),
            ));
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let t = HostTensor::new(view.shape().to_vec(), data)
            .map_err(|e| format_err(path, format!("{name}: {e}")))?;
        out.push((name.to_string(), t));
    }
    Ok((out, meta.metadata().clone().unwrap_or_default()))
}
