//! The runtime around the kernels: pool reuse, counters, compile errors, limits, timestamps.

use seqbridge::gpu::ops::elementwise::{self, ElementwiseParams};
use seqbridge::gpu::{Access, DType, Error, Family, KernelKey, Recorder};

use crate::common::gpu;

/// Steady-state work takes its buffers from the pool: a second identical round creates none.
#[test]
fn pool_reuses_buffers_and_counters_add_up() {
    let gpu = gpu();
    let round = || {
        let a = gpu.upload(&[1.0f32; 1000], &[1000]).unwrap();
        let b = gpu.upload(&[2.0f32; 1000], &[1000]).unwrap();
        let out = gpu.empty(&[1000], DType::F32).unwrap();
        let mut rec = Recorder::new(gpu);
        elementwise::add(&mut rec, &a, &b, &out).unwrap();
        elementwise::add(&mut rec, &out, &b, &a).unwrap();
        rec.submit();
        a.to_vec_f32().unwrap()
    };
    assert_eq!(round(), vec![5.0; 1000]);
    // Other tests share this GPU, so compare this thread's work through its own deltas only
    // where they cannot interfere: buffers_created is global, so run the round a few times
    // and require that the pool answers at least one round entirely from its free lists.
    let mut reused = false;
    for _ in 0..4 {
        let before = gpu.stats();
        assert_eq!(round(), vec![5.0; 1000]);
        let d = gpu.stats() - before;
        assert!(d.dispatches >= 2 && d.submits >= 2, "{d:?}");
        assert!(
            d.bytes_read_back >= 4000 && d.bytes_uploaded >= 8000,
            "{d:?}"
        );
        reused |= d.buffers_created == 0;
    }
    assert!(
        reused,
        "the pool never served a whole round from free buffers"
    );
}

#[test]
fn compile_errors_are_values_not_panics() {
    let gpu = gpu();
    // The add kernel without its workgroup-size constant does not compile.
    let key = KernelKey::new(Family::Elementwise, "add");
    let err = gpu
        .kernel::<ElementwiseParams>(
            &key,
            &[(1, Access::Read), (2, Access::Read), (3, Access::ReadWrite)],
        )
        .err()
        .expect("compile error");
    assert!(matches!(err, Error::Compile { .. }), "{err}");
    assert!(err.to_string().contains("elementwise::add"), "{err}");
}

#[test]
fn tensors_larger_than_a_binding_are_refused_with_sizes() {
    let gpu = gpu();
    let too_many = (gpu.max_binding() / 4 + 1) as usize;
    let err = gpu.empty(&[too_many], DType::F32).unwrap_err().to_string();
    assert!(
        err.contains(&format!("{too_many}")) && err.contains("bytes"),
        "{err}"
    );
}

#[test]
fn upload_checks_length_and_dtype() {
    let gpu = gpu();
    let err = gpu.upload(&[1.0f32; 5], &[2, 3]).unwrap_err().to_string();
    assert!(err.contains("[2, 3]") && err.contains('5'), "{err}");
    let t = gpu.empty(&[4], DType::U32).unwrap();
    assert!(gpu.write(&t, &[1.0f32; 4]).is_err());
}

#[test]
fn views_and_reshapes_check_bounds() {
    let gpu = gpu();
    let t = gpu
        .upload(&(0..512).map(|i| i as f32).collect::<Vec<_>>(), &[512])
        .unwrap();
    assert!(t.reshape(&[16, 32]).is_ok());
    assert!(t.reshape(&[16, 33]).is_err());
    assert!(t.view(500, &[13]).is_err());
    let align = gpu.limits().min_storage_buffer_offset_alignment as usize / 4;
    if align < 512 {
        let v = t.view(align, &[8]).unwrap();
        assert_eq!(
            v.to_vec_f32().unwrap(),
            (align..align + 8).map(|i| i as f32).collect::<Vec<_>>()
        );
    }
}

/// Where the adapter has timestamp queries, a timed recorder reports time per family.
#[test]
fn timestamps_report_per_family() {
    let gpu = gpu();
    match Recorder::with_timestamps(gpu) {
        None => assert!(!gpu.caps().timestamps),
        Some(mut rec) => {
            let a = gpu.upload(&vec![1.0f32; 4096], &[4096]).unwrap();
            let out = gpu.empty(&[4096], DType::F32).unwrap();
            for _ in 0..3 {
                elementwise::add(&mut rec, &a, &a, &out).unwrap();
            }
            let times = rec.submit_timed().unwrap();
            assert_eq!(times.by_family.len(), 1);
            assert_eq!(times.by_family[0].0, Family::Elementwise);
            assert!(times.total_ms >= 0.0);
            assert_eq!(out.to_vec_f32().unwrap()[17], 2.0);
        }
    }
}

/// A host application's own device (desktop embedding): the engine runs on it unchanged and
/// reads what it can do from the device and adapter.
#[test]
fn runs_on_a_device_the_host_owns() {
    use seqbridge::gpu::{Gpu, wgpu};
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter =
        pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default()))
            .expect("an adapter");
    // The host asks for wgpu's defaults, not the adapter's limits: the engine must cope.
    let (device, queue) =
        pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor::default()))
            .expect("a device");
    let gpu = Gpu::from_device(Some(&adapter), device, queue);
    assert!(
        !gpu.caps().subgroups,
        "subgroups were not requested, so they must not be used"
    );
    let a = gpu.upload(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    let out = gpu.empty(&[3], DType::F32).unwrap();
    let mut rec = Recorder::new(&gpu);
    elementwise::add(&mut rec, &a, &a, &out).unwrap();
    rec.submit();
    assert_eq!(out.to_vec_f32().unwrap(), vec![2.0, 4.0, 6.0]);

    // On the host's device a recording is cut at its split points (the host's frames run
    // between the pieces); each piece sees the results of the ones before.
    assert!(gpu.shares_queue());
    let x = gpu.upload(&[1.0f32, 2.0, 3.0], &[3]).unwrap();
    let before = gpu.stats();
    let mut rec = Recorder::new(&gpu);
    for _ in 0..3 {
        elementwise::add(&mut rec, &x, &x, &out).unwrap();
        rec.split_point().unwrap();
        elementwise::add(&mut rec, &out, &a, &x).unwrap();
    }
    rec.submit();
    let d = gpu.stats() - before;
    assert_eq!((d.dispatches, d.submits), (6, 4), "{d:?}");
    // x ← 2x + a, three times, from x = a: 3a, 7a, 15a.
    assert_eq!(x.to_vec_f32().unwrap(), vec![15.0, 30.0, 45.0]);

    // The tiled matmul sizes itself by this device's (default, smaller) limits.
    use seqbridge::gpu::ops::matmul::{MatmulOptions, matmul};
    let (m, k, n) = (67, 33, 29);
    let av: Vec<f32> = (0..m * k)
        .map(|i| ((i * 37) % 17) as f32 * 0.1 - 0.8)
        .collect();
    let bv: Vec<f32> = (0..n * k)
        .map(|i| ((i * 11) % 13) as f32 * 0.1 - 0.6)
        .collect();
    let (ta, tb) = (
        gpu.upload(&av, &[m, k]).unwrap(),
        gpu.upload(&bv, &[n, k]).unwrap(),
    );
    let tc = gpu.empty(&[m, n], DType::F32).unwrap();
    let mut rec = Recorder::new(&gpu);
    let opts = MatmulOptions {
        trans_b: true,
        ..Default::default()
    };
    matmul(&mut rec, &ta, &tb, &tc, &opts).unwrap();
    rec.submit();
    let got = tc.to_vec_f32().unwrap();
    for i in 0..m {
        for j in 0..n {
            let want: f32 = (0..k).map(|p| av[i * k + p] * bv[j * k + p]).sum();
            assert!(
                (got[i * n + j] - want).abs() < 1e-4,
                "[{i}, {j}]: {} vs {want}",
                got[i * n + j]
            );
        }
    }
    gpu.check_errors().unwrap();
}

/// wgpu's GL backend panics when a thread waits over 6 s for its context lock, and llvmpipe
/// runs a whole submit inside that lock. A submit made to run longer than that must make
/// another thread's upload wait, not panic (README, "GL and threads"). Seconds of software-GPU
/// work, so run by hand on GL:
/// `SEQBRIDGE_BACKEND=gl cargo test --test kernels -- --ignored threads_wait_out`.
#[test]
#[ignore]
fn threads_wait_out_a_submit_longer_than_wgpus_gl_lock() {
    use seqbridge::gpu::ops::matmul::{MatmulOptions, matmul};
    use std::time::{Duration, Instant};
    let gpu = gpu();
    let n = 512;
    let a = gpu.upload(&vec![0.5f32; n * n], &[n, n]).unwrap();
    let out = gpu.empty(&[n, n], DType::F32).unwrap();
    let run = |reps: u32| {
        let mut rec = Recorder::new(gpu);
        for _ in 0..reps {
            matmul(&mut rec, &a, &a, &out, &MatmulOptions::default()).unwrap();
        }
        rec.submit();
        gpu.wait_idle().unwrap();
    };
    // Size one submit to take about 10 s here (the first run also compiles the kernel).
    run(1);
    let started = Instant::now();
    run(4);
    let per = started.elapsed() / 4;
    let reps = (Duration::from_secs(10).as_secs_f64() / per.as_secs_f64()).ceil() as u32;
    let (long, waited) = std::thread::scope(|s| {
        let started = Instant::now();
        let long = s.spawn(move || {
            run(reps);
            started.elapsed()
        });
        // Let the long submit reach the device first.
        std::thread::sleep(per.min(Duration::from_millis(500)));
        let asked = Instant::now();
        let t = gpu.upload(&[1.0f32; 16], &[16]).unwrap();
        assert_eq!(t.to_vec_f32().unwrap(), vec![1.0; 16]);
        (long.join().unwrap(), asked.elapsed())
    });
    eprintln!(
        "{}: {reps} matmuls of {n}² in one submit took {long:?}; an upload and read-back on \
         another thread took {waited:?} (queued behind it)",
        gpu.adapter().backend
    );
    assert_eq!(out.to_vec_f32().unwrap()[0], 0.25 * n as f32);
}
