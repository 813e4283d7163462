"""DoRA: LoRA with the weight's magnitude trained apart from its direction (peft's ``use_dora``).

Uses LoRA's fields; causal LMs only.
"""

from __future__ import annotations

from llmplay.training.methods import register_method
from llmplay.training.methods.lora import Lora


@register_method
class Dora(Lora):
    name = "dora"
    options = None  # LoRA's fields (lora_r, lora_alpha, ...): declared and checked by lora.py
    encoder = False
    use_dora = True
