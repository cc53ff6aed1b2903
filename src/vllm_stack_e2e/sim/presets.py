"""Engine presets: the simulated engine sized like a GPU serving a model, from stated numbers.

A preset is hardware plus the vLLM defaults that hardware gets: the KV cache in tokens (derived
from the GPU's memory, `gpu_memory_utilization`, the model's weights and its KV bytes per token),
the step's token budget and `max_num_seqs` (vLLM's defaults for that GPU tier), and the cost
model's two timings (prefill tokens per second, the decode step). Every number and its source is
in docs/engines.md; `derivation()` prints the arithmetic.

On the lab a run picks one with `ENGINE=<name>` (default `lab`); the lab's data plane reads it
from the run's namespace (annotation `ANNOTATION`) and starts that namespace's engines with the
preset's `env()`. The pod's own environment still wins, and a `--max-num-seqs` /
`--max-num-batched-tokens` in the pod's command wins over the preset's defaults, as a flag wins
over vLLM's defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ANNOTATION = "vllm-stack-e2e.io/engine"
GIB = 1024**3
BLOCK_SIZE = 16  # vLLM's KV block on CUDA (v0.10–v0.31; sim.scheduler)


@dataclass(frozen=True)
class Gpu:
    name: str
    memory_gib: float  # total device memory as the driver reports it (torch.cuda.mem_get_info)
    source: str


@dataclass(frozen=True)
class Model:
    name: str
    params_billion: float
    layers: int
    kv_heads: int
    head_dim: int
    dtype_bytes: int  # bf16: 2
    source: str

    @property
    def weights_gib(self) -> float:
        return self.params_billion * 1e9 * self.dtype_bytes / GIB

    @property
    def kv_bytes_per_token(self) -> int:
        """Keys and values of every layer: 2 × layers × KV heads × head size × bytes."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.dtype_bytes


@dataclass(frozen=True)
class Preset:
    """One engine: a GPU and a model (derived), or fixed numbers (`kv_tokens_fixed`, the lab's own)."""

    name: str
    summary: str
    prefill_tokens_per_s: float
    inter_token_latency: float  # seconds a decode step lasts
    timing_source: str
    gpu: Gpu | None = None
    model: Model | None = None
    gpu_memory_utilization: float = 0.9
    # What vLLM keeps outside weights and KV: the profile run's activation peak, CUDA graphs,
    # the non-torch allocations (NCCL, cuBLAS workspaces).
    overhead_gib: float = 0.0
    overhead_source: str = ""
    kv_tokens_fixed: int | None = None

    @property
    def large_gpu(self) -> bool:
        """vLLM's tier for `vllm serve`'s defaults: 70 GiB or more and not an A100 (docs/metrics.md)."""
        return self.gpu is not None and self.gpu.memory_gib >= 70 and "A100" not in self.gpu.name

    @property
    def max_num_seqs(self) -> int:
        """vLLM's default for the GPU's tier (the lab's engine: the smaller tier's)."""
        return 1024 if self.large_gpu else 256

    @property
    def max_num_batched_tokens(self) -> int:
        """vLLM's step budget for the GPU's tier, as `vllm serve` sets it."""
        return 8192 if self.large_gpu else 2048

    @property
    def kv_cache_tokens(self) -> int:
        """KV capacity in tokens, whole blocks: (memory × utilization − weights − overhead) / bytes per token."""
        if self.kv_tokens_fixed is not None:
            return self.kv_tokens_fixed
        assert self.gpu is not None and self.model is not None
        free = (self.gpu.memory_gib * self.gpu_memory_utilization - self.model.weights_gib - self.overhead_gib) * GIB
        return int(free // self.model.kv_bytes_per_token) // BLOCK_SIZE * BLOCK_SIZE

    def running_at_most(self, tokens_per_request: int) -> int:
        """How many requests of this size can run at once: max_num_seqs, or fewer when their KV
        (whole blocks of prompt + output) does not fit — the step budget only ever lowers it."""
        blocks = math.ceil(tokens_per_request / BLOCK_SIZE)
        return max(1, min(self.max_num_seqs, self.kv_cache_tokens // BLOCK_SIZE // blocks))

    def env(self) -> dict[str, str]:
        """The simulator's settings for an engine of this preset (sim.cli's environment twins)."""
        return {"VLLM_SIM_KV_CACHE_TOKENS": str(self.kv_cache_tokens),
                "VLLM_SIM_PREFILL_TOKENS_PER_S": f"{self.prefill_tokens_per_s:g}",
                "VLLM_SIM_INTER_TOKEN_LATENCY": f"{self.inter_token_latency:g}",
                "VLLM_SIM_DEFAULT_MAX_NUM_SEQS": str(self.max_num_seqs),
                "VLLM_SIM_DEFAULT_MAX_NUM_BATCHED_TOKENS": str(self.max_num_batched_tokens)}

    def derivation(self) -> str:
        """The KV arithmetic in one line, for logs, run.json and the report."""
        if self.gpu is None or self.model is None:
            return f"{self.kv_cache_tokens} KV tokens (fixed: {self.summary})"
        m, g = self.model, self.gpu
        return (f"({g.memory_gib:g} GiB × {self.gpu_memory_utilization:g} − {m.weights_gib:.2f} GiB weights − "
                f"{self.overhead_gib:g} GiB overhead) / {m.kv_bytes_per_token // 1024} KiB per token "
                f"(2 × {m.layers} layers × {m.kv_heads} KV heads × {m.head_dim} × {m.dtype_bytes} B) "
                f"= {self.kv_cache_tokens} tokens")

    def record(self) -> dict[str, object]:
        """What run.json keeps about the engine a run simulated."""
        return {"name": self.name, "summary": self.summary, "kv_cache_tokens": self.kv_cache_tokens,
                "kv_derivation": self.derivation(), "max_num_seqs": self.max_num_seqs,
                "max_num_batched_tokens": self.max_num_batched_tokens,
                "prefill_tokens_per_s": self.prefill_tokens_per_s, "inter_token_latency": self.inter_token_latency,
                "timing_source": self.timing_source}


# Sources and arithmetic: docs/engines.md.
H100_80GB = Gpu("NVIDIA H100 80GB HBM3", 79.19, "vLLM's startup log on an H100: total 79.19 GiB (v0.10.2)")
L4 = Gpu("NVIDIA L4", 22.05, "vLLM's startup log on an L4: total 22.05 GiB (vllm-project/vllm#33297)")
LLAMA_31_8B = Model("meta-llama/Llama-3.1-8B-Instruct", 8.03, layers=32, kv_heads=8, head_dim=128, dtype_bytes=2,
                    source="config.json: 32 layers, 8 KV heads, head_dim 128, bfloat16; 8.03B parameters")
QWEN_25_15B = Model("Qwen/Qwen2.5-1.5B-Instruct", 1.544, layers=28, kv_heads=2, head_dim=128, dtype_bytes=2,
                    source="config.json: 28 layers, 2 KV heads, hidden 1536 / 12 heads = 128, bfloat16; 1.544B parameters")

PRESETS: dict[str, Preset] = {p.name: p for p in (
    # The lab's own engine (the default): small on purpose, so the fast profile's queue forms within
    # seconds of load — about 7 of the tutorial's 3000-token requests run at once.
    Preset("lab", "the lab's small engine, sized so a fast profile's queue forms in seconds",
           prefill_tokens_per_s=8000.0, inter_token_latency=0.03,
           timing_source="the simulator's defaults", kv_tokens_fixed=24576),
    Preset("h100-llama-3.1-8b", "one H100 80GB serving the page's Llama-3.1-8B-Instruct with vLLM's defaults",
           prefill_tokens_per_s=32000.0, inter_token_latency=0.012,
           timing_source="vllm bench serve, Qwen3-8B bf16 on one H100, vLLM 0.30.0: TTFT of a 2048/8192-token "
                         "prompt 61/254 ms (≈ 32k tokens/s); ITL 11.9 ms at 32 streams of 2k context, 12.0 ms at 128 "
                         "of short context",
           gpu=H100_80GB, model=LLAMA_31_8B, overhead_gib=2.6,
           overhead_source="logged non-KV memory: 2.3 GiB (vLLM 0.9.1, 442,160 tokens on an A100 80GB) to 4.2 GiB "
                           "(vLLM 0.30.0, Qwen3-8B on an H100)"),
    Preset("l4-qwen2.5-1.5b", "one L4 24GB serving Qwen2.5-1.5B-Instruct with vLLM's defaults",
           prefill_tokens_per_s=16000.0, inter_token_latency=0.019,
           timing_source="derived, not measured: prefill at 40 % of the L4's 121 TFLOPS (3.1 GFLOP per token); "
                         "decode from Qwen2.5-0.5B on an L4 (vLLM 0.23.0, 7.1 ms at 32 streams) scaled by "
                         "weight bytes over 300 GB/s",
           gpu=L4, model=QWEN_25_15B, overhead_gib=1.6,
           overhead_source="estimated: the 2048-token profile run's activations and CUDA graphs (1.0–2.0 GiB)"),
)}
DEFAULT = "lab"


def get(name: str) -> Preset:
    """The preset called `name`; KeyError naming the choices otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"no engine preset {name!r} (choose one of {', '.join(PRESETS)})") from None
