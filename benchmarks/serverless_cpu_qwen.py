"""Prefill and decode time of Qwen2.5-0.5B-Instruct's architecture on this machine's CPU.

The serverless spillover's service model (`sim.capacity.cpu_models`) needs the
prefill time per 1k prompt tokens and the decode time per output token of
Qwen2.5-0.5B-Instruct under the Hugging Face CPU container (transformers, float32,
one request at a time). The weights cannot be downloaded here, but the time of a
forward pass does not depend on the weights' values: this script builds the model
from its published configuration (huggingface.co/Qwen/Qwen2.5-0.5B-Instruct,
config.json: 24 layers, hidden 896, MLP 4864, 14 query and 2 key-value heads,
vocabulary 151,936, tied embeddings; 494 M parameters) with random weights and times
it with 1..N threads, in wall-clock and in CPU seconds (process time). CPU seconds
at one thread are the steadier figure on a shared machine, and the one a serverless
instance's share is counted in (Lambda meters vCPU-seconds per second). It is a
proxy for the real model (same shapes and kernels), not a measurement of a SageMaker
serverless instance, whose CPU share and memory bandwidth differ from this
machine's.

Needs `transformers` (not a project dependency): run it from an environment that has
it, for example `pip install transformers==4.49.0` (the container's version) into a
virtual environment that sees the project's torch.

Also times a fresh process importing torch and transformers and loading the weights
from local disk (saved as the Hub stores them, bfloat16 safetensors, and loaded in
float32): the part of a cold start after the download.

Prints one line per thread count, one for the load and, last, one JSON object with
the figures, `cpu_count` and package versions.

Usage: python benchmarks/serverless_cpu_qwen.py [--prompt-tokens 1000]
    [--output-tokens 32] [--threads 1] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from typing import Any

#: Qwen/Qwen2.5-0.5B-Instruct config.json (Hugging Face Hub).
QWEN25_05B_CONFIG: dict[str, Any] = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
    "hidden_act": "silu",
}


def _model() -> Any:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**QWEN25_05B_CONFIG)).to(torch.float32).eval()
    return model


def _time_one(model: Any, prompt_tokens: int, output_tokens: int) -> dict[str, float]:
    """Wall and CPU seconds of one greedy request's prefill and its decode per token."""
    import torch

    ids = torch.randint(0, QWEN25_05B_CONFIG["vocab_size"], (1, prompt_tokens))
    with torch.inference_mode():
        wall, cpu = time.perf_counter(), time.process_time()
        out = model(input_ids=ids, use_cache=True)
        prefill = (time.perf_counter() - wall, time.process_time() - cpu)
        past = out.past_key_values
        token = out.logits[:, -1:].argmax(-1)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(output_tokens):
            out = model(input_ids=token, past_key_values=past, use_cache=True)
            past = out.past_key_values
            token = out.logits[:, -1:].argmax(-1)
        decode = (time.perf_counter() - wall, time.process_time() - cpu)
    return {
        "prefill_wall_s": prefill[0],
        "prefill_cpu_s": prefill[1],
        "decode_wall_s": decode[0] / output_tokens,
        "decode_cpu_s": decode[1] / output_tokens,
    }


_LOAD = """
import time
start = time.perf_counter()
import torch
from transformers import AutoModelForCausalLM
imported = time.perf_counter()
AutoModelForCausalLM.from_pretrained({path!r}, torch_dtype=torch.float32)
print(imported - start, time.perf_counter() - imported)
"""


def _time_load(model: Any) -> tuple[float, float]:
    """(import seconds, load seconds) of a fresh process loading the weights from disk.

    The weights are saved as the Hub stores them (bfloat16 safetensors, about 1 GB)
    and loaded as the CPU container does (float32): what a cold start does after
    the download, which is not timed here.
    """
    import torch

    with tempfile.TemporaryDirectory() as root:
        model.to(torch.bfloat16).save_pretrained(root)
        model.to(torch.float32)
        out = subprocess.run(
            [sys.executable, "-c", _LOAD.format(path=root)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
    return float(out[-2]), float(out[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--output-tokens", type=int, default=32)
    parser.add_argument("--threads", default="1")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    model = _model()
    params = sum(p.numel() for p in model.parameters())
    rows: list[dict[str, float | int]] = []
    per_1k = 1000.0 / args.prompt_tokens
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        _time_one(model, 64, 4)  # warm-up: allocator, kernels
        runs = [
            _time_one(model, args.prompt_tokens, args.output_tokens) for _ in range(args.repeats)
        ]
        row: dict[str, float | int] = {"threads": threads}
        for name in ("prefill_wall_s", "prefill_cpu_s", "decode_wall_s", "decode_cpu_s"):
            scale = per_1k if name.startswith("prefill") else 1.0
            row[f"{name}_median"] = statistics.median(r[name] for r in runs) * scale
            row[f"{name}_min"] = min(r[name] for r in runs) * scale
        rows.append(row)
        print(
            f"threads {threads}: prefill per 1k tokens {row['prefill_wall_s_median']:.2f} s wall "
            f"(min {row['prefill_wall_s_min']:.2f}), {row['prefill_cpu_s_median']:.2f} CPU-s; "
            f"decode per token {row['decode_wall_s_median'] * 1000:.0f} ms wall "
            f"(min {row['decode_wall_s_min'] * 1000:.0f}), "
            f"{row['decode_cpu_s_median'] * 1000:.0f} CPU-ms"
        )
    import_s, load_s = _time_load(model)
    print(
        f"cold process: import torch + transformers {import_s:.1f} s, load weights {load_s:.1f} s"
    )
    print(
        json.dumps(
            {
                "import_s": import_s,
                "load_s": load_s,
                "model": "Qwen2.5-0.5B-Instruct architecture, random weights, float32",
                "parameters": params,
                "prompt_tokens": args.prompt_tokens,
                "output_tokens": args.output_tokens,
                "repeats": args.repeats,
                "rows": rows,
                "cpu_count": os.cpu_count(),
                "processor": platform.processor() or platform.machine(),
                "python": platform.python_version(),
                "torch": version("torch"),
                "transformers": version("transformers"),
            }
        )
    )


if __name__ == "__main__":
    main()
