//! Device tensors: a storage buffer plus a shape. Row-major, time-major for sequences (`[T, B, ...]`).
//! Elements are 32-bit: `f32` for values, `u32` for ids and lengths.

use std::sync::Arc;

use crate::context::Context;
use crate::error::{Error, Result};

/// The element type of a [`Tensor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// 32-bit float.
    F32,
    /// 32-bit unsigned integer (token ids, lengths).
    U32,
}

/// A tensor on the device. Cloning is cheap and shares the buffer.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub(crate) buf: Arc<wgpu::Buffer>,
    shape: Vec<usize>,
    dtype: DType,
}

impl Tensor {
    /// An uninitialised tensor of `shape` (content undefined; every kernel writes what it reads).
    pub fn empty(ctx: &Context, name: &str, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let n = numel(shape);
        let buf = ctx.alloc(name, 4 * n as u64)?;
        Ok(Tensor {
            buf,
            shape: shape.to_vec(),
            dtype,
        })
    }

    /// A zero-filled f32 tensor of `shape`.
    pub fn zeros(ctx: &Context, name: &str, shape: &[usize]) -> Result<Tensor> {
        Self::from_f32(ctx, name, shape, &vec![0.0; numel(shape)])
    }

    /// Uploads `data` (row-major, `numel(shape)` values) as an f32 tensor.
    pub fn from_f32(ctx: &Context, name: &str, shape: &[usize], data: &[f32]) -> Result<Tensor> {
        Self::upload(
            ctx,
            name,
            shape,
            DType::F32,
            bytemuck::cast_slice(data),
            data.len(),
        )
    }

    /// Uploads `data` as a u32 tensor (ids, lengths).
    pub fn from_u32(ctx: &Context, name: &str, shape: &[usize], data: &[u32]) -> Result<Tensor> {
        Self::upload(
            ctx,
            name,
            shape,
            DType::U32,
            bytemuck::cast_slice(data),
            data.len(),
        )
    }

    fn upload(
        ctx: &Context,
        name: &str,
        shape: &[usize],
        dtype: DType,
        bytes: &[u8],
        len: usize,
    ) -> Result<Tensor> {
        if len != numel(shape) {
            return Err(Error::shape(
                name,
                format!(
                    "{len} values given for shape {shape:?} ({} elements)",
                    numel(shape)
                ),
            ));
        }
        let t = Tensor::empty(ctx, name, shape, dtype)?;
        if !bytes.is_empty() {
            ctx.scoped(|| ctx.queue.write_buffer(&t.buf, 0, bytes))?;
        }
        Ok(t)
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        numel(&self.shape)
    }

    /// The same buffer with another shape of equal element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::shape(
                "reshape",
                format!("cannot view {:?} as {shape:?}", self.shape),
            ));
        }
        Ok(Tensor {
            buf: self.buf.clone(),
            shape: shape.to_vec(),
            dtype: self.dtype,
        })
    }

    /// Reads the tensor back to the host (one submit and a wait).
    pub fn to_vec(&self, ctx: &Context) -> Result<Vec<f32>> {
        let bytes = crate::encoder::read_buffer(ctx, &self.buf, 0, 4 * self.numel() as u64)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    /// Reads `len` elements starting at element `offset` back to the host.
    pub fn read_range(&self, ctx: &Context, offset: usize, len: usize) -> Result<Vec<f32>> {
        if offset + len > self.numel() {
            return Err(Error::shape(
                "read_range",
                format!(
                    "range {offset}..{} beyond {} elements",
                    offset + len,
                    self.numel()
                ),
            ));
        }
        let bytes = crate::encoder::read_buffer(ctx, &self.buf, 4 * offset as u64, 4 * len as u64)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    /// Reads a u32 tensor back to the host.
    pub fn to_vec_u32(&self, ctx: &Context) -> Result<Vec<u32>> {
        let bytes = crate::encoder::read_buffer(ctx, &self.buf, 0, 4 * self.numel() as u64)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    /// Overwrites elements `offset..offset+data.len()` from the host.
    pub fn write_range(&self, ctx: &Context, offset: usize, data: &[f32]) -> Result<()> {
        if offset + data.len() > self.numel() {
            return Err(Error::shape(
                "write_range",
                format!(
                    "range {offset}..{} beyond {} elements",
                    offset + data.len(),
                    self.numel()
                ),
            ));
        }
        if data.is_empty() {
            return Ok(());
        }
        ctx.scoped(|| {
            ctx.queue
                .write_buffer(&self.buf, 4 * offset as u64, bytemuck::cast_slice(data))
        })
    }

    /// True if both tensors share one buffer.
    pub fn same_buffer(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf)
    }
}

/// Product of the dimensions.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}
