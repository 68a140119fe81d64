"""The CPU's fast path: bf16 where the CPU has AMX or AVX512-BF16 and fp32 where it has neither
(or where oneDNN is told not to use them), attention and dropout that suit bf16 on a CPU. Speed
itself is measured by `python -m replicate.bench`, never here."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from replicate import runtime
from replicate.training.config import build_parser, resolve_config
from vit.attention import attend
from vit.dropout import Dropout


@pytest.fixture
def cpu_only(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    return monkeypatch


def test_bf16_is_the_default_on_a_cpu_with_amx(cpu_only: pytest.MonkeyPatch) -> None:
    cpu_only.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    assert runtime.default_precision() == ("bf16", "CPU with AMX (bf16 matrix units)")
    config = resolve_config(build_parser().parse_args(["--variant", "vit_ti16"]))
    assert config.precision == "bf16"


@pytest.mark.parametrize("isa", ["AVX2", "avx512_core"])
def test_without_bf16_units_oneDNN_may_use_the_default_falls_back_to_fp32(
    cpu_only: pytest.MonkeyPatch, isa: str
) -> None:
    """ONEDNN_MAX_CPU_ISA=AVX2 measured bf16 matmuls 1000x slower than fp32 here."""
    cpu_only.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    cpu_only.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    cpu_only.setenv("ONEDNN_MAX_CPU_ISA", isa)
    assert runtime.default_precision()[0] == "fp32"


def test_a_cpu_with_avx512_bf16_trains_in_bf16(cpu_only: pytest.MonkeyPatch) -> None:
    """AVX512-BF16 without AMX (AMD EPYC): the studies' ViT trained 1.85x faster in bf16."""
    cpu_only.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    cpu_only.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert runtime.default_precision() == ("bf16", "CPU with AVX512-BF16 (bf16 dot products)")
    cpu_only.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")  # AMX capped off, BF16 kept
    assert runtime.default_precision()[0] == "bf16"


def test_a_cpu_without_bf16_units_trains_in_fp32(cpu_only: pytest.MonkeyPatch) -> None:
    cpu_only.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    cpu_only.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert runtime.default_precision() == (
        "fp32",
        "CPU without AMX or AVX512-BF16: bf16 is emulated there",
    )


def test_a_cpu_is_named_with_what_decides_its_speed(cpu_only: pytest.MonkeyPatch) -> None:
    """Two machines both called "AMD EPYC" differ twofold in speed with and without
    AVX512-BF16: every record of a device (runs, benches, studies) names the CPU's bf16 path."""
    from replicate.bench.report import describe_device

    cpu_only.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    cpu_only.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert describe_device(torch.device("cpu")).name.endswith(" (AVX512-BF16)")
    cpu_only.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    cpu_only.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert describe_device(torch.device("cpu")).name.endswith(" (AVX2)")


def test_an_explicit_precision_wins(cpu_only: pytest.MonkeyPatch) -> None:
    cpu_only.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    config = resolve_config(build_parser().parse_args(["--precision", "fp32"]))
    assert config.precision == "fp32"


def test_bf16_attention_on_the_cpu_is_eq_6_and_7() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 65, 16).unbind(0)
    expected = F.scaled_dot_product_attention(q, k, v)
    with torch.autocast("cpu", torch.bfloat16):  # training: the explicit form
        got = attend(*(t.bfloat16().requires_grad_() for t in (q, k, v)))
    assert got.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected, atol=3e-2, rtol=3e-2)


def test_dropout_drops_at_its_rate_and_scales_what_it_keeps() -> None:
    torch.manual_seed(0)
    x = torch.ones(1000, 1000, requires_grad=True)
    dropout = Dropout(0.1)
    y = dropout(x)
    kept = y != 0
    assert kept.float().mean().item() == pytest.approx(0.9, abs=2e-3)
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / 0.9))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())  # d(x m / (1 - p)) / dx = m / (1 - p)
    assert torch.equal(dropout.eval()(x), x)


def test_dropout_masks_follow_the_seed() -> None:
    x = torch.ones(64, 65, 192, dtype=torch.bfloat16)
    dropout = Dropout(0.1)
    torch.manual_seed(1)
    first = dropout(x)
    torch.manual_seed(1)
    assert torch.equal(dropout(x), first) and first.dtype == torch.bfloat16
    assert not torch.equal(dropout(x), first)


def test_a_run_trains_in_bf16_on_the_cpu_with_fp32_weights(tmp_path) -> None:
    from test_train import TINY_VIT

    from replicate.train import main

    model = main([*TINY_VIT, "--precision", "bf16", "--steps", "3", "--out", str(tmp_path)])
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast: fp32 weights
    records = [line for line in (tmp_path / "metrics.jsonl").read_text().splitlines() if line]
    assert '"precision": "bf16"' in (tmp_path / "config.json").read_text() and records


KEPT_MEMORY = """
import sys, torch
from replicate.runtime import keep_freed_memory
def resident_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
if sys.argv[1] == "keep":
    keep_freed_memory()
block = torch.ones(4 << 20)  # 16 MB, every page touched
before = resident_mb()
del block
print(before - resident_mb())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_cpu_run_keeps_the_memory_a_step_frees_for_the_next() -> None:
    """glibc hands a freed 16 MB block back to the kernel (the next step faults its pages in
    again); after keep_freed_memory it stays with the process."""

    def released_mb(mode: str) -> float:
        run = subprocess.run([sys.executable, "-c", KEPT_MEMORY, mode], capture_output=True,
                             text=True, check=True)  # fmt: skip
        return float(run.stdout)

    assert released_mb("default") > 12
    assert released_mb("keep") < 1


@pytest.mark.parametrize("given, used", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_sleep_while_they_wait_unless_told_otherwise(given, used) -> None:
    """Spinning threads beside another busy process made a run 2.5x slower, sleeping ones 1.6x
    (results/bench/shared-machine-cpu.md); the setting must precede torch's import."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    code = "import replicate, os, torch; print(os.environ['OMP_WAIT_POLICY'])"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.stdout.strip() == used, done.stderr
