//! Elementwise ops, concatenation and split along the last axis, on views (`elementwise.wgsl`;
//! CPU twins in [`crate::reference::ops`]). Forward ops write a fresh contiguous tensor of the
//! input's logical shape; backward ops accumulate into the gradient views they are given.

use super::{AsView, View, same_shape};
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::kernels::elementwise::{Binary, Unary, binary, unary};
use crate::kernels::reduce::colsum;
use crate::tensor::{DType, Tensor};

/// A fresh contiguous f32 tensor of `v`'s logical shape.
fn like(rec: &Recorder, name: &str, v: &View) -> Result<Tensor> {
    Tensor::empty(rec.ctx(), name, v.shape(), DType::F32)
}

fn map1(rec: &mut Recorder, op: Unary, x: &impl AsView, alpha: f32, name: &str) -> Result<Tensor> {
    let x = x.view();
    x.f32(name)?;
    let out = like(rec, name, &x)?;
    unary(rec, op, &x, &out.as_view(), alpha, false)?;
    Ok(out)
}

fn map2(
    rec: &mut Recorder,
    op: Binary,
    a: &impl AsView,
    b: &impl AsView,
    name: &str,
) -> Result<Tensor> {
    let (a, b) = (a.view(), b.view());
    a.f32(name)?;
    b.f32(name)?;
    same_shape(name, &a, &b)?;
    let out = like(rec, name, &a)?;
    binary(rec, op, &a, &b, &out.as_view(), 1.0, false)?;
    Ok(out)
}

/// `a + b` (same shape `[..., C]`).
pub fn record_add(rec: &mut Recorder, a: &impl AsView, b: &impl AsView) -> Result<Tensor> {
    map2(rec, Binary::Add, a, b, "add")
}

/// `a - b`.
pub fn record_sub(rec: &mut Recorder, a: &impl AsView, b: &impl AsView) -> Result<Tensor> {
    map2(rec, Binary::Sub, a, b, "sub")
}

/// `a * b` elementwise.
pub fn record_mul(rec: &mut Recorder, a: &impl AsView, b: &impl AsView) -> Result<Tensor> {
    map2(rec, Binary::Mul, a, b, "mul")
}

/// `tanh(a + b)` fused (one pass): an attention layer's `tanh(W_c [c; h])` halves, or
/// additive attention's `tanh(W q + U k)`.
pub fn record_tanh_add(rec: &mut Recorder, a: &impl AsView, b: &impl AsView) -> Result<Tensor> {
    map2(rec, Binary::TanhAdd, a, b, "tanh_add")
}

/// `alpha * x`.
pub fn record_scale(rec: &mut Recorder, x: &impl AsView, alpha: f32) -> Result<Tensor> {
    map1(rec, Unary::Copy, x, alpha, "scale")
}

/// `tanh(x)`.
pub fn record_tanh(rec: &mut Recorder, x: &impl AsView) -> Result<Tensor> {
    map1(rec, Unary::Tanh, x, 1.0, "tanh")
}

/// `sigmoid(x) = 1 / (1 + exp(-x))`.
pub fn record_sigmoid(rec: &mut Recorder, x: &impl AsView) -> Result<Tensor> {
    map1(rec, Unary::Sigmoid, x, 1.0, "sigmoid")
}

/// `max(x, 0)`.
pub fn record_relu(rec: &mut Recorder, x: &impl AsView) -> Result<Tensor> {
    map1(rec, Unary::Relu, x, 1.0, "relu")
}

/// A contiguous copy of a view (e.g. to hand a column range to an op that takes whole
/// tensors).
pub fn record_copy(rec: &mut Recorder, x: &impl AsView) -> Result<Tensor> {
    map1(rec, Unary::Copy, x, 1.0, "copy")
}

/// `x [..., C] + bias [C]` (the bias broadcast over every row).
pub fn record_add_bias(rec: &mut Recorder, x: &impl AsView, bias: &impl AsView) -> Result<Tensor> {
    let x = x.view();
    let b = bias.view();
    if b.rows() != 1 || b.cols() != x.cols() {
        return Err(Error::shape(
            "bias",
            format!(
                "expected [{}] for input {:?}, got {:?}",
                x.cols(),
                x.shape(),
                b.shape()
            ),
        ));
    }
    let leading = &x.shape()[..x.shape().len() - 1];
    map2(rec, Binary::Add, &x, &b.broadcast(leading)?, "add_bias")
}

/// `dst (+)= alpha * src` (same shape): the backward of add (alpha 1), sub (-1 for the second
/// operand), scale, copy and split.
pub fn record_accumulate(
    rec: &mut Recorder,
    dst: &impl AsView,
    src: &impl AsView,
    alpha: f32,
) -> Result<()> {
    let (d, s) = (dst.view(), src.view());
    d.writable("accumulate")?;
    s.f32("accumulate")?;
    same_shape("accumulate", &d, &s)?;
    unary(rec, Unary::Copy, &s, &d, alpha, true)
}

/// `dbias [C] (+)=` the column sums of `dy [..., C]` (the bias's share of
/// [`record_add_bias`]'s backward; the input's share is `dy` itself).
pub fn record_bias_backward(rec: &mut Recorder, dy: &impl AsView, dbias: &Tensor) -> Result<()> {
    let dy = dy.view();
    dy.f32("bias gradient")?;
    if dbias.numel() != dy.cols() || dbias.dtype() != DType::F32 {
        return Err(Error::shape(
            dbias.name(),
            format!("expected f32 [{}], got {:?}", dy.cols(), dbias.shape()),
        ));
    }
    colsum(
        rec,
        dy.tensor(),
        dy.offset(),
        dy.stride(),
        0,
        dy.rows(),
        dy.cols(),
        1,
        dbias,
        0,
        true,
    )
}

/// The backward of [`record_mul`]: `da (+)= dy * b`, `db (+)= dy * a` (either may be absent).
pub fn record_mul_backward(
    rec: &mut Recorder,
    dy: &impl AsView,
    a: &impl AsView,
    b: &impl AsView,
    da: Option<&View>,
    db: Option<&View>,
) -> Result<()> {
    let (dy, a, b) = (dy.view(), a.view(), b.view());
    same_shape("mul backward", &dy, &a)?;
    same_shape("mul backward", &dy, &b)?;
    for (g, other) in [(da, &b), (db, &a)] {
        if let Some(g) = g {
            g.writable("mul backward")?;
            same_shape("mul backward", g, &dy)?;
            binary(rec, Binary::Mul, &dy, other, g, 1.0, true)?;
        }
    }
    Ok(())
}

fn from_output(
    rec: &mut Recorder,
    op: Binary,
    dy: &impl AsView,
    y: &impl AsView,
    dx: &impl AsView,
) -> Result<()> {
    let (dy, y, dx) = (dy.view(), y.view(), dx.view());
    dx.writable("activation backward")?;
    same_shape("activation backward", &dy, &y)?;
    same_shape("activation backward", &dy, &dx)?;
    binary(rec, op, &dy, &y, &dx, 1.0, true)
}

/// `dx (+)= dy * (1 - y^2)` from the output `y` of [`record_tanh`].
pub fn record_tanh_backward(
    rec: &mut Recorder,
    dy: &impl AsView,
    y: &impl AsView,
    dx: &impl AsView,
) -> Result<()> {
    from_output(rec, Binary::TanhBackward, dy, y, dx)
}

/// `dx (+)= dy * y * (1 - y)` from the output `y` of [`record_sigmoid`].
pub fn record_sigmoid_backward(
    rec: &mut Recorder,
    dy: &impl AsView,
    y: &impl AsView,
    dx: &impl AsView,
) -> Result<()> {
    from_output(rec, Binary::SigmoidBackward, dy, y, dx)
}

/// `dx (+)= dy * [y > 0]` from the output `y` of [`record_relu`] (no gradient at 0, as
/// PyTorch).
pub fn record_relu_backward(
    rec: &mut Recorder,
    dy: &impl AsView,
    y: &impl AsView,
    dx: &impl AsView,
) -> Result<()> {
    from_output(rec, Binary::ReluBackward, dy, y, dx)
}

/// The backward of [`record_tanh_add`] from its output `y`: `da (+)= dy * (1 - y^2)` and
/// `db (+)=` the same.
pub fn record_tanh_add_backward(
    rec: &mut Recorder,
    dy: &impl AsView,
    y: &impl AsView,
    da: &impl AsView,
    db: &impl AsView,
) -> Result<()> {
    from_output(rec, Binary::TanhBackward, dy, y, da)?;
    from_output(rec, Binary::TanhBackward, dy, y, db)
}

/// Concatenates `parts` (same leading shape) along the last axis: `[..., C1 + C2 + ...]`.
/// Its backward is [`split`] of the gradient (views, no copy).
pub fn record_concat(rec: &mut Recorder, parts: &[&dyn AsView]) -> Result<Tensor> {
    let views: Vec<View> = parts.iter().map(|p| p.view()).collect();
    let Some(first) = views.first() else {
        return Err(Error::shape("concat", "needs at least one part"));
    };
    let leading = first.shape()[..first.shape().len() - 1].to_vec();
    for v in &views {
        v.f32("concat")?;
        if v.shape()[..v.shape().len() - 1] != leading[..] {
            return Err(Error::shape(
                "concat",
                format!(
                    "{} {:?} does not share the leading shape {leading:?}",
                    v.name(),
                    v.shape()
                ),
            ));
        }
    }
    let total: usize = views.iter().map(|v| v.cols()).sum();
    let mut shape = leading;
    shape.push(total);
    let out = Tensor::empty(rec.ctx(), "concat", &shape, DType::F32)?;
    let mut c0 = 0;
    for v in &views {
        let dst = out.as_view().cols_range(c0, v.cols())?;
        unary(rec, Unary::Copy, v, &dst, 1.0, false)?;
        c0 += v.cols();
    }
    Ok(out)
}

/// Splits `x [..., C]` along the last axis into views of `widths` columns (summing to C); no
/// copy. It is also the backward of [`record_concat`].
pub fn split(x: &impl AsView, widths: &[usize]) -> Result<Vec<View>> {
    let x = x.view();
    if widths.iter().sum::<usize>() != x.cols() {
        return Err(Error::shape(
            x.name(),
            format!("widths {widths:?} do not sum to its {} columns", x.cols()),
        ));
    }
    let mut c0 = 0;
    widths
        .iter()
        .map(|&w| {
            let v = x.cols_range(c0, w);
            c0 += w;
            v
        })
        .collect()
}

/// The backward of [`split`]: each part's gradient is added into its columns of `dx`.
pub fn record_split_backward(
    rec: &mut Recorder,
    dparts: &[&dyn AsView],
    dx: &impl AsView,
) -> Result<()> {
    let widths: Vec<usize> = dparts.iter().map(|p| p.view().cols()).collect();
    for (part, dst) in dparts.iter().zip(split(dx, &widths)?) {
        record_accumulate(rec, &dst, &part.view(), 1.0)?;
    }
    Ok(())
}
