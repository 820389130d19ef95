"""LoRA fine-tuning (peft through diffusers' PEFT integration) for personal footage on small GPUs.

:func:`add_lora` puts rank-``config.lora_rank`` adapters on the attention projections
(``to_q``, ``to_k``, ``to_v``, ``to_out.0``) and freezes everything else:

* stage ``image``: the spatial attentions of both UNets (reference and denoising);
* stage ``temporal``: the attentions of the denoising UNet's motion modules.

Export fuses the adapters: :func:`merged_unet` returns a plain copy of a UNet with
``W + B @ A * scale`` in its weights, so the exported model directory loads like any
other (no peft needed at inference) while training goes on with the adapters intact.
"""

from __future__ import annotations

import logging

import torch

from engine.errors import UserError

logger = logging.getLogger(__name__)

ADAPTER = "freeview_lora"
PROJECTIONS = r"(to_q|to_k|to_v|to_out\.0)"
TARGETS = {
    "image": rf"^(?!.*motion_modules).*\.{PROJECTIONS}$",
    "temporal": rf"^.*motion_modules.*\.{PROJECTIONS}$",
}


def add_lora(config, network) -> list[torch.nn.Parameter]:
    """Add adapters to the UNets of ``network`` for ``config.stage``; returns the only trainable parameters."""
    try:
        from peft import LoraConfig
    except ImportError:
        raise UserError("lora_rank needs peft (pip install peft)") from None
    if config.stage not in TARGETS:
        raise UserError(f"config: lora_rank is for the image and temporal stages, not {config.stage!r}")
    unets = [network.reference_unet, network.denoising_unet] if config.stage == "image" else [network.denoising_unet]
    for module in (network.reference_unet, network.denoising_unet, network.pose_guider, network.pcm):
        module.requires_grad_(False)
    lora = LoraConfig(r=config.lora_rank, lora_alpha=config.lora_rank, init_lora_weights="gaussian",
                      target_modules=TARGETS[config.stage])
    params = []
    for unet in unets:
        unet.add_adapter(lora, adapter_name=ADAPTER)
        # add_adapter freezes the base weights and leaves only lora_A / lora_B trainable
        params += [p for n, p in unet.named_parameters() if p.requires_grad and ".lora_" in n]
    if not params:
        raise UserError(f"lora: no attention projections found for stage {config.stage}")
    logger.info("LoRA rank %d: %d trainable tensors, %.2f M parameters", config.lora_rank, len(params),
                sum(p.numel() for p in params) / 1e6)
    return params


def has_lora(module: torch.nn.Module) -> bool:
    from peft.tuners.lora import LoraLayer

    return any(isinstance(m, LoraLayer) for m in module.modules())


@torch.no_grad()
def merged_state_dict(unet: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The UNet's state dict with every adapter folded into its base weight, under the plain key names (on CPU)."""
    from peft.tuners.lora import LoraLayer

    state = {}
    for key, value in unet.state_dict().items():
        if ".lora_" in key:
            continue
        state[key.replace(".base_layer.", ".")] = value.detach().to("cpu", copy=True)
    for name, module in unet.named_modules():
        if isinstance(module, LoraLayer) and not module.merged:
            for adapter in module.active_adapters:
                if adapter in module.lora_A:
                    delta = module.get_delta_weight(adapter).to("cpu", state[f"{name}.weight"].dtype)
                    state[f"{name}.weight"] += delta
    return state


def merged_unet(unet):
    """A plain copy of ``unet`` (same class and config, on CPU) with the adapters fused into its weights."""
    clean = type(unet).from_config(unet.config)
    clean.load_state_dict(merged_state_dict(unet), strict=True)
    return clean if clean.dtype == unet.dtype else clean.to(unet.dtype)
