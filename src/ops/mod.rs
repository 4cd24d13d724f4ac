//! The public tensor vocabulary that models compose: each op a WGSL kernel with a CPU twin in
//! [`crate::reference::ops`], a `record_*` form that records into a caller's
//! [`Recorder`](crate::Recorder), and a backward that accumulates into a given gradient.
//!
//! The table with shapes, views, backwards and measured errors is `docs/OPS.md`:
//!
//! | op | forward | takes views | backward |
//! |---|---|---|---|
//! | [`record_add`], [`record_sub`], [`record_mul`] | `[..., C]` x `[..., C]` -> `[..., C]` | yes (both) | [`record_accumulate`] (add, sub), [`record_mul_backward`] |
//! | [`record_scale`] | `alpha * x` | yes | [`record_accumulate`] with `alpha` |
//! | [`record_add_bias`] | `x [..., C] + bias [C]` | yes | [`record_accumulate`] and [`record_bias_backward`] (column sums) |
//! | [`record_tanh`], [`record_sigmoid`], [`record_relu`] | elementwise | yes | [`record_tanh_backward`], [`record_sigmoid_backward`], [`record_relu_backward`] (from the output) |
//! | [`record_tanh_add`] | `tanh(a + b)` fused | yes | [`record_tanh_add_backward`] |
//! | [`record_copy`] | contiguous copy of a view | yes | [`record_accumulate`] |
//! | [`record_concat`] | last axis: `[..., C1] ++ [..., C2] ++ ...` | yes (parts) | [`split`] of the gradient (views, no copy) |
//! | [`split`] | last axis, as views (no copy) | yes | [`record_split_backward`] |
//! | [`record_bmm`] | `[N, M, K] x [N, K, P] -> [N, M, P]`, either side transposed | yes (strided rows) | [`record_bmm_backward`] |
//! | [`record_masked_softmax`] | last axis, per-row valid lengths, exactly 0 past them | yes (input) | [`record_masked_softmax_backward`] (none past the lengths) |
//! | [`record_log_softmax_backward`] | backward of [`crate::nn::record_log_softmax`] | no | (it is one) |
//! | [`record_pool_mean`], [`record_pool_max`], [`record_last_step`] | `[T, B, C]` with lengths `[B]` -> `[B, C]` | yes (input and gradient) | [`record_pool_backward`] (max: to the first arg-max step) |
//! | [`record_gather_rows`] | `x [N, C]` rows by device indices `[M]` -> `[M, C]` | yes (input) | [`record_gather_rows_backward`] (deterministic scatter-add into a whole tensor) |
//! | [`record_argmax`], [`record_topk`] | last axis, ties to the lowest index | yes | none (discrete) |
//! | [`BeamSearch`] | one beam-search step: `log p [B*K, V]` -> the 2K best continuations per sentence, finished and alive beams, state rows to gather (fairseq's rules) | no | none (discrete) |
//! | [`record_row_mean`] | `[..., k]` -> `[...]`, the mean of each row | none |
//! | [`record_csls`] | `2 sim [M, C] - rs [M] - rt [C]` (CSLS retrieval) | none |
//! | [`record_sample`] | softmax(x / temperature), optional top-k, counter-based RNG (seed, step, row) | yes | none (discrete) |
//!
//! **Views.** A [`View`] is a window of a device tensor seen as rows of its last axis: a range
//! along the first axis ([`View::narrow`]: one timestep of `[T, B, H]`, a block of rows), a
//! column range of the last axis ([`View::cols`]: one direction of a bidirectional output,
//! one part of a concatenation), or one row repeated ([`View::broadcast`]: a bias). Rows are
//! evenly spaced (`stride` elements apart) and columns contiguous, so every kernel reads a view
//! in place, without a copy. Ops that take views accept any [`AsView`] (a [`Tensor`] or a
//! [`View`]) and write fresh contiguous outputs; backward functions accumulate into the
//! gradient views they are given (which must not be broadcast).
//!
//! Every sum runs in a fixed order and nothing uses float atomics: two runs give identical bits.
//! Bad shapes, lengths and indices from the host, and k larger than the axis, are errors that
//! name the tensor.

mod beam;
mod decode;
mod elementwise;
mod matmul;
mod pool;
mod retrieval;
mod softmax;

pub use beam::{BeamSearch, DEAD, Finished, MAX_BEAM};
pub use decode::{
    Sampling, record_argmax, record_argmax_into, record_sample, record_sample_into, record_topk,
};
pub use elementwise::{
    record_accumulate, record_add, record_add_bias, record_bias_backward, record_concat,
    record_copy, record_mul, record_mul_backward, record_relu, record_relu_backward, record_scale,
    record_sigmoid, record_sigmoid_backward, record_split_backward, record_sub, record_tanh,
    record_tanh_add, record_tanh_add_backward, record_tanh_backward, split,
};
pub use matmul::{record_bmm, record_bmm_backward};
pub use pool::{
    PoolKind, record_gather_rows, record_gather_rows_backward, record_last_step,
    record_pool_backward, record_pool_max, record_pool_mean,
};
pub use retrieval::{CslsMask, record_csls, record_row_mean};
pub use softmax::{
    record_log_softmax_backward, record_masked_softmax, record_masked_softmax_backward,
};

use crate::context::Context;
use crate::error::{Error, Result};
use crate::tensor::{DType, Tensor, numel};

/// A window of a device tensor: logical `shape` (its last entry the columns), rows `stride`
/// elements apart from element `offset`, columns contiguous. See the module docs.
#[derive(Clone, Debug)]
pub struct View {
    tensor: Tensor,
    offset: usize,
    shape: Vec<usize>,
    stride: usize,
}

/// Anything an op can read as a [`View`]: a whole [`Tensor`] or a [`View`].
pub trait AsView {
    /// The view.
    fn view(&self) -> View;
}

impl AsView for Tensor {
    fn view(&self) -> View {
        let shape = match self.shape() {
            [] => vec![1],
            s => s.to_vec(),
        };
        let cols = *shape.last().unwrap_or(&1);
        View {
            tensor: self.clone(),
            offset: 0,
            shape,
            stride: cols,
        }
    }
}

impl AsView for View {
    fn view(&self) -> View {
        self.clone()
    }
}

impl View {
    /// The underlying tensor.
    pub fn tensor(&self) -> &Tensor {
        &self.tensor
    }

    /// Element offset of (row 0, column 0) in the tensor.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The logical shape; the last entry is the columns.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Elements between consecutive rows (0 for a broadcast row).
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Columns (the last axis).
    pub fn cols(&self) -> usize {
        *self.shape.last().unwrap_or(&1)
    }

    /// Rows: the product of the leading axes.
    pub fn rows(&self) -> usize {
        numel(&self.shape[..self.shape.len() - 1])
    }

    /// The view's name for errors: the tensor's.
    pub fn name(&self) -> &str {
        self.tensor.name()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.tensor.dtype()
    }

    /// True when the view is the whole tensor, laid out as the tensor is.
    pub fn is_whole(&self) -> bool {
        self.offset == 0 && self.stride == self.cols() && numel(&self.shape) == self.tensor.numel()
    }

    /// Largest element index the view touches.
    pub(crate) fn max_index(&self) -> usize {
        let rows = self.rows();
        if rows == 0 || self.cols() == 0 {
            return self.offset;
        }
        self.offset + (rows - 1) * self.stride + self.cols() - 1
    }

    fn checked(self) -> Result<View> {
        if numel(&self.shape) > 0 && self.max_index() >= self.tensor.numel() {
            return Err(Error::shape(
                self.name(),
                format!(
                    "view {:?} at offset {} (row stride {}) lies outside its {} elements",
                    self.shape,
                    self.offset,
                    self.stride,
                    self.tensor.numel()
                ),
            ));
        }
        Ok(self)
    }

    /// Elements `start..start + len` of the first axis (for a 1-D view: columns), e.g. timestep
    /// `t` of `[T, B, H]` as `narrow(t, 1)` -> `[1, B, H]`.
    pub fn narrow(&self, start: usize, len: usize) -> Result<View> {
        if self.shape.len() == 1 {
            return self.cols_range(start, len);
        }
        let n = self.shape[0];
        if start.checked_add(len).is_none_or(|e| e > n) {
            return Err(Error::shape(
                self.name(),
                format!("first-axis range {start}..{} outside 0..{n}", start + len),
            ));
        }
        let rows_per = numel(&self.shape[1..self.shape.len() - 1]);
        let mut shape = self.shape.clone();
        shape[0] = len;
        View {
            tensor: self.tensor.clone(),
            offset: self.offset + start * rows_per * self.stride,
            shape,
            stride: self.stride,
        }
        .checked()
    }

    /// Columns `start..start + len` of the last axis.
    pub fn cols_range(&self, start: usize, len: usize) -> Result<View> {
        let c = self.cols();
        if start.checked_add(len).is_none_or(|e| e > c) {
            return Err(Error::shape(
                self.name(),
                format!("column range {start}..{} outside 0..{c}", start + len),
            ));
        }
        let mut shape = self.shape.clone();
        *shape.last_mut().unwrap_or(&mut 0) = len;
        View {
            tensor: self.tensor.clone(),
            offset: self.offset + start,
            shape,
            stride: self.stride,
        }
        .checked()
    }

    /// The same rows seen with other leading axes of the same product (`[T, B, H]` as
    /// `[T*B, H]`).
    pub fn with_leading(&self, leading: &[usize]) -> Result<View> {
        if numel(leading) != self.rows() {
            return Err(Error::shape(
                self.name(),
                format!("cannot see {} rows as {leading:?}", self.rows()),
            ));
        }
        let mut shape = leading.to_vec();
        shape.push(self.cols());
        Ok(View {
            shape,
            ..self.clone()
        })
    }

    /// This view's single row repeated for every row of `leading` (a bias over `[..., C]`):
    /// stride 0, read-only.
    pub fn broadcast(&self, leading: &[usize]) -> Result<View> {
        if self.rows() != 1 {
            return Err(Error::shape(
                self.name(),
                format!(
                    "only one row can be broadcast, the view has {}",
                    self.rows()
                ),
            ));
        }
        let mut shape = leading.to_vec();
        shape.push(self.cols());
        Ok(View {
            tensor: self.tensor.clone(),
            offset: self.offset,
            shape,
            stride: 0,
        })
    }

    /// Fails unless the view is f32.
    pub(crate) fn f32(&self, what: &str) -> Result<()> {
        if self.dtype() != DType::F32 {
            return Err(Error::shape(what, format!("{} must be f32", self.name())));
        }
        Ok(())
    }

    /// Fails unless the view can be written (not a broadcast).
    pub(crate) fn writable(&self, what: &str) -> Result<()> {
        if self.stride == 0 && self.rows() > 1 {
            return Err(Error::shape(
                what,
                format!("{} is a broadcast view and cannot be written", self.name()),
            ));
        }
        self.f32(what)
    }
}

impl Tensor {
    /// The whole tensor as a [`View`].
    pub fn as_view(&self) -> View {
        AsView::view(self)
    }
}

/// Fails unless `a` and `b` have the same logical shape; names `what`.
pub(crate) fn same_shape(what: &str, a: &View, b: &View) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::shape(
            what,
            format!(
                "{} {:?} and {} {:?} differ in shape",
                a.name(),
                a.shape(),
                b.name(),
                b.shape()
            ),
        ));
    }
    Ok(())
}

/// Uploads per-sequence (or per-row-group) lengths after checking each is in `1..=max`; the
/// error names `name` and the first offending entry.
pub fn lengths(ctx: &Context, name: &str, lens: &[usize], max: usize) -> Result<Tensor> {
    if let Some((i, &l)) = lens.iter().enumerate().find(|(_, l)| **l < 1 || **l > max) {
        return Err(Error::shape(
            name,
            format!("{name}[{i}] = {l} is outside 1..={max}"),
        ));
    }
    let v: Vec<u32> = lens.iter().map(|&l| l as u32).collect();
    Tensor::from_u32(ctx, name, &[lens.len()], &v)
}

/// Uploads row indices after checking each is below `rows`; the error names `name` and the
/// first offending entry.
pub fn indices(ctx: &Context, name: &str, idx: &[u32], rows: usize) -> Result<Tensor> {
    if let Some((i, &v)) = idx.iter().enumerate().find(|(_, v)| **v as usize >= rows) {
        return Err(Error::shape(
            name,
            format!("{name}[{i}] = {v} is outside 0..{rows}"),
        ));
    }
    Tensor::from_u32(ctx, name, &[idx.len()], idx)
}

/// Fails unless `t` is a u32 tensor of `n` elements; names `what`.
pub(crate) fn check_u32(what: &str, t: &Tensor, n: usize) -> Result<()> {
    if t.dtype() != DType::U32 || t.numel() != n {
        return Err(Error::shape(
            what,
            format!("expected u32 [{n}], got {:?} {:?}", t.dtype(), t.shape()),
        ));
    }
    Ok(())
}
