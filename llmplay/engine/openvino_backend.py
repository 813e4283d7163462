"""OpenVINO GenAI as a decoder of one reply, measured against the fast decoder (bench/generation.py).

Optional: nothing in llmplay needs it. The runtime installs as wheels (``pip install openvino-genai``); a
model is converted once by optimum-intel's exporter into ``<cache>/openvino/<converted folder>-<precision>``
(written to a temporary folder beside it, then renamed: a reader never sees half a conversion). The exporter
pins transformers below llmplay's (optimum-intel 2.2: transformers<5.6), so it runs in a subprocess from a
separate folder of packages (``LLMPLAY_OPENVINO_TOOLS``, default ``<cache>/ov-tools``), installed with::

    pip install --target .cache/ov-tools --no-deps optimum-intel==2.2.0 optimum==2.3.0 nncf==3.4.0 \
        "transformers>=5.5,<5.6" "huggingface-hub>=1.5,<1.22" "tokenizers>=0.22,<=0.23.0" ninja pydot pyparsing

The prompt is rendered and tokenized by llmplay (the same chat template and ids as every other backend);
OpenVINO decodes from those ids and hands each new token to ``on_token``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

PRECISIONS = ("int8", "fp16")
# optimum-intel's CLI, with the optional integrations that would import llmplay's newer datasets and
# sentence-transformers (incompatible with the exporter's pinned huggingface-hub) turned off.
_EXPORT = """
import sys
import optimum.intel.utils.import_utils as u
u._datasets_available = False
u._sentence_transformers_available = False
from optimum.commands.optimum_cli import main
sys.argv = ["optimum-cli", "export", "openvino", *sys.argv[1:]]
main()
"""


def available() -> bool:
    try:
        import openvino_genai  # noqa: F401
    except ImportError:
        return False
    return True


def tools_dir(cache_dir: Path) -> Path:
    return Path(os.environ.get("LLMPLAY_OPENVINO_TOOLS") or Path(cache_dir) / "ov-tools")


def converted_dir(cache_dir: Path, source: Path, precision: str) -> Path:
    """Where ``source`` (a converted transformers folder, named by its content) lives in OpenVINO form."""
    return Path(cache_dir) / "openvino" / f"{Path(source).name}-{precision}"


def convert(source: Path, cache_dir: Path, precision: str) -> tuple[Path, float]:
    """The OpenVINO folder of ``source`` in ``precision`` and the seconds spent converting (0 when cached)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    target = converted_dir(cache_dir, source, precision)
    if (target / "openvino_model.xml").exists():
        return target, 0.0
    tools = tools_dir(cache_dir)
    if not (tools / "optimum" / "intel").is_dir():
        raise RuntimeError(f"OpenVINO export tools are not installed in {tools} (see llmplay.engine.openvino_backend)")
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [sys.executable, "-c", _EXPORT, "--model", str(source), "--task", "text-generation-with-past"]
    command += ["--weight-format", precision, str(partial)]
    env = {**os.environ, "PYTHONPATH": str(tools)}
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not (partial / "openvino_model.xml").exists():
        shutil.rmtree(partial, ignore_errors=True)
        raise RuntimeError(f"OpenVINO export failed: {(proc.stderr or proc.stdout)[-2000:]}")
    try:
        partial.rename(target)
    except OSError:  # another process finished the same conversion first: keep theirs
        shutil.rmtree(partial, ignore_errors=True)
    return target, time.perf_counter() - started


class OpenVinoDecoder:
    """One OpenVINO GenAI pipeline over a converted folder; one reply at a time."""

    def __init__(self, folder: Path, precision: str, threads: int = 1):
        import openvino_genai

        self.genai = openvino_genai
        self.precision = precision
        self.threads = threads
        self.pipe = openvino_genai.LLMPipeline(str(folder), "CPU", INFERENCE_NUM_THREADS=threads)

    @property
    def label(self) -> str:
        return f"openvino {self.precision}" + (f" {self.threads} threads" if self.threads != 1 else "")

    def config(self, params, stop_ids: set[int]):
        config = self.genai.GenerationConfig()
        config.max_new_tokens = params.max_new_tokens
        config.stop_token_ids = set(stop_ids)
        config.do_sample = not params.greedy
        if not params.greedy:
            config.temperature = params.temperature
            config.top_p = params.top_p
            if params.top_k:
                config.top_k = params.top_k
            if params.seed is not None:
                config.rng_seed = params.seed
        if params.repetition_penalty != 1.0:
            config.repetition_penalty = params.repetition_penalty
        return config

    def decode(self, prompt_ids: list[int], params, stop_ids: set[int], on_token=None, done=None) -> list[int]:
        """The new tokens (an end-of-sequence token included, as transformers returns it); ``on_token`` sees
        each one as it comes, ``done(tokens)`` returning True ends decoding after the current token."""
        import numpy as np
        import openvino as ov

        genai, tokens = self.genai, []

        class Streamer(genai.StreamerBase):
            def write(self, token):
                for t in token if isinstance(token, list) else [token]:
                    tokens.append(int(t))
                    if on_token is not None:
                        on_token(int(t))
                if done is not None and done(tokens):
                    return genai.StreamingStatus.CANCEL
                return genai.StreamingStatus.RUNNING

            def end(self):
                pass

        ids = np.array([prompt_ids], dtype=np.int64)
        inputs = genai.TokenizedInputs(ov.Tensor(ids), ov.Tensor(np.ones_like(ids)))
        self.pipe.generate(inputs, self.config(params, stop_ids), Streamer())
        return tokens
