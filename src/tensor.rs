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
    name: Arc<str>,
}

impl Tensor {
    /// An uninitialised tensor of `shape` (content undefined; every kernel writes what it reads).
    /// Errors: [`Error::Limit`] when the tensor exceeds the adapter's largest storage binding
    /// (or its element count overflows), before anything is allocated.
    pub fn empty(ctx: &Context, name: &str, shape: &[usize], dtype: DType) -> Result<Tensor> {
        let n = ctx.check_tensor(name, shape)?;
        let buf = ctx.alloc(name, 4 * n as u64)?;
        Ok(Tensor {
            buf,
            shape: shape.to_vec(),
            dtype,
            name: name.into(),
        })
    }

    /// A zero-filled f32 tensor of `shape` (the zeros are written with the next submission).
    pub fn zeros(ctx: &Context, name: &str, shape: &[usize]) -> Result<Tensor> {
        let n = ctx.check_tensor(name, shape)?;
        Self::from_f32(ctx, name, shape, &vec![0.0; n])
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
        let n = ctx.check_tensor(name, shape)?;
        if len != n {
            return Err(Error::shape(
                name,
                format!("{len} values given for shape {shape:?} ({n} elements)"),
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

    /// The name it was created with (for error messages).
    pub fn name(&self) -> &str {
        &self.name
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
            name: self.name.clone(),
        })
    }

    /// Reads the tensor back to the host (one submit and a wait).
    pub fn to_vec(&self, ctx: &Context) -> Result<Vec<f32>> {
        let bytes = crate::encoder::read_buffer(ctx, &self.buf, 0, 4 * self.numel() as u64)?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    /// Reads `len` elements starting at element `offset` back to the host.
    pub fn read_range(&self, ctx: &Context, offset: usize, len: usize) -> Result<Vec<f32>> {
        self.check_range("read", offset, len)?;
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
        self.check_range("write", offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        ctx.scoped(|| {
            ctx.queue
                .write_buffer(&self.buf, 4 * offset as u64, bytemuck::cast_slice(data))
        })
    }

    /// Fails, naming the tensor, unless elements `offset..offset + len` lie inside it.
    pub(crate) fn check_range(&self, what: &str, offset: usize, len: usize) -> Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.numel() => Ok(()),
            _ => Err(Error::shape(
                self.name(),
                format!(
                    "{what} of elements {offset}..{} lies outside its {} elements {:?}",
                    offset.saturating_add(len),
                    self.numel(),
                    self.shape
                ),
            )),
        }
    }

    /// True if both tensors share one buffer.
    pub fn same_buffer(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.buf, &other.buf)
    }
}

/// Product of the dimensions, saturating at `usize::MAX` (such a shape exceeds every limit and
/// is refused by [`try_numel`] and every tensor constructor).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().fold(1usize, |a, &d| a.saturating_mul(d))
}

/// Product of the dimensions, or `None` when it overflows.
pub fn try_numel(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}
