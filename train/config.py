"""Typed training configuration: dataclasses are the source of truth, YAML only overrides."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from engine.errors import UserError

logger = logging.getLogger(__name__)

STAGES = ("vae", "image", "temporal", "decoder", "refiner")
# Settings that define the model a run starts from: left out of a config (None), they are the starting model's
# (``init_from``), else the preset's, else FALLBACKS. See :func:`inherit_from_model`.
INHERITED = ("architecture", "resolution", "prediction_type", "zero_terminal_snr", "sampling_steps", "sampling_guidance",
             "sampling_noise_correlation")
FALLBACKS = dict(architecture="default", resolution=128, prediction_type="epsilon", sampling_steps=1, sampling_guidance=1.0,
                 sampling_noise_correlation=0.0)
OBJECTIVE = ("prediction_type", "zero_terminal_snr")  # what the denoiser was trained to predict, on which schedule


@dataclass
class TrainConfig:
    """One training run. ``stage``: ``vae`` (the small autoencoder of the embedded default),
    ``image`` (stage 1: denoising UNet, reference UNet, pose guider and PCM), ``temporal``
    (stage 2: motion modules only, clips of ``frames`` frames) or ``decoder`` (the VAE decoder
    only, on the latents the trained model samples with ``sampling_steps``/``sampling_guidance``:
    the encoder, hence the latent space, stays as it is) or ``refiner`` (the pixel-space appearance
    refiner alone, on the frames the trained model renders that way; added, zero-initialised, when the
    model has none)."""

    preset: str = "tiny-synthetic"   # the preset these values started from (informational)
    architecture: str | None = None  # engine.models.configs preset (None: init_from's, else the preset's)
    init_from: str | None = None     # model directory to start from (previous stage, converted weights)
    stage: str = "image"
    data: str = "data/synth"         # dataset root (freeview synth make / freeview train prepare)
    output_dir: str = "runs/default"
    resolution: int | None = None    # None: init_from's resolution, else the preset's
    steps: int = 2000
    batch_size: int = 8
    frames: int = 1
    max_refs: int = 3
    reference_shots: str = "other"    # where references come from: "other" shots than the target's, or "any" other clip
    learning_rate: float = 2e-4
    warmup_steps: int = 100
    lr_schedule: str = "constant"    # after the warmup: "constant", or "cosine" (decays to 0 at the last step)
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    prediction_type: str | None = None  # "epsilon" or "v_prediction"; None: init_from's, else epsilon
    snr_gamma: float | None = None     # Min-SNR-gamma loss weighting (5.0 is the paper's value)
    zero_terminal_snr: bool | None = None  # rescale the noise schedule to zero terminal SNR (None: keep the model's)
    # An objective (prediction_type, zero_terminal_snr) other than init_from's is refused unless this says "allow".
    objective_change: str = "refuse"
    # Draw some timesteps more often than others (diffusers' train_text_to_image_sdxl names): "later" weighs the
    # noisiest `portion` of the schedule `multiplier` times, "earlier" the cleanest; "none" draws them uniformly.
    timestep_bias_strategy: str = "none"
    timestep_bias_portion: float = 0.25
    timestep_bias_multiplier: float = 1.0
    reference_dropout: float = 0.1
    # The appearance input of the pose guider (engine.warps: the references warped into the target pose, as latents):
    # "keep" trains the model as it is; "warp" adds it (zero-initialised) to a model that lacks it.
    appearance: str = "keep"
    appearance_learning_rate: float | None = None  # the appearance input's own learning rate (None: learning_rate)
    framing_loss_weight: float = 0.0   # auxiliary loss (train/framing.py, not in the paper): the PCM prefers the
                                       # reference framed like the target; 0 trains the PCM by the diffusion loss alone
    mixed_precision: str = "no"        # "no" | "fp16" | "bf16"
    gradient_checkpointing: bool = False
    optimizer: str = "adamw"           # "adamw" | "adamw8bit" (bitsandbytes, GPU)
    ema_decay: float | None = None
    lora_rank: int | None = None       # LoRA fine-tuning of the UNets' attention (peft)
    train_image_encoder: bool = False
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    sample_every: int = 0
    log_every: int = 10
    num_workers: int = 0
    seed: int = 0
    kl_weight: float = 1e-6            # vae stage only
    gradient_loss_weight: float = 0.0  # refiner stage: L1 between the output's and the frame's image gradients
    sampling_steps: int | None = None      # how the trained model will be sampled (its recommended steps and guidance,
    sampling_guidance: float | None = None # as `freeview train export` records them): the previews and the decoder
                                           # stage; None: init_from's sampling.json, else the preset's, else 1 / 1.0
    sampling_noise_correlation: float | None = None  # and its starting noise's correlation across frames (None:
                                                     # init_from's sampling.json, else 0)

    def validate(self) -> "TrainConfig":
        def bad(field: str, value, why: str):
            raise UserError(f"config: {field}={value!r} {why}")

        if self.stage not in STAGES:
            bad("stage", self.stage, f"is not one of {', '.join(STAGES)}")
        if self.prediction_type not in (None, "epsilon", "v_prediction"):
            bad("prediction_type", self.prediction_type, "must be 'epsilon' or 'v_prediction'")
        if self.objective_change not in ("refuse", "allow"):
            bad("objective_change", self.objective_change, "must be 'refuse' or 'allow'")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            bad("mixed_precision", self.mixed_precision, "must be 'no', 'fp16' or 'bf16'")
        if self.reference_shots not in ("other", "any"):
            bad("reference_shots", self.reference_shots, "must be 'other' or 'any'")
        if self.appearance not in ("keep", "warp"):
            bad("appearance", self.appearance, "must be 'keep' or 'warp'")
        if self.appearance_learning_rate is not None and not (
                isinstance(self.appearance_learning_rate, (int, float)) and math.isfinite(self.appearance_learning_rate)
                and self.appearance_learning_rate > 0):
            bad("appearance_learning_rate", self.appearance_learning_rate, "must be a positive number")
        if self.lr_schedule not in ("constant", "cosine"):
            bad("lr_schedule", self.lr_schedule, "must be 'constant' or 'cosine'")
        if self.optimizer not in ("adamw", "adamw8bit"):
            bad("optimizer", self.optimizer, "must be 'adamw' or 'adamw8bit'")
        for name in ("steps", "batch_size", "frames", "max_refs", "checkpoint_every", "keep_checkpoints", "log_every", "resolution",
                     "sampling_steps"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                bad(name, getattr(self, name), "must be at least 1")
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            bad("learning_rate", self.learning_rate, "must be a positive number")
        if not (math.isfinite(self.framing_loss_weight) and self.framing_loss_weight >= 0):
            bad("framing_loss_weight", self.framing_loss_weight, "must be a number >= 0")
        if not 0 <= self.reference_dropout < 1:
            bad("reference_dropout", self.reference_dropout, "must be in [0, 1)")
        if self.snr_gamma is not None and not self.snr_gamma > 0:
            bad("snr_gamma", self.snr_gamma, "must be positive")
        if self.timestep_bias_strategy not in ("none", "later", "earlier"):
            bad("timestep_bias_strategy", self.timestep_bias_strategy, "must be 'none', 'later' or 'earlier'")
        if not 0 < self.timestep_bias_portion <= 1:
            bad("timestep_bias_portion", self.timestep_bias_portion, "must be in (0, 1]")
        if not (math.isfinite(self.timestep_bias_multiplier) and self.timestep_bias_multiplier > 0):
            bad("timestep_bias_multiplier", self.timestep_bias_multiplier, "must be a positive number")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            bad("ema_decay", self.ema_decay, "must be in (0, 1)")
        if self.lora_rank is not None and self.lora_rank < 1:
            bad("lora_rank", self.lora_rank, "must be at least 1")
        if self.lora_rank is not None and self.stage not in ("image", "temporal"):
            bad("lora_rank", self.lora_rank, f"adapts the UNets: it applies to the image and temporal stages, not {self.stage!r}")
        if self.sampling_noise_correlation is not None and not 0 <= self.sampling_noise_correlation <= 1:
            bad("sampling_noise_correlation", self.sampling_noise_correlation, "must be in [0, 1]")
        if self.sampling_guidance is not None and not 1 <= self.sampling_guidance < math.inf:
            bad("sampling_guidance", self.sampling_guidance, "must be a finite number >= 1 (1 turns classifier-free guidance off)")
        from engine.limits import MAX_SEED, MAX_SIDE

        if not 0 <= self.seed <= MAX_SEED:
            bad("seed", self.seed, f"must be in 0..{MAX_SEED}")
        multiple = size_multiple(self.architecture)
        if self.resolution is not None and (self.resolution > MAX_SIDE or self.resolution % multiple):
            which = f" for architecture {self.architecture}" if self.architecture else ""
            bad("resolution", self.resolution, f"must be a multiple of {multiple}{which}, at most {MAX_SIDE}")
        for name in ("warmup_steps", "num_workers", "sample_every"):
            if getattr(self, name) < 0:
                bad(name, getattr(self, name), "must be >= 0")
        for name in ("weight_decay", "max_grad_norm", "kl_weight"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                bad(name, getattr(self, name), "must be a finite number >= 0")
        if self.stage in ("decoder", "refiner") and self.init_from is None:
            bad("init_from", None, f"must name a trained model for the {self.stage} stage (it learns from the model's samples)")
        if not (math.isfinite(self.gradient_loss_weight) and self.gradient_loss_weight >= 0):
            bad("gradient_loss_weight", self.gradient_loss_weight, "must be a finite number >= 0")
        if self.stage == "temporal" and self.frames < 2:
            bad("frames", self.frames, "must be at least 2 for the temporal stage")
        return self


PRESETS: dict[str, dict] = {
    # CPU, the synthetic world: the embedded default model.
    "tiny-synthetic": dict(architecture="default", resolution=128, batch_size=8, max_refs=3, learning_rate=2e-4),
    # GPU, from converted AnimateAnyone weights (freeview weights fetch animate-anyone).
    "sd15": dict(
        architecture="sd15", init_from="models/animate-anyone", resolution=512, batch_size=4, max_refs=4,
        learning_rate=1e-5, mixed_precision="fp16", gradient_checkpointing=True, prediction_type="v_prediction",
        checkpoint_every=1000, keep_checkpoints=3, reference_dropout=0.1, sampling_steps=20, sampling_guidance=2.0,
    ),
}


def size_multiple(architecture: str | None) -> int:
    """Image sides must be multiples of this for ``architecture`` (VAE and UNet downsampling; 8 when unknown)."""
    from engine.models.configs import PRESETS as ARCHITECTURES

    arch = ARCHITECTURES.get(architecture) if isinstance(architecture, str) else None
    if arch is None:
        return 8
    return 2 ** (len(arch.vae["block_out_channels"]) - 1) * 2 ** (len(arch.unet["block_out_channels"]) - 1)


def _typed(name: str, value, hint) -> object:
    """``value`` as the type the field ``name`` is declared with; UserError naming the field otherwise.

    YAML 1.1 reads ``1e-5`` (no dot) as text, so text that is a number is accepted for float fields."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    wanted = [t for t in options if t is not type(None)][0]
    if wanted is bool and isinstance(value, bool):
        return value
    if wanted is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if wanted is float and not isinstance(value, bool):
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    if wanted is str and isinstance(value, str):
        return value
    kind = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}[wanted]
    raise UserError(f"config: {name}={value!r} must be {kind}" + (" or null" if type(None) in options else ""))


def make_config(preset: str = "tiny-synthetic", **overrides) -> TrainConfig:
    """A preset with ``overrides``; the :data:`INHERITED` settings it leaves out come from ``init_from``
    (:func:`inherit_from_model`), then from the preset."""
    if not isinstance(preset, str) or preset not in PRESETS:
        raise UserError(f"config: unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(map(str, set(overrides) - known))
    if unknown:
        raise UserError(f"config: unknown key(s) {', '.join(unknown)}")
    base = PRESETS[preset]
    values = {**{k: v for k, v in base.items() if k not in INHERITED}, "preset": preset, **overrides}
    hints = typing.get_type_hints(TrainConfig)
    config = TrainConfig(**{name: _typed(name, value, hints[name]) for name, value in values.items()}).validate()
    return inherit_from_model(config, fallback={k: base[k] for k in INHERITED if k in base})


def model_settings(model_dir: str | Path) -> dict | None:
    """What defines a model directory, from its files (no weights loaded): ``architecture`` (the
    engine preset with its UNet's widths, None when none matches), ``resolution``, ``prediction_type``,
    ``zero_terminal_snr``, ``sampling_steps`` / ``sampling_guidance`` / ``sampling_noise_correlation`` / ``top_k`` (its sampling.json, None
    where absent) and ``objective_trained`` (False for the output of a ``vae`` stage run, whose denoiser and
    scheduler were never trained). None when the folder is not a readable model directory."""
    from engine.model import SAMPLING_FILE

    root = Path(model_dir)
    try:
        unet = json.loads((root / "denoising_unet" / "config.json").read_text())
        vae = json.loads((root / "vae" / "config.json").read_text())
        scheduler = json.loads((root / "scheduler" / "scheduler_config.json").read_text())
    except (OSError, ValueError):
        return None
    from engine.models.configs import PRESETS as ARCHITECTURES

    plain = lambda v: list(v) if isinstance(v, (list, tuple)) else v
    keys = ("block_out_channels", "cross_attention_dim", "layers_per_block")
    architecture = next((name for name, arch in ARCHITECTURES.items()
                         if all(plain(unet.get(k)) == plain(arch.unet[k]) for k in keys)), None)
    size = unet.get("sample_size")
    size = size[0] if isinstance(size, (list, tuple)) else size
    resolution = int(size) * 2 ** (len(vae.get("block_out_channels", [0])) - 1) if size else None
    try:
        sampling = json.loads((root / SAMPLING_FILE).read_text())
        sampling = sampling if isinstance(sampling, dict) else {}
    except (OSError, ValueError):
        sampling = {}
    run = root.parent / "config.yaml"  # `train run` writes it beside runs/NAME/model and each checkpoint's model
    stage = None
    if run.is_file():
        try:
            stage = (yaml.safe_load(run.read_text()) or {}).get("stage")
        except (yaml.YAMLError, AttributeError):
            stage = None
    return {
        "architecture": architecture, "resolution": resolution,
        "prediction_type": scheduler.get("prediction_type", "epsilon"),
        "zero_terminal_snr": bool(scheduler.get("rescale_betas_zero_snr", False)),
        "sampling_steps": sampling.get("steps"), "sampling_guidance": sampling.get("guidance"),
        "sampling_noise_correlation": sampling.get("noise_correlation"), "top_k": sampling.get("top_k"), "objective_trained": stage != "vae",
    }


def inherit_from_model(config: TrainConfig, fallback: dict | None = None) -> TrainConfig:
    """``config`` with every :data:`INHERITED` setting it leaves out (None) taken from the model it starts from
    (``init_from``), else from ``fallback`` (the preset's), else :data:`FALLBACKS` (``zero_terminal_snr`` may stay
    None: the scheduler's own). An objective set in the config that contradicts the starting model's is refused
    (one line naming both) unless ``objective_change: allow``: a fine-tune that silently trains another
    objective renders garbage with the model's scheduler. Idempotent."""
    model = model_settings(config.init_from) if config.init_from else None
    trained = model is not None and model["objective_trained"]
    if model is not None and config.stage != "vae" and config.objective_change == "refuse" and trained:
        for key in OBJECTIVE:
            mine = getattr(config, key)
            if mine is not None and mine != model[key]:
                raise UserError(
                    f"config: {key}={mine!r} contradicts the model it starts from ({config.init_from} has "
                    f"{key}={model[key]!r}); leave {key} out to keep the model's, or set objective_change: allow "
                    "to retrain it to another objective on purpose")
    values, inherited = {}, []
    for key in INHERITED:
        if getattr(config, key) is not None:
            continue
        value = None
        if model is not None and (trained or key not in OBJECTIVE):
            value = model[key]
            inherited += [f"{key}={value!r}"] if value is not None else []
        if value is None:
            value = (fallback or {}).get(key, FALLBACKS.get(key))
        values[key] = value
    if inherited:
        logger.info("config: from %s: %s", config.init_from, ", ".join(inherited))
    return dataclasses.replace(config, **values).validate() if values else config


def load_config(path: str | Path, **overrides) -> TrainConfig:
    """A YAML file of overrides; ``preset:`` picks the starting values (default tiny-synthetic)."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise UserError(f"config file {path} must hold a mapping of keys to values")
    values.update(overrides)
    return make_config(values.pop("preset", "tiny-synthetic"), **values)


def config_to_yaml(config: TrainConfig) -> str:
    return yaml.safe_dump(dataclasses.asdict(config), sort_keys=False)
