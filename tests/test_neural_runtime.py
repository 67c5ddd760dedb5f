"""neural/runtime.py: precision choice, threads, memory report, compile fallback, OOM fallback."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from segue.engine.backends.neural import runtime  # noqa: E402
from segue.engine.errors import SegueError  # noqa: E402


def raising_backend(gm, example_inputs):
    """A torch.compile backend that fails the way a machine without a compiler does (lazily)."""
    raise RuntimeError("no C compiler here (test)")


def test_pick_dtypes():
    cpu = torch.device("cpu")
    assert runtime.pick_dtypes("fp32", cpu) == (torch.float32, torch.float32)
    assert runtime.pick_dtypes("bf16", cpu) == (torch.bfloat16, torch.bfloat16)
    assert runtime.pick_dtypes("auto", cpu, bf16_cpu=True) == (torch.bfloat16, torch.bfloat16)
    assert runtime.pick_dtypes(None, cpu, bf16_cpu=False) == (torch.float32, torch.float32)
    for bad, code in (("fp16", "bad_precision"), ("int3", "bad_precision")):
        with pytest.raises(SegueError) as e:
            runtime.pick_dtypes(bad, cpu)
        assert e.value.code == code
    assert runtime.cpu_has_bf16("flags: avx2 avx512_bf16") and not runtime.cpu_has_bf16("flags: avx2")


def test_pick_device_errors():
    assert runtime.pick_device("cpu").type == "cpu"
    with pytest.raises(SegueError) as e:
        runtime.pick_device("warp9")
    assert e.value.code == "bad_device"
    if not torch.cuda.is_available():
        with pytest.raises(SegueError):
            runtime.pick_device("cuda")


def test_threads_and_memory():
    n = torch.get_num_threads()
    try:
        assert runtime.set_threads(1) == 1
        assert runtime.set_threads(None) == 1
        with pytest.raises(SegueError):
            runtime.set_threads(0)
    finally:
        torch.set_num_threads(n)
    m = runtime.memory_info(torch.device("cpu"))
    assert 10e6 < m["rss_bytes"] <= m["peak_rss_bytes"]


def test_compile_failure_at_first_call_falls_back_to_eager(caplog, monkeypatch):
    import torch._dynamo

    # some libraries (imported by other tests in this process) make dynamo swallow errors itself
    monkeypatch.setattr(torch._dynamo.config, "suppress_errors", False)
    torch._dynamo.reset()
    lin = torch.nn.Linear(4, 3)
    x = torch.randn(2, 4)
    fn = runtime.CompileOrEager(lin, enabled=True, backend="tests.test_neural_runtime:raising_backend")
    assert fn.mode == "compiled"                        # torch.compile is lazy: nothing failed yet
    with caplog.at_level("WARNING"):
        y = fn(x)
    torch.testing.assert_close(y, lin(x))
    assert fn.mode == "eager (compile failed)" and "no C compiler" in fn.failure
    assert "torch.compile failed" in caplog.text
    torch.testing.assert_close(fn(x), lin(x))           # and stays eager


def test_compile_backend_that_cannot_be_imported_is_a_clear_error():
    with pytest.raises(SegueError) as e:
        runtime.CompileOrEager(torch.nn.Linear(2, 2), enabled=True, backend="no_such_module:fn")
    assert e.value.code == "bad_option" and "no_such_module" in e.value.message


def test_compiled_out_of_memory_is_not_a_compile_failure():
    def boom(*a):
        raise torch.OutOfMemoryError("simulated")

    fn = runtime.CompileOrEager(torch.nn.Identity())
    fn.compiled = boom
    with pytest.raises(torch.OutOfMemoryError):
        fn(torch.zeros(1))
    assert fn.compiled is boom


def test_run_batched_halves_on_oom_and_notes_it():
    calls = []

    def fn(chunk):
        calls.append(len(chunk))
        if len(chunk) > 1:
            raise torch.OutOfMemoryError("simulated")
        return chunk[0] * 10

    notes = []
    assert runtime.run_batched([1, 2, 3, 4], fn, notes=notes) == [10, 20, 30, 40]
    assert calls == [4, 2, 1, 1, 1, 1] and notes and "2 at a time" in notes[0]

    def never(chunk):
        raise torch.OutOfMemoryError("simulated")

    with pytest.raises(SegueError) as e:
        runtime.run_batched([1, 2], never)
    assert e.value.code == "out_of_memory"


def test_openmp_wait_is_set_before_torch_and_yields_to_the_user():
    """The backends' packages set a short OpenMP spin before torch loads (measured in
    docs/benchmarks.md); a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone."""
    import os
    import subprocess
    import sys

    from segue.engine.backends.neural import openmp_env

    assert openmp_env({}) == {"OMP_WAIT_POLICY": "ACTIVE", "GOMP_SPINCOUNT": "1000"}
    assert "GOMP_SPINCOUNT" not in openmp_env({"OMP_WAIT_POLICY": "PASSIVE"})
    assert openmp_env({"GOMP_SPINCOUNT": "5"})["GOMP_SPINCOUNT"] == "5"
    probe = ("import os, sys; import segue.engine.cli; assert 'torch' not in sys.modules, 'torch before the backends'; "
             "import segue.engine.backends.sa3_small, torch; print(os.environ.get('GOMP_SPINCOUNT'), os.environ.get('OMP_WAIT_POLICY'))")
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", probe], env=base, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1000 ACTIVE"
    out = subprocess.run([sys.executable, "-c", probe], env=dict(base, OMP_WAIT_POLICY="PASSIVE"),
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "None PASSIVE", out.stderr
