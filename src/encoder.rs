//! Records dispatches, copies and clears, then encodes them into one command buffer and submits
//! it. This is the only module that calls `queue.submit`, in two places: [`Recorder::submit`]
//! (recorded work: an RNN call records every timestep, layer and direction first and submits
//! once, so nothing waits on the GPU inside the time loop) and `read_buffer` (a copy into a
//! staging buffer for reading back). Both count what they submit in the context's
//! [`Counts`](crate::context::Counts).
//!
//! Each dispatch's parameters are packed into one uniform buffer at 256-byte slots and bound at
//! a dynamic offset, so a T-step sequence reuses one bind group per kernel instead of T.

use std::collections::HashMap;
use std::sync::Arc;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::pipeline::{self, KernelSpec, PARAM_SLOT, Pipeline};
use crate::tensor::Tensor;

enum Op {
    Dispatch {
        pipe: Arc<Pipeline>,
        bufs: Vec<Arc<wgpu::Buffer>>,
        slot: u32,
        groups: [u32; 3],
    },
    Copy {
        src: Arc<wgpu::Buffer>,
        src_off: u64,
        dst: Arc<wgpu::Buffer>,
        dst_off: u64,
        size: u64,
    },
    Clear {
        buf: Arc<wgpu::Buffer>,
        off: u64,
        size: u64,
    },
}

/// A list of GPU work to be submitted as one command buffer.
///
/// Layers and models record into a `Recorder` (`Rnn::record_forward`, ...); `submit` encodes
/// and submits everything at once.
pub struct Recorder<'c> {
    ctx: &'c Context,
    ops: Vec<Op>,
    params: Vec<u8>,
    timestamps: bool,
}

/// What a submission did; GPU time can be read once it finished.
#[derive(Debug)]
pub struct Submitted {
    /// Compute dispatches in the command buffer.
    pub dispatches: usize,
    /// Copy and clear commands in the command buffer.
    pub transfers: usize,
    ts: Option<(wgpu::Buffer, f32)>,
}

impl<'c> Recorder<'c> {
    /// An empty recording for `ctx`.
    pub fn new(ctx: &'c Context) -> Self {
        Recorder {
            ctx,
            ops: Vec::new(),
            params: Vec::new(),
            timestamps: false,
        }
    }

    /// Asks for GPU timestamps around the whole command buffer (if the adapter supports them).
    pub fn with_timestamps(mut self) -> Self {
        self.timestamps = true;
        self
    }

    /// The context recorded for.
    pub fn ctx(&self) -> &'c Context {
        self.ctx
    }

    /// Number of dispatches recorded so far.
    pub fn dispatch_count(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| matches!(o, Op::Dispatch { .. }))
            .count()
    }

    /// Records one dispatch of `spec` with override `constants`, the uniform `params` (at most 64
    /// words) and the storage tensors in binding order.
    pub(crate) fn dispatch(
        &mut self,
        spec: KernelSpec,
        constants: &[(&'static str, u32)],
        params: &[u32],
        tensors: &[&Tensor],
        groups: [u32; 3],
    ) -> Result<()> {
        debug_assert_eq!(tensors.len(), spec.bindings.len(), "{}", spec.entry);
        debug_assert!(params.len() * 4 <= PARAM_SLOT as usize);
        let max = self.ctx.limits.max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > max) {
            return Err(Error::Limit {
                name: spec.entry.to_string(),
                bytes: groups.iter().copied().max().unwrap_or(0) as u64,
                limit_name: "max_compute_workgroups_per_dimension",
                limit: max as u64,
            });
        }
        if groups.contains(&0) {
            return Ok(());
        }
        let pipe = pipeline::get(self.ctx, spec, constants)?;
        let slot = (self.params.len() as u64 / PARAM_SLOT) as u32;
        let mut bytes = bytemuck::cast_slice::<u32, u8>(params).to_vec();
        bytes.resize(PARAM_SLOT as usize, 0);
        self.params.extend_from_slice(&bytes);
        self.ops.push(Op::Dispatch {
            pipe,
            bufs: tensors.iter().map(|t| t.buf.clone()).collect(),
            slot,
            groups,
        });
        Ok(())
    }

    /// Copies `len` elements from `src[src_off..]` to `dst[dst_off..]` (element offsets).
    ///
    /// Errors: [`Error::Shape`] naming the tensor when either range lies outside it.
    pub fn copy(
        &mut self,
        src: &Tensor,
        src_off: usize,
        dst: &Tensor,
        dst_off: usize,
        len: usize,
    ) -> Result<()> {
        src.check_range("copy from", src_off, len)?;
        dst.check_range("copy to", dst_off, len)?;
        if len > 0 {
            self.ops.push(Op::Copy {
                src: src.buf.clone(),
                src_off: 4 * src_off as u64,
                dst: dst.buf.clone(),
                dst_off: 4 * dst_off as u64,
                size: 4 * len as u64,
            });
        }
        Ok(())
    }

    /// Zeroes `len` elements of `t` from element `off`.
    ///
    /// Errors: [`Error::Shape`] naming the tensor when the range lies outside it.
    pub fn clear(&mut self, t: &Tensor, off: usize, len: usize) -> Result<()> {
        t.check_range("clear", off, len)?;
        if len > 0 {
            self.ops.push(Op::Clear {
                buf: t.buf.clone(),
                off: 4 * off as u64,
                size: 4 * len as u64,
            });
        }
        Ok(())
    }

    /// Appends everything recorded in `other`.
    pub fn append(&mut self, other: Recorder<'_>) {
        let base = (self.params.len() as u64 / PARAM_SLOT) as u32;
        self.params.extend_from_slice(&other.params);
        for mut op in other.ops {
            if let Op::Dispatch { slot, .. } = &mut op {
                *slot += base;
            }
            self.ops.push(op);
        }
    }

    /// Encodes all recorded work into one command buffer and submits it (the crate's only
    /// submit). Returns without waiting for the GPU.
    pub fn submit(self) -> Result<Submitted> {
        let ctx = self.ctx;
        let device = &ctx.device;
        let ts_ok = self.timestamps && ctx.has_timestamps();
        let dispatches = self.dispatch_count();
        let transfers = self.ops.len() - dispatches;
        let ts = ctx.scoped(|| -> Option<(wgpu::Buffer, f32)> {
            // One parameter buffer per context, grown when a recording needs more. The lock is
            // held from the write to the submit, so another thread's recording cannot overwrite
            // the parameters in between; the queue orders the write after earlier submissions.
            let mut guard = ctx.params.lock().unwrap_or_else(|p| p.into_inner());
            let need = (self.params.len() as u64).max(PARAM_SLOT);
            if guard.as_ref().is_some_and(|b| b.size() < need) {
                *guard = None;
            }
            let param_buf: &wgpu::Buffer = guard.get_or_insert_with(|| {
                device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("params"),
                    size: need.next_power_of_two(),
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            });
            if !self.params.is_empty() {
                ctx.queue.write_buffer(param_buf, 0, &self.params);
            }
            let mut enc = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("wgrnn"),
            });
            let queries = ts_ok.then(|| {
                device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count: 2,
                })
            });
            if let Some(q) = &queries {
                enc.write_timestamp(q, 0);
            }
            // Profiling (`WGRNN_PROFILE=1`): one timed pass per dispatch.
            let profiled: Vec<wgpu::QuerySet> = if ctx.profiling() {
                (0..dispatches.div_ceil(PROFILE_PER_SET))
                    .map(|_| {
                        device.create_query_set(&wgpu::QuerySetDescriptor {
                            label: Some("profile"),
                            ty: wgpu::QueryType::Timestamp,
                            count: 2 * PROFILE_PER_SET as u32,
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let mut labels: Vec<&'static str> = Vec::new();
            let mut param_groups: HashMap<*const Pipeline, wgpu::BindGroup> = HashMap::new();
            let mut storage_groups: HashMap<
                (*const Pipeline, Vec<*const wgpu::Buffer>),
                wgpu::BindGroup,
            > = HashMap::new();
            let mut i = 0;
            while i < self.ops.len() {
                match &self.ops[i] {
                    Op::Copy {
                        src,
                        src_off,
                        dst,
                        dst_off,
                        size,
                    } => {
                        enc.copy_buffer_to_buffer(src, *src_off, dst, *dst_off, *size);
                        i += 1;
                    }
                    Op::Clear { buf, off, size } => {
                        enc.clear_buffer(buf, *off, Some(*size));
                        i += 1;
                    }
                    Op::Dispatch { .. } => {
                        let n = labels.len();
                        let timed = profiled.get(n / PROFILE_PER_SET).map(|q| {
                            let at = 2 * (n % PROFILE_PER_SET) as u32;
                            wgpu::ComputePassTimestampWrites {
                                query_set: q,
                                beginning_of_pass_write_index: Some(at),
                                end_of_pass_write_index: Some(at + 1),
                            }
                        });
                        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                            label: None,
                            timestamp_writes: timed,
                        });
                        while let Some(Op::Dispatch {
                            pipe,
                            bufs,
                            slot,
                            groups,
                        }) = self.ops.get(i)
                        {
                            let key = Arc::as_ptr(pipe);
                            let pg = param_groups.entry(key).or_insert_with(|| {
                                device.create_bind_group(&wgpu::BindGroupDescriptor {
                                    label: None,
                                    layout: &pipe.params_layout,
                                    entries: &[wgpu::BindGroupEntry {
                                        binding: 0,
                                        resource: wgpu::BindingResource::Buffer(
                                            wgpu::BufferBinding {
                                                buffer: param_buf,
                                                offset: 0,
                                                size: wgpu::BufferSize::new(PARAM_SLOT),
                                            },
                                        ),
                                    }],
                                })
                            });
                            pass.set_pipeline(&pipe.pipeline);
                            pass.set_bind_group(0, &*pg, &[*slot * PARAM_SLOT as u32]);
                            let skey = (key, bufs.iter().map(Arc::as_ptr).collect::<Vec<_>>());
                            let sg = storage_groups.entry(skey).or_insert_with(|| {
                                let entries: Vec<wgpu::BindGroupEntry> = bufs
                                    .iter()
                                    .enumerate()
                                    .map(|(b, buf)| wgpu::BindGroupEntry {
                                        binding: b as u32,
                                        resource: buf.as_entire_binding(),
                                    })
                                    .collect();
                                device.create_bind_group(&wgpu::BindGroupDescriptor {
                                    label: Some(pipe.spec.entry),
                                    layout: &pipe.storage_layout,
                                    entries: &entries,
                                })
                            });
                            pass.set_bind_group(1, &*sg, &[]);
                            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
                            i += 1;
                            if !profiled.is_empty() {
                                labels.push(pipe.spec.entry);
                                break;
                            }
                        }
                    }
                }
            }
            let staging = queries.map(|q| {
                enc.write_timestamp(&q, 1);
                let resolve = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("timestamps"),
                    size: 16,
                    usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                    mapped_at_creation: false,
                });
                let staging = device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("timestamps-read"),
                    size: 16,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                });
                enc.resolve_query_set(&q, 0..2, &resolve, 0);
                enc.copy_buffer_to_buffer(&resolve, 0, &staging, 0, 16);
                staging
            });
            let profile_read: Vec<wgpu::Buffer> = profiled
                .iter()
                .map(|q| {
                    let size = 16 * PROFILE_PER_SET as u64;
                    let resolve = device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("profile"),
                        size,
                        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                        mapped_at_creation: false,
                    });
                    let read = device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("profile-read"),
                        size,
                        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                        mapped_at_creation: false,
                    });
                    enc.resolve_query_set(q, 0..2 * PROFILE_PER_SET as u32, &resolve, 0);
                    enc.copy_buffer_to_buffer(&resolve, 0, &read, 0, size);
                    read
                })
                .collect();
            ctx.queue.submit([enc.finish()]);
            ctx.counters.submitted(dispatches);
            if !profile_read.is_empty() {
                profile_add(ctx, &labels, &profile_read);
            }
            staging.map(|s| (s, ctx.queue.get_timestamp_period()))
        })?;
        Ok(Submitted {
            dispatches,
            transfers,
            ts,
        })
    }
}

impl Submitted {
    /// Waits for the GPU to finish all submitted work.
    pub fn wait(&self, ctx: &Context) -> Result<()> {
        ctx.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Device(e.to_string()))?;
        ctx.take_uncaptured()
    }

    /// GPU time of the command buffer in milliseconds (waits for it), or `None` when the
    /// adapter has no timestamp queries or none were asked for.
    pub fn gpu_ms(&self, ctx: &Context) -> Result<Option<f64>> {
        let Some((buf, period)) = &self.ts else {
            return Ok(None);
        };
        let bytes = map_read(ctx, buf, 0, 16)?;
        let t: &[u64] = bytemuck::cast_slice(&bytes);
        let ticks = t[1].wrapping_sub(t[0]);
        Ok(Some(ticks as f64 * *period as f64 / 1e6))
    }
}

/// Dispatches timed per query set when profiling (two timestamps each; wgpu allows 4096
/// queries in a set).
const PROFILE_PER_SET: usize = 2048;

/// Waits for a profiled submission and adds each dispatch's time to the context's table.
fn profile_add(ctx: &Context, labels: &[&'static str], reads: &[wgpu::Buffer]) {
    let period = ctx.queue.get_timestamp_period() as f64;
    for (chunk, buf) in labels.chunks(PROFILE_PER_SET).zip(reads) {
        // A failed read leaves the table short; profiling never fails the submission.
        let Ok(bytes) = map_read(ctx, buf, 0, buf.size()) else {
            continue;
        };
        let t: &[u64] = bytemuck::cast_slice(&bytes);
        let mut guard = ctx.profile.lock().unwrap_or_else(|p| p.into_inner());
        let Some(table) = guard.as_mut() else { return };
        for (j, name) in chunk.iter().enumerate() {
            let ms = t[2 * j + 1].wrapping_sub(t[2 * j]) as f64 * period / 1e6;
            let e = table.entry(*name).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += ms;
        }
    }
}

fn map_read(ctx: &Context, buf: &wgpu::Buffer, off: u64, size: u64) -> Result<Vec<u8>> {
    let slice = buf.slice(off..off + size);
    let (tx, rx) = futures_intrusive::channel::shared::oneshot_channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    ctx.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| Error::Device(e.to_string()))?;
    match pollster::block_on(rx.receive()) {
        Some(Ok(())) => {}
        Some(Err(e)) => return Err(Error::Device(format!("buffer map failed: {e}"))),
        None => return Err(Error::Device("buffer map was cancelled".into())),
    }
    let data = slice
        .get_mapped_range()
        .map_err(|e| Error::Device(format!("mapped range: {e:?}")))?
        .to_vec();
    buf.unmap();
    Ok(data)
}

/// Copies `size` bytes of `buf` from byte `off` into a staging buffer, submits, waits and returns
/// them.
pub(crate) fn read_buffer(
    ctx: &Context,
    buf: &wgpu::Buffer,
    off: u64,
    size: u64,
) -> Result<Vec<u8>> {
    if size == 0 {
        return Ok(Vec::new());
    }
    let staging = ctx.scoped(|| {
        let staging = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut enc = ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        enc.copy_buffer_to_buffer(buf, off, &staging, 0, size);
        ctx.queue.submit([enc.finish()]);
        ctx.counters.read_back();
        staging
    })?;
    let out = map_read(ctx, &staging, 0, size)?;
    ctx.take_uncaptured()?;
    Ok(out)
}
