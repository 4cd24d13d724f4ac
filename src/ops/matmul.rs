//! Batched matrix multiply on the engine's strided GEMM (`matmul.wgsl`): attention scores
//! `q k^T` and context vectors `a v`. Operands are views with a 3-D logical shape whose rows
//! are evenly strided (a column range of a bigger tensor works as is), so transposes cost
//! nothing: the GEMM reads either operand with swapped strides.

use super::{AsView, View};
use crate::encoder::Recorder;
use crate::error::{Error, Result};
use crate::kernels::gemm::{self, Dims};
use crate::tensor::{DType, Tensor};

/// `(batches, rows, cols)` of a 3-D view.
fn dims3(what: &str, v: &View) -> Result<(usize, usize, usize)> {
    v.f32(what)?;
    match *v.shape() {
        [n, r, c] => Ok((n, r, c)),
        _ => Err(Error::shape(
            what,
            format!(
                "{} must be 3-D [N, rows, cols], got {:?}",
                v.name(),
                v.shape()
            ),
        )),
    }
}

/// The GEMM view of a 3-D view's stored matrices, transposed when `t`.
fn gv(v: &View, t: bool) -> gemm::View<'_> {
    let (_, r, _) = (v.shape()[0], v.shape()[1], v.shape()[2]);
    let g = gemm::View::rows(v.tensor(), v.offset(), v.stride()).z(r * v.stride());
    if t { g.t() } else { g }
}

/// The logical shapes `(N, M, K, P)` of `op(a) [N, M, K] x op(b) [N, K, P]`.
fn logical(a: &View, b: &View, ta: bool, tb: bool) -> Result<(usize, usize, usize, usize)> {
    let (na, ar, ac) = dims3("bmm a", a)?;
    let (nb, br, bc) = dims3("bmm b", b)?;
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let (k2, p) = if tb { (bc, br) } else { (br, bc) };
    if na != nb || k != k2 {
        return Err(Error::shape(
            "bmm",
            format!(
                "{} {:?}{} and {} {:?}{} do not multiply",
                a.name(),
                a.shape(),
                if ta { "^T" } else { "" },
                b.name(),
                b.shape(),
                if tb { "^T" } else { "" }
            ),
        ));
    }
    Ok((na, m, k, p))
}

/// `c [N, M, P] = op(a) op(b)` with `op(a) = a [N, M, K]` (or `a^T` of a stored `[N, K, M]`
/// when `trans_a`) and `op(b) = b [N, K, P]` (or `b^T` of a stored `[N, P, K]` when
/// `trans_b`).
pub fn record_bmm(
    rec: &mut Recorder,
    a: &impl AsView,
    b: &impl AsView,
    trans_a: bool,
    trans_b: bool,
) -> Result<Tensor> {
    let (a, b) = (a.view(), b.view());
    let (n, m, k, p) = logical(&a, &b, trans_a, trans_b)?;
    let c = Tensor::empty(rec.ctx(), "bmm", &[n, m, p], DType::F32)?;
    if n * m * p == 0 {
        return Ok(c);
    }
    if k == 0 {
        rec.clear(&c, 0, c.numel())?;
        return Ok(c);
    }
    let dims = Dims {
        m,
        n: p,
        k,
        z: n,
        nsum: 1,
    };
    let cv = gemm::View::rows(&c, 0, p).z(m * p);
    gemm::gemm(
        rec,
        dims,
        gv(&a, trans_a),
        gv(&b, trans_b),
        cv,
        None,
        false,
        1.0,
    )?;
    Ok(c)
}

/// The backward of [`record_bmm`] from `dc [N, M, P]`: `da (+)= dc op(b)^T` and
/// `db (+)= op(a)^T dc`, each in its operand's stored layout (so a transposed operand gets a
/// transposed gradient); either may be absent.
#[allow(clippy::too_many_arguments)]
pub fn record_bmm_backward(
    rec: &mut Recorder,
    a: &impl AsView,
    b: &impl AsView,
    trans_a: bool,
    trans_b: bool,
    dc: &Tensor,
    da: Option<&View>,
    db: Option<&View>,
) -> Result<()> {
    let (a, b) = (a.view(), b.view());
    let (n, m, k, p) = logical(&a, &b, trans_a, trans_b)?;
    crate::error::check_shape("bmm output gradient", dc.shape(), &[n, m, p])?;
    if n * m * p * k == 0 {
        return Ok(());
    }
    let dcv = gemm::View::rows(dc, 0, p).z(m * p);
    if let Some(da) = da {
        da.writable("bmm a gradient")?;
        crate::error::check_shape("bmm a gradient", da.shape(), a.shape())?;
        let out = gv(da, false);
        // Logical dA [M, K] = dC op(b)^T; stored transposed: dA^T [K, M] = op(b) dC^T.
        if trans_a {
            let dims = Dims {
                m: k,
                n: m,
                k: p,
                z: n,
                nsum: 1,
            };
            gemm::gemm(rec, dims, gv(&b, trans_b), dcv.t(), out, None, true, 1.0)?;
        } else {
            let dims = Dims {
                m,
                n: k,
                k: p,
                z: n,
                nsum: 1,
            };
            gemm::gemm(rec, dims, dcv, gv(&b, trans_b).t(), out, None, true, 1.0)?;
        }
    }
    if let Some(db) = db {
        db.writable("bmm b gradient")?;
        crate::error::check_shape("bmm b gradient", db.shape(), b.shape())?;
        let out = gv(db, false);
        // Logical dB [K, P] = op(a)^T dC; stored transposed: dB^T [P, K] = dC^T op(a).
        if trans_b {
            let dims = Dims {
                m: p,
                n: k,
                k: m,
                z: n,
                nsum: 1,
            };
            gemm::gemm(rec, dims, dcv.t(), gv(&a, trans_a), out, None, true, 1.0)?;
        } else {
            let dims = Dims {
                m: k,
                n: p,
                k: m,
                z: n,
                nsum: 1,
            };
            gemm::gemm(rec, dims, gv(&a, trans_a).t(), dcv, out, None, true, 1.0)?;
        }
    }
    Ok(())
}
