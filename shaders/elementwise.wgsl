//! Elementwise operations on 2-D strided views (the ops vocabulary, src/ops/elementwise.rs).
//! Every operand is a window `[rows, cols]` of a buffer: element (r, c) at `off + r * rs + c`
//! (rs = 0 repeats one row: a broadcast bias). The output is written (or, with flag 1,
//! accumulated): out = alpha * f(a, b) (+ out).
//!   unary_forward        f(a)    OP: 0 copy, 1 tanh, 2 sigmoid, 3 relu
//!   binary_forward       f(a, b) OP: 0 a + b, 1 a - b, 2 a * b, 3 tanh(a + b),
//!                                    4 a * (1 - b^2)     (tanh backward, b = y)
//!                                    5 a * b * (1 - b)   (sigmoid backward, b = y)
//!                                    6 a * [b > 0]       (relu backward, b = y)
//!   gather_rows_forward  out[i, c] = a[idx[i], c]; NaN for an index >= a_rows (one the host
//!                        could not validate)
//! OP is an override constant, so each operation is its own pipeline without a branch per
//! element. One invocation per element of the output, in row-major order.

struct Ew {
  rows: u32, cols: u32, flags: u32, alpha: f32,   // flags: 1 = accumulate into out
  a_off: u32, a_rs: u32, b_off: u32, b_rs: u32,
  o_off: u32, o_rs: u32, a_rows: u32,
}

override OP: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Ew;

fn sigmoid_s(x: f32) -> f32 { return 1.0 / (1.0 + exp(-x)); }
// tanh saturates to +-1 in f32 long before 20; clamping keeps every driver away from inf/inf.
fn tanh_s(x: f32) -> f32 { return tanh(clamp(x, -20.0, 20.0)); }

// Element index of the invocation (grids fold into y beyond 65535 workgroups).
fn flat(gid: vec3<u32>, nwg: vec3<u32>) -> u32 { return gid.x + gid.y * nwg.x * 256u; }

fn put(r: u32, c: u32, v: f32) {
  let o = p.o_off + r * p.o_rs + c;
  var x = p.alpha * v;
  if ((p.flags & 1u) != 0u) { x += out[o]; }
  out[o] = x;
}

// unary_forward, binary_forward bindings (unary binds `a` twice: b is unused)
@group(1) @binding(0) var<storage, read> a: array<f32>;
@group(1) @binding(1) var<storage, read> b: array<f32>;
@group(1) @binding(2) var<storage, read_write> out: array<f32>;

fn unary(x: f32) -> f32 {
  switch OP {
    case 1u: { return tanh_s(x); }
    case 2u: { return sigmoid_s(x); }
    case 3u: { return max(x, 0.0); }
    default: { return x; }
  }
}

fn binary(x: f32, y: f32) -> f32 {
  switch OP {
    case 1u: { return x - y; }
    case 2u: { return x * y; }
    case 3u: { return tanh_s(x + y); }
    case 4u: { return x * (1.0 - y * y); }
    case 5u: { return x * y * (1.0 - y); }
    case 6u: { return select(0.0, x, y > 0.0); }
    default: { return x + y; }
  }
}

@compute @workgroup_size(256)
fn unary_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                 @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.rows * p.cols) { return; }
  let r = i / p.cols;
  let c = i - r * p.cols;
  put(r, c, unary(a[p.a_off + r * p.a_rs + c]));
}

@compute @workgroup_size(256)
fn binary_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.rows * p.cols) { return; }
  let r = i / p.cols;
  let c = i - r * p.cols;
  put(r, c, binary(a[p.a_off + r * p.a_rs + c], b[p.b_off + r * p.b_rs + c]));
}

// gather_rows_forward bindings: `b` is replaced by the index tensor.
@group(1) @binding(1) var<storage, read> idx: array<u32>;   // [rows]

@compute @workgroup_size(256)
fn gather_rows_forward(@builtin(global_invocation_id) gid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat(gid, nwg);
  if (i >= p.rows * p.cols) { return; }
  let r = i / p.cols;
  let c = i - r * p.cols;
  let src = idx[r];
  var v = bitcast<f32>(0x7fc00000u);   // quiet NaN
  if (src < p.a_rows) { v = a[p.a_off + src * p.a_rs + c]; }
  put(r, c, v);
}
