//! Optimiser updates, in place and elementwise over one parameter tensor and its gradient, with
//! torch.optim's formulas (its single-tensor implementation; the last bit may round differently,
//! e.g. PyTorch forms the first moment with lerp). The host keeps the step count and passes the
//! bias corrections.
//!   sgd_update   g = grad + wd * param
//!                momentum: buf = g (first step) or momentum * buf + (1 - dampening) * g;
//!                          g = g + momentum * buf (nesterov) or buf
//!                param -= lr * g
//!   adam_update  AdamW (decoupled): param *= 1 - lr * wd;  Adam: g = grad + wd * param
//!                m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
//!                param -= step_size * m / (sqrt(v) / bc2_sqrt + eps)
//!                with step_size = lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t)

struct Optim {
  len: u32,
  flags: u32,          // 1 first step, 2 nesterov, 4 decoupled weight decay, 8 momentum
  lr: f32,
  weight_decay: f32,
  momentum: f32,
  dampening: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  step_size: f32,
  bc2_sqrt: f32,
}

const F_FIRST: u32 = 1u;
const F_NESTEROV: u32 = 2u;
const F_DECOUPLED: u32 = 4u;
const F_MOMENTUM: u32 = 8u;

@group(0) @binding(0) var<uniform> p: Optim;

fn has(f: u32) -> bool { return (p.flags & f) != 0u; }

// sgd_update bindings
@group(1) @binding(0) var<storage, read> grad: array<f32>;            // [len]
@group(1) @binding(1) var<storage, read_write> param: array<f32>;     // [len]
@group(1) @binding(2) var<storage, read_write> buf: array<f32>;       // [len] momentum buffer (flag 8)

@compute @workgroup_size(256)
fn sgd_update(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.len) { return; }
  let w = param[i];
  var g = grad[i];
  if (p.weight_decay != 0.0) { g += p.weight_decay * w; }
  if (has(F_MOMENTUM)) {
    var b = g;
    if (!has(F_FIRST)) { b = p.momentum * buf[i] + (1.0 - p.dampening) * g; }
    buf[i] = b;
    g = select(b, g + p.momentum * b, has(F_NESTEROV));
  }
  param[i] = w - p.lr * g;
}

// adam_update bindings: grad (0), param (1), and
@group(1) @binding(2) var<storage, read_write> exp_avg: array<f32>;     // [len] m
@group(1) @binding(3) var<storage, read_write> exp_avg_sq: array<f32>;  // [len] v

@compute @workgroup_size(256)
fn adam_update(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.len) { return; }
  var w = param[i];
  var g = grad[i];
  if (has(F_DECOUPLED)) {
    w *= 1.0 - p.lr * p.weight_decay;
  } else if (p.weight_decay != 0.0) {
    g += p.weight_decay * w;
  }
  let m = p.beta1 * exp_avg[i] + (1.0 - p.beta1) * g;
  let v = p.beta2 * exp_avg_sq[i] + (1.0 - p.beta2) * g * g;
  exp_avg[i] = m;
  exp_avg_sq[i] = v;
  param[i] = w - p.step_size * m / (sqrt(v) / p.bc2_sqrt + p.eps);
}
