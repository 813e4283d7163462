"""A lean decoding loop for one streamed reply of a llama-family (SmolLM2) or Gemma-3 text model.

Why: transformers' ``generate`` spends more time in Python and generic layers than in the matrix
products when one short reply decodes on a CPU. This loop keeps only what a decoder step needs:
fused q/k/v and gate/up weights, a preallocated key/value cache and one attention call per layer.
Its weights are a converted copy of the loaded model's (after any LoRA adapter was merged into it), in
a chosen precision: float16 halves the bytes read per token, which is what bounds decoding speed here
(bench/generation.py measures the speed and how many replies still equal the float32 reference).

The prompt itself runs through the transformers model (the reference numerics, and every architecture
detail of the prompt pass); its keys and values are copied into this cache, then each new token is one
``step``. Only the architectures in ``SUPPORTED`` run here; others stay on transformers.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from llmplay.backend_names import PRECISIONS
from llmplay.engine.sampling import decode_loop

SUPPORTED = ("llama", "gemma3_text")
# Decoding steps run on one core. Measured here (2 cores, SmolLM2 float16): a step is one row times each
# weight matrix, so it is memory-bound; in a thread other than the main one (every request is), two OpenMP
# threads ran at ~30 tok/s and one at ~40, because libgomp stops its workers spinning once the process has
# more OpenMP threads than cores. One thread also leaves the other core to the server and a second stream.
# (Since then finished torch work gives its thread's OpenMP workers back, llmplay/openmp.py, so that state is rarer;
# two threads were not measured again.)
DECODE_THREADS = 1


@contextmanager
def _intra_op_threads(n: int):
    """torch's intra-op thread count for this thread while the block runs (the setting is per thread for
    threads that already ran torch code, so other requests keep theirs)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def unsupported_reason(model) -> str | None:
    """Why ``model`` cannot use this loop (None when it can)."""
    config = getattr(model, "config", None)
    kind = getattr(config, "model_type", None)
    if kind not in SUPPORTED:
        return f"architecture {kind!r} is not one the fast decoder implements ({', '.join(SUPPORTED)})"
    if getattr(model, "peft_config", None):  # a soft prompt stays a PeftModel: its virtual tokens are extra inputs
        return "a prompt-tuning adapter adds virtual tokens the fast decoder does not model"
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        return "biased attention or MLP layers are not implemented by the fast decoder"
    for rope in _rope_settings(config).values():
        if rope.get("rope_type", "default") != "default":
            return f"rope scaling {rope.get('rope_type')!r} is not implemented by the fast decoder"
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "attn_logit_softcapping", None):
        return "logit soft-capping is not implemented by the fast decoder"
    if str(next(model.parameters()).device) != "cpu":
        return "the fast decoder runs on CPU only"
    return None


def _rope_settings(config) -> dict[str, dict]:
    """Rotary settings per layer type ("default" for models with one kind of layer)."""
    rope = getattr(config, "rope_parameters", None) or {}
    if rope and all(isinstance(v, dict) for v in rope.values()):
        return rope  # Gemma-3: {"sliding_attention": {...}, "full_attention": {...}}
    return {"default": rope or {"rope_theta": getattr(config, "rope_theta", 10000.0)}}


class _Linear:
    """y = x W^T in the chosen precision, with float32 in and out (the residual stream stays float32)."""

    def __init__(self, weight, precision: str):
        import torch

        self.precision = precision
        if precision == "float32":
            # (in, out) layout: a single row times it reads memory about twice as fast as (out, in) here.
            self.weight = weight.detach().t().contiguous().float()
        else:
            dtype = torch.float16 if precision == "float16" else torch.bfloat16
            self.weight = weight.detach().to(dtype).contiguous()
            self.dtype = dtype

    def __call__(self, x):
        import torch
        import torch.nn.functional as F

        if self.precision == "float32":
            return torch.matmul(x, self.weight)
        return F.linear(x.to(self.dtype), self.weight).float()

    @property
    def nbytes(self) -> int:
        return self.weight.numel() * self.weight.element_size()


@dataclass
class _Layer:
    attn_norm: object
    qkv: _Linear
    out: _Linear
    mlp_norm: object
    gate_up: _Linear
    down: _Linear
    theta: float
    window: int | None = None  # sliding-window layers attend to this many latest positions
    # Gemma-3 only: norms after attention / before and after the MLP, and per-head q / k norms.
    post_attn_norm: object = None
    post_mlp_norm: object = None
    q_norm: object = None
    k_norm: object = None


class FastDecoder:
    """Converted weights of one loaded model, in one precision. Thread-safe to share; one reply at a time
    (callers hold the loaded model's lock, as for transformers)."""

    def __init__(self, model, precision: str = "float16"):
        import torch

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
        reason = unsupported_reason(model)
        if reason:
            raise ValueError(reason)
        started = time.perf_counter()
        self.model = model
        self.precision = precision
        config = model.config
        self.gemma = config.model_type == "gemma3_text"
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.intermediate = config.intermediate_size
        self.eps = float(config.rms_norm_eps)
        # Gemma-3 scales queries by query_pre_attn_scalar ** -0.5 and embeddings by sqrt(hidden size).
        self.scale = float(getattr(config, "query_pre_attn_scalar", None) or self.head_dim) ** -0.5
        body = model.model
        self.embed_scale = float(getattr(body.embed_tokens, "scalar_embed_scale", 1.0)) if self.gemma else 1.0
        ropes = _rope_settings(config)
        layer_types = getattr(config, "layer_types", None) or ["default"] * len(body.layers)

        def norm(module):  # Gemma's RMSNorm multiplies by (1 + weight)
            weight = module.weight.detach().float()
            return weight + 1.0 if self.gemma else weight

        with torch.no_grad():
            self.layers = []
            for layer, kind in zip(body.layers, layer_types):
                attn, mlp = layer.self_attn, layer.mlp
                qkv = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight])
                gate_up = torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight])
                converted = _Layer(
                    attn_norm=norm(layer.input_layernorm),
                    qkv=_Linear(qkv, precision),
                    out=_Linear(attn.o_proj.weight, precision),
                    mlp_norm=norm(layer.pre_feedforward_layernorm if self.gemma else layer.post_attention_layernorm),
                    gate_up=_Linear(gate_up, precision),
                    down=_Linear(mlp.down_proj.weight, precision),
                    theta=float(ropes.get(kind, ropes.get("default", {})).get("rope_theta", 10000.0)),
                )
                if self.gemma:
                    converted.window = config.sliding_window if kind == "sliding_attention" else None
                    converted.post_attn_norm = norm(layer.post_attention_layernorm)
                    converted.post_mlp_norm = norm(layer.post_feedforward_layernorm)
                    converted.q_norm, converted.k_norm = norm(attn.q_norm), norm(attn.k_norm)
                self.layers.append(converted)
            self.embed = body.embed_tokens.weight.detach().float()
            self.norm = norm(body.norm)
            self.head = _Linear(model.lm_head.weight, precision)
        self._rope_lock = threading.Lock()
        self._tables: dict[float, tuple] = {}
        self.convert_s = time.perf_counter() - started

    @property
    def nbytes(self) -> int:
        """Bytes of converted weights read per decoded token."""
        linears = [lin for layer in self.layers for lin in (layer.qkv, layer.out, layer.gate_up, layer.down)]
        return sum(lin.nbytes for lin in linears) + self.head.nbytes

    # ---- rotary position tables, grown on demand ---------------------------------------------------------
    def _rope(self, theta: float, length: int):
        """(cos, sin) tables of at least ``length`` positions for base ``theta``."""
        import torch

        with self._rope_lock:
            cos, sin = self._tables.get(theta, (None, None))
            if cos is None or cos.shape[0] < length:
                size = max(length, 2 * (cos.shape[0] if cos is not None else 1024))
                exponents = torch.arange(0, self.head_dim, 2, dtype=torch.int64).float() / self.head_dim
                freqs = torch.outer(torch.arange(size).float(), 1.0 / (theta**exponents))
                angles = torch.cat([freqs, freqs], dim=-1)
                cos, sin = self._tables[theta] = (angles.cos(), angles.sin())
            return cos, sin

    # ---- decoding ------------------------------------------------------------------------------------------
    def start(self, prompt_ids: list[int], max_new_tokens: int) -> DecodeState:
        """Run the prompt (through the transformers model) and return a state whose ``logits`` predict the
        first new token."""
        import torch
        from transformers import DynamicCache

        length = len(prompt_ids) + max_new_tokens + 1
        shape = (len(self.layers), self.kv_heads, length, self.head_dim)
        keys, values = torch.zeros(shape), torch.zeros(shape)
        cache = DynamicCache(config=self.model.config)
        out = self.model(input_ids=torch.tensor([prompt_ids]), cache=cache, use_cache=True)
        n = len(prompt_ids)
        for i, layer in enumerate(cache.layers):
            kept = layer.keys.shape[-2]  # a sliding-window layer keeps only the latest positions
            keys[i, :, n - kept : n] = layer.keys[0].float()
            values[i, :, n - kept : n] = layer.values[0].float()
        for theta in {layer.theta for layer in self.layers}:
            self._rope(theta, length)
        # Per-layer views, so a step indexes no 4-d tensor.
        return DecodeState(keys=list(keys), values=list(values), position=n, logits=out.logits[0, -1].float())

    def decode(self, prompt_ids: list[int], max_new_tokens: int, sampler, stop_ids: set[int], on_token=None, done=None):
        """The new tokens (an end-of-sequence token included, as transformers returns it).

        ``on_token(token)`` sees each one as it comes; ``done(tokens)`` returning True ends decoding after
        the current token (a stop string completed, the reader went away)."""
        state = self.start(prompt_ids, max_new_tokens)  # the prompt pass uses every core

        def step(token: int):
            self.step(state, token)
            return state.logits

        with _intra_op_threads(DECODE_THREADS):
            return decode_loop(sampler, prompt_ids, state.logits, step, max_new_tokens, stop_ids, on_token, done)

    def step(self, state: DecodeState, token: int) -> None:
        """Feed one token; ``state.logits`` then predicts the next one."""
        import torch
        import torch.nn.functional as F

        pos = state.position
        heads, kv, dim, inter, eps = self.heads, self.kv_heads, self.head_dim, self.intermediate, self.eps
        half, q_width, qk_width = dim // 2, self.heads * self.head_dim, (self.heads + self.kv_heads) * self.head_dim
        gemma = self.gemma
        tables = {theta: (cos[pos], sin[pos]) for theta, (cos, sin) in self._tables.items()}

        def rms(x, weight):  # transformers' RMSNorm in float32 (Gemma's 1 + weight is folded in at conversion)
            return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

        x = self.embed[token].unsqueeze(0)  # (1, hidden)
        if gemma:
            x = x * self.embed_scale
        for layer, keys, values in zip(self.layers, state.keys, state.values):
            qkv = layer.qkv(rms(x, layer.attn_norm))[0]
            qk = qkv[:qk_width].view(heads + kv, dim)
            if gemma:  # per-head norms before the rotary embedding
                qk = torch.cat((rms(qk[:heads], layer.q_norm), rms(qk[heads:], layer.k_norm)))
            cos, sin = tables[layer.theta]
            qk = qk * cos + torch.cat((-qk[:, half:], qk[:, :half]), dim=-1) * sin  # rotary, q and k at once
            keys[:, pos] = qk[heads:]
            values[:, pos] = qkv[qk_width:].view(kv, dim)
            first = 0 if layer.window is None else max(0, pos + 1 - layer.window)
            q = qk[:heads].view(kv, heads // kv, dim) * self.scale  # grouped-query: heads // kv per kv head
            k, v = keys[:, first : pos + 1], values[:, first : pos + 1]
            attended = torch.matmul(torch.softmax(torch.matmul(q, k.transpose(1, 2)), dim=-1), v)
            out = layer.out(attended.reshape(1, q_width))
            x = x + (rms(out, layer.post_attn_norm) if gemma else out)
            gate_up = layer.gate_up(rms(x, layer.mlp_norm))
            gate = F.gelu(gate_up[:, :inter], approximate="tanh") if gemma else F.silu(gate_up[:, :inter])
            out = layer.down(gate * gate_up[:, inter:])
            x = x + (rms(out, layer.post_mlp_norm) if gemma else out)
        state.logits = self.head(rms(x, self.norm))[0]
        state.position = pos + 1


@dataclass
class DecodeState:
    keys: object
    values: object
    position: int
    logits: object
