//! How a computed tensor is compared with its reference: one relative error (with the worst
//! element for failure reports), used by the tests, `wgrnn bench --check` and `wgrnn forward`.

/// The result of [`compare`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Comparison {
    /// `||got - want|| / ||want||` (the absolute `||got - want||` when `want` is all zeros);
    /// infinite when `got` holds a non-finite value.
    pub rel: f64,
    /// Index of the element with the largest absolute difference (of the first non-finite one).
    pub worst: usize,
    /// `got[worst]`.
    pub got: f64,
    /// `want[worst]`.
    pub want: f64,
}

/// Compares `got` with the reference `want` element by element (lengths must agree; the
/// shorter one bounds the comparison).
pub fn compare(got: &[f32], want: &[f64]) -> Comparison {
    let (mut num, mut den) = (0.0, 0.0);
    let mut worst = (0usize, 0.0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = g as f64;
        if !g.is_finite() {
            return Comparison {
                rel: f64::INFINITY,
                worst: i,
                got: g,
                want: w,
            };
        }
        let e = (g - w).abs();
        num += e * e;
        den += w * w;
        if e > worst.1 {
            worst = (i, e);
        }
    }
    let i = worst.0;
    Comparison {
        rel: if den > 0.0 {
            (num / den).sqrt()
        } else {
            num.sqrt()
        },
        worst: i,
        got: got.get(i).map_or(0.0, |&g| g as f64),
        want: want.get(i).copied().unwrap_or(0.0),
    }
}

/// [`compare`]'s relative error alone.
pub fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    compare(got, want).rel
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_absolute_and_non_finite() {
        let c = compare(&[1.0, 2.0, 4.0], &[1.0, 2.0, 3.0]);
        assert!((c.rel - 1.0 / 14f64.sqrt()).abs() < 1e-12);
        assert_eq!((c.worst, c.got, c.want), (2, 4.0, 3.0));
        // All-zero reference: the absolute norm.
        assert_eq!(compare(&[3.0, 4.0], &[0.0, 0.0]).rel, 5.0);
        let c = compare(&[1.0, f32::NAN], &[1.0, 1.0]);
        assert!(c.rel.is_infinite() && c.worst == 1);
    }
}
