//! Compute pipelines with explicit bind-group layouts, cached by (shader, entry point, override
//! constants). Every kernel takes its parameters as one uniform struct at group 0 (bound at a
//! dynamic offset into a per-submission parameter buffer) and its tensors at group 1, in the
//! binding order of its [`KernelSpec`].

use std::sync::Arc;

use crate::context::Context;
use crate::error::Result;
use crate::shaders::Shader;

/// Bytes reserved per dispatch in the parameter buffer; also the dynamic-offset alignment.
pub(crate) const PARAM_SLOT: u64 = 256;

/// How a kernel uses one storage binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Access {
    /// `var<storage, read>`
    Read,
    /// `var<storage, read_write>`
    ReadWrite,
}

/// One WGSL entry point and the storage bindings (group 1, bindings 0..n) it declares.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KernelSpec {
    pub shader: Shader,
    pub entry: &'static str,
    pub bindings: &'static [Access],
}

/// Cache key: the kernel and its override constants.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PipelineKey {
    shader: Shader,
    entry: &'static str,
    constants: Vec<(&'static str, u32)>,
}

/// A compiled kernel with its two bind-group layouts.
#[derive(Debug)]
pub(crate) struct Pipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub params_layout: wgpu::BindGroupLayout,
    pub storage_layout: wgpu::BindGroupLayout,
    pub spec: KernelSpec,
}

/// Returns the cached pipeline for `spec` with `constants`, compiling it on first use.
pub(crate) fn get(
    ctx: &Context,
    spec: KernelSpec,
    constants: &[(&'static str, u32)],
) -> Result<Arc<Pipeline>> {
    let key = PipelineKey {
        shader: spec.shader,
        entry: spec.entry,
        constants: constants.to_vec(),
    };
    if let Some(p) = ctx.pipelines.lock().ok().and_then(|m| m.get(&key).cloned()) {
        return Ok(p);
    }
    let p = Arc::new(ctx.scoped(|| build(ctx, spec, constants))?);
    if let Ok(mut m) = ctx.pipelines.lock() {
        m.insert(key, p.clone());
    }
    Ok(p)
}

fn build(ctx: &Context, spec: KernelSpec, constants: &[(&'static str, u32)]) -> Pipeline {
    let device = &ctx.device;
    let module = crate::shaders::module(ctx, spec.shader);
    let params_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("params"),
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: None,
            },
            count: None,
        }],
    });
    let entries: Vec<wgpu::BindGroupLayoutEntry> = spec
        .bindings
        .iter()
        .enumerate()
        .map(|(i, a)| wgpu::BindGroupLayoutEntry {
            binding: i as u32,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage {
                    read_only: *a == Access::Read,
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        })
        .collect();
    let storage_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(spec.entry),
        entries: &entries,
    });
    let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(spec.entry),
        bind_group_layouts: &[Some(&params_layout), Some(&storage_layout)],
        immediate_size: 0,
    });
    let consts: Vec<(&str, f64)> = constants.iter().map(|(k, v)| (*k, *v as f64)).collect();
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(spec.entry),
        layout: Some(&layout),
        module: &module,
        entry_point: Some(spec.entry),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &consts,
            // Kernels initialise the workgroup memory they read; skip the driver's zeroing pass.
            zero_initialize_workgroup_memory: false,
        },
        cache: None,
    });
    Pipeline {
        pipeline,
        params_layout,
        storage_layout,
        spec,
    }
}
