"""Every setting of a run, in one place: run profiles, the run configuration and its checks.

The CLI, the local runner and the Modal app all build their runs from here; what is particular
to a domain (its dataset, relation budget, model shape, data sizes per profile, cost) is declared
once in the domain registry (:mod:`nsm.data.domains`), which this module reads. A run's
configuration is a plain JSON-able dict (:func:`make_run_config`), checked once
(:func:`validate_run_config`): it is what ``run_job`` receives, what checkpoints store, and what
travels to a worker process or a cloud container. Changing a setting afterwards goes through
:func:`updated`, which checks it again.
"""

from __future__ import annotations

import copy
import json
import math
import tomllib
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

from nsm.checks import MAX_SEED, check_integer
from nsm.data.domains import DOMAINS, get_domain
from nsm.errors import NSMError

# Models over a sample's graph: the NSM and its baselines (nsm.models.build_model).
GRAPH_MODELS = ("nsm", "flat-rgcn", "bag-mlp")
# KG embeddings (torch_geometric.nn.kge) learn one vector per entity of a --kg-dir graph: the
# standard transductive baseline of link prediction, ranked by the same evaluator as the NSM.
KGE_MODELS = ("complex", "rotate")
MODELS = (*GRAPH_MODELS, *KGE_MODELS)
# The levels the NSM's graph head reads (model_args.readout): every one, summed, or the most abstract alone.
READOUTS = ("all", "top")
# Link-prediction ranking (nsm.evaluation.ranking): GraIL's sampled protocol ranks each query among
# 49 corruptions per side; "full" among every entity; "none" skips ranking.
RANKINGS = ("sampled", "full", "none")
RANKING_NEGATIVES = 49


def parse_domains(text: str) -> list[str]:
    """``"planning,kg"`` -> ``["planning", "kg"]``; NSMError for an unknown, repeated or missing domain."""
    domains = [name.strip() for name in text.split(",") if name.strip()]
    # A repeated domain would be planned (and billed) twice, yet train once in one run directory.
    if not domains or not set(domains) <= set(DOMAINS) or len(set(domains)) < len(domains):
        raise NSMError(f"domains must be a comma-separated subset of {','.join(DOMAINS)}, each once, got {text!r}")
    return domains


@dataclass(frozen=True)
class Profile:
    """How long a run is and how it learns; each domain declares its data size at each profile
    (:attr:`nsm.data.domain.Domain.profile_data`)."""

    description: str
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 1e-5
    cycle_loss_weight: float = 0.05
    # The weight of the saliency term (nsm.models.saliency), which trains WHY to keep the nodes the
    # prediction rests on; 0 leaves it out (and its extra backward pass).
    saliency_loss_weight: float = 0.0
    # WHAT's unpooling networks learn from the cycle loss alone, chasing concrete features that move
    # as the rest of the model trains; at the common learning rate their error was often still
    # falling when the schedule ended. Planning, dev, training seeds 0/1/2, test recon L1 at 1x
    # 0.251/0.114/0.248, at 3x 0.126/0.167/0.144 (L2 0.271/0.425/0.542 and 0.142/0.458/0.454;
    # accuracy 95.9/96.1/96.6% and 95.4/97.2/96.2%); 10x, seed 0: 0.145/0.228, 95.4% (2026-11-24,
    # before the abstract levels' LayerNorm).
    reconstruction_lr_scale: float = 3.0
    # Epochs at a tenth of ``lr`` before the cosine decay. From the first step at full rate the NSM
    # sometimes never left chance: a causal model of 600 scenarios, seed 0, kept its loss at ln 2
    # for 30 epochs; with one warm-up epoch it reached 93.3% (2026-11-24).
    lr_warmup_epochs: int = 1
    gradient_clip: float = 1.0
    early_stopping_patience: int = 20
    checkpoint_every: int = 1
    log_interval: int = 50  # training steps between loss log lines, where no progress bar or events are shown
    # The semiring's temperature anneals from the first value to the second over every run, after a
    # warm-up of this fraction of its epochs (see temperature_schedule).
    temperature_range: tuple[float, float] = (1.0, 0.3)
    temperature_warmup: float = 0.2
    kge_epochs: int = 300  # a KG embedding's epochs (passes over train.txt: seconds each on a CPU)


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        description="seconds: a smoke test of the whole pipeline (used by the tests)",
        epochs=2, batch_size=32, lr=1e-3,
        kge_epochs=20,
    ),
    # More data for fewer epochs (see each domain's profile_data): at equal compute, 10,000
    # samples x 10 epochs generalise better than 3,000 x 30.
    "dev": Profile(
        description="minutes on a laptop CPU: the default of `nsm validate`",
        epochs=10, batch_size=32, lr=3e-3,
        early_stopping_patience=8,
    ),
    "production": Profile(
        description="the seed's full runs (100 epochs, lr 1e-4): a GPU job",
        epochs=100, batch_size=32, lr=1e-4,
        checkpoint_every=5,
        kge_epochs=1000,
    ),
}


@dataclass(frozen=True)
class KGESettings:
    """A KG embedding run's model and optimisation (the profile gives its epochs)."""

    hidden_channels: int = 100
    batch_size: int = 1024
    lr: float = 0.01


KGE = KGESettings()
DEFAULT_PROFILE = "dev"


# --- Modal (``nsm cloud``, nsm/cloud/app.py): plain data, read by the app, the cost plan and the CLI.


@dataclass(frozen=True)
class CloudProfile:
    """How each job of a run profile runs on Modal.

    ``gpu`` is one exact type or a list Modal tries in order. ``timeout_minutes`` is per attempt
    (a retry starts the clock again) and set at 1.5-2x ``expected_minutes``, one job's expected
    runtime, to allow for variance; a job makes at most ``1 + retries`` attempts.
    """

    gpu: str | tuple[str, ...]
    expected_minutes: float
    timeout_minutes: float
    retries: int


# Expected runtimes are the seed's observations (validation 10-15 min, full runs 60-90 min); replace
# them with ``training_time_s`` from a run's results.json once measured on the GPU.
CLOUD_PROFILES: dict[str, CloudProfile] = {
    # Checks the cloud path end to end for cents, on a cheap GPU with bf16.
    "quick": CloudProfile(gpu="L4", expected_minutes=3, timeout_minutes=5, retries=0),
    # The cheaper L40S (48 GB: plenty for these graphs), else an A100-40GB; more retries, short attempts.
    "dev": CloudProfile(gpu=("L40S", "A100-40GB"), expected_minutes=12, timeout_minutes=20, retries=2),
    # Exactly the 40 GB A100: a bare "A100" may be served by the 80 GB card at a higher price.
    "production": CloudProfile(gpu="A100-40GB", expected_minutes=60, timeout_minutes=120, retries=1),
}


@dataclass(frozen=True)
class CloudSettings:
    """What every cloud job shares, whatever its profile."""

    app_name: str = "nsm"
    volume: str = "nsm-checkpoints"  # created on first use
    volume_mount: str = "/checkpoints"  # <mount>/<run>/<domain>: one run directory per run and domain
    local_dir: str = "runs/cloud"  # here: summaries of cloud runs, and runs downloaded from the volume
    cpu: float = 8.0  # reserved cores, so data loading keeps the GPU fed
    memory_mib: int = 32_000
    torch_threads: int = 2  # CPU threads of the training process; the other reserved cores load data
    min_samples_for_workers: int = 5_000  # smaller datasets load faster in the training process itself
    # Before each retry: 15 s, then doubling (30, 60), capped at 60 s, the longest delay modal.Retries
    # accepts. A preempted input is restarted by Modal itself and does not use these.
    retry_delay_s: float = 15.0
    retry_backoff: float = 2.0
    retry_max_delay_s: float = 60.0
    startup_minutes: float = 10.0  # image pull and waiting for a GPU, allowed on top of a job's attempts

    @property
    def loader_workers(self) -> int:
        """DataLoader worker processes: one per reserved core the training process leaves free."""
        return int(self.cpu) - self.torch_threads

    def retry_delays_s(self, retries: int) -> list[float]:
        """The waits before each of ``retries`` retries, as modal.Retries spaces them."""
        return [min(self.retry_delay_s * self.retry_backoff ** i, self.retry_max_delay_s) for i in range(retries)]


CLOUD = CloudSettings()

# Modal's list prices, USD per second as modal.com/pricing gives them (2026); check them before budgeting.
# CPU and memory are billed on top of the GPU, for at least what a container reserves.
GPU_PRICE_PER_SECOND = {"L4": 0.000222, "L40S": 0.000542, "A100-40GB": 0.000583, "A100-80GB": 0.000694,
                        "H100": 0.001097}
CPU_PRICE_PER_CORE_SECOND = 0.0000131
MEMORY_PRICE_PER_GIB_SECOND = 0.00000222


def temperature_schedule(epochs: int, initial: float, final: float, warmup_fraction: float) -> dict[str, Any]:
    """``TemperatureScheduler`` arguments that anneal τ from ``initial`` to ``final`` over a run of
    ``epochs``: constant for the warm-up, then geometric, reaching ``final`` at the last epoch.

    (The seed's 1.0 → 0.3 at a decay of 0.9999 per epoch would leave τ at 0.99 after 100 epochs:
    a semiring that never sharpens. Tying the decay to the run's length makes the annealing real.)
    """
    warmup = round(warmup_fraction * epochs)
    decay_epochs = epochs - 1 - warmup
    decay_rate = (final / initial) ** (1 / decay_epochs) if decay_epochs > 0 else 1.0
    return {"initial_temp": initial, "final_temp": final, "decay_rate": decay_rate, "warmup_epochs": warmup}


def make_run_config(domain: str, profile: str = DEFAULT_PROFILE,
                    settings: Iterable[tuple[str, Mapping[str, Any]]] = (), **overrides: Any) -> dict[str, Any]:
    """The complete configuration of one run, as a plain dict.

    Precedence, lowest first: the profile (and the domain's declarations); ``settings``, layers of
    ``(source, {dotted key: value})`` (a ``--config`` file, then each ``--set``), later ones winning,
    each applied by :func:`apply_settings` and checked, an error naming its source; ``overrides``
    (the CLI's flags): top-level keys (``epochs``, ``seed``, ``model``, ``run_dir``, ...), with
    ``data`` and ``model_args`` overrides merged into those tables. ``None`` values are ignored so
    that unset CLI options fall through. Unless ``temperature`` is given (whole, or its
    ``decay_rate`` or ``warmup_epochs`` as settings), the temperature schedule follows the run's
    epochs and its initial and final temperatures (:func:`temperature_schedule`).
    """
    declared = get_domain(domain)
    if profile not in PROFILES:
        raise NSMError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if profile not in declared.profile_data:
        raise NSMError(f"domain {domain!r} declares no data size for profile {profile!r} (its profile_data)")
    settings = list(settings)
    chosen = PROFILES[profile]
    config: dict[str, Any] = {
        "domain": domain,
        "profile": profile,
        "model": "nsm",
        "seed": 0,
        "device": "auto",
        "resume": True,
        "run_dir": f"runs/{domain}",
        "data_root": "data_cache",
        "kg_dir": None,
        "relations": None,  # a --kg-dir or triples run's relation names, in id order (set by the job from the files)
        "num_workers": 0,  # DataLoader worker processes
        "prefetch_factor": 2,  # batches per loader worker (with num_workers > 0)
        "num_threads": 0,  # torch threads of the training process; 0 leaves torch's default
        "tensorboard": False,
        "wandb": False,  # also log to Weights & Biases (nsm[wandb]; WANDB_MODE=offline honoured)
        "ood": False,  # also evaluate on the domain's out-of-distribution split (nsm.data.base.OOD_SPLIT)
        "select_best_by": declared.select_best_by,
        **{k: copy.deepcopy(v) for k, v in asdict(chosen).items()
           if k not in ("description", "temperature_range", "temperature_warmup")},
        "temperature": temperature_schedule(chosen.epochs, *chosen.temperature_range, chosen.temperature_warmup),
        "data": dict(declared.profile_data[profile]),
        "model_args": declared.model_args(),
    }
    config.pop("kge_epochs")
    model = run_model(overrides.get("model"), settings)
    if model in KGE_MODELS:
        # Its own sizes: whole triples per step, not subgraphs; entity and relation counts come from the files.
        config.update(epochs=chosen.kge_epochs, batch_size=KGE.batch_size, lr=KGE.lr,
                      model_args={"task_type": "link_prediction", "hidden_channels": KGE.hidden_channels})
    for source, layer in settings:
        try:
            config = apply_settings(config, layer)
            check_fields(config)
        except NSMError as exc:
            raise NSMError(f"{source}: {exc}") from None
    tables = {name: overrides.pop(name, None) or {} for name in ("data", "model_args")}
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in config:
            raise NSMError(f"unknown run setting {key!r}")
        config[key] = value
    config["data"].update({k: v for k, v in tables["data"].items() if v is not None})
    config = apply_settings(config, {f"model_args.{key}": value for key, value in tables["model_args"].items()
                                     if value is not None})
    validate_run_config(config)  # first: the temperature schedule needs a valid epoch count
    set_keys = {key for _, layer in settings for key in flatten_settings(layer)}
    if overrides.get("temperature") is None and not set_keys & {"temperature.decay_rate", "temperature.warmup_epochs"}:
        config["temperature"] = temperature_schedule(config["epochs"], config["temperature"]["initial_temp"],
                                                     config["temperature"]["final_temp"], chosen.temperature_warmup)
        validate_run_config(config)
    return config


def run_model(flag: str | None, settings: Iterable[tuple[str, Mapping[str, Any]]]) -> str | None:
    """The model a run will train: the flag's, else the last settings layer's that names one."""
    return flag or next((layer["model"] for _, layer in reversed(list(settings)) if "model" in layer), None)


# What ``--set`` and ``--config`` may not change: each has its own flag, or the run fills it.
FIXED_SETTINGS: dict[str, str] = {
    "domain": "give --domain (or --domains)",
    "profile": "give --profile",
    "run_dir": "give --run-dir",
    "relations": "the job reads them from --kg-dir's files",
    "entities": "the job reads them from --kg-dir's files",
    "model_args.task_type": "the domain fixes it",
    "model_args.num_relations": "the domain fixes it (a --kg-dir run's files, for your own KG)",
    "model_args.num_classes": "the domain fixes it",
    "model_args.num_entities": "the job reads them from --kg-dir's files",
    "node_types": "the job reads them from --data's files",
    "extra_features": "the job reads them from --data's files",
    "classes": "the job reads them from --data's files",
}
# Settings a domain takes beyond what its config holds by default (kg: its subgraphs' size).
OPTIONAL_SETTINGS: dict[str, dict[str, type]] = {"kg": {"data.hops": int, "data.max_entities": int},
                                                  "triples": {"data.data_path": str}}
# The type of a setting whose default is None.
NONE_SETTINGS: dict[str, type] = {"kg_dir": str}
_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a table of settings"}


def parse_setting_value(text: str) -> Any:
    """A ``--set`` value: a TOML literal where it is one (``4``, ``1e-3``, ``true``, ``"a b"``,
    ``inf``), a Python number (``.5``), else the text itself (``cpu``)."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def assignment_layers(assignments: Iterable[tuple[str, str]]) -> list[tuple[str, dict[str, Any]]]:
    """``--set`` items ``[(key, text), ...]`` as :func:`make_run_config`'s settings layers, one per
    item and named by it, each value parsed by :func:`parse_setting_value`."""
    return [(f"--set {key}={text}", {key: parse_setting_value(text)}) for key, text in assignments]


def flatten_settings(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"model_args": {"num_bases": 4}, "lr": 1e-3}`` -> ``{"model_args.num_bases": 4, "lr": 1e-3}``."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            flat.update(flatten_settings(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def apply_settings(config: dict[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with ``settings`` (``{"lr": 1e-3, "model_args.num_bases": 4}``: dotted
    keys for nested tables; nested dicts are flattened) in place. Each key must name a field of
    the config and each value have that field's type (a number field takes an integer too); a
    one-line NSMError names the key otherwise. Ranges are :func:`validate_run_config`'s."""
    config = copy.deepcopy(config)
    for key, value in flatten_settings(settings).items():
        if key in FIXED_SETTINGS:
            raise NSMError(f"{key} cannot be set here: {FIXED_SETTINGS[key]}")
        *parents, name = key.split(".")
        table, path = config, []
        for part in parents:
            if not isinstance(table.get(part), dict):
                where = f" ({'.'.join([*path, part])} is not a table)" if part in table else ""
                raise NSMError(f"unknown run setting {key}{where}")
            table, path = table[part], [*path, part]
        optional = OPTIONAL_SETTINGS.get(config["domain"], {})
        if name not in table and key not in optional:
            settable = [k for k in table if ".".join([*path, k]) not in FIXED_SETTINGS]
            owner = ".".join(path) if path else "the run config"
            raise NSMError(f"unknown run setting {key} ({owner} has {', '.join(settable)})")
        current = table.get(name)
        kind = optional.get(key) or NONE_SETTINGS.get(key) or type(current)
        table[name] = _typed(key, value, kind)
    return config


def _typed(key: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, kind) and not (kind is int and isinstance(value, bool)) and kind is not dict:
        return value
    shown = repr(value) if isinstance(value, str) else json_literal(value)
    if kind is dict:
        raise NSMError(f"{key} takes {_KINDS[dict]}; set its fields, like {key}.<field>=..., got {shown}")
    raise NSMError(f"{key} takes {_KINDS.get(kind, kind.__name__)}, got {shown}")


def json_literal(value: Any) -> str:
    """``value`` as a user wrote it: ``true``, ``1.5``, ``[1, 2]``."""
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


def read_settings_file(path: str) -> dict[str, Any]:
    """The settings of a ``--config`` TOML file: its top-level keys and its tables (``[model_args]``,
    ``[data]``, ``[temperature]``), flattened to dotted keys; a one-line NSMError naming the file
    when it cannot be read or parsed."""
    try:
        with open(path, "rb") as f:
            return flatten_settings(tomllib.load(f))
    except OSError as exc:
        raise NSMError(f"cannot read {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise NSMError(f"{path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise NSMError(f"{path} is not valid TOML: it is not UTF-8 text") from None


def updated(config: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a run configuration with ``changes`` (e.g. a runner's ``num_threads``), checked
    again as :func:`make_run_config` checked the original."""
    unknown = set(changes) - set(config)
    if unknown:
        raise NSMError(f"unknown run setting(s) {', '.join(sorted(unknown))}")
    changed = dict(config, **changes)
    validate_run_config(changed)
    return changed


# τ decays by (final / initial) ** (1 / epochs) per epoch (temperature_schedule). Past ~10^16 epochs
# that rounds to 1.0 and τ never anneals, and it loses accuracy long before; no run comes near this
# bound (production is 100 epochs, and 100,000 epochs of even the quick profile take days).
MAX_EPOCHS = 100_000
# The integer settings of a run, dotted keys for nested ones: (least, most) allowed, None for no upper bound.
INTEGER_SETTINGS: dict[str, tuple[int, int | None]] = {
    "epochs": (1, MAX_EPOCHS), "seed": (0, MAX_SEED), "batch_size": (1, None), "checkpoint_every": (1, None),
    "log_interval": (1, None), "prefetch_factor": (1, None), "lr_warmup_epochs": (0, None), "num_workers": (0, None),
    "num_threads": (0, None), "early_stopping_patience": (1, None),
    "model_args.node_features": (1, None), "model_args.hidden": (1, None), "model_args.num_bases": (1, None),
    "model_args.hidden_channels": (1, None), "model_args.concrete_convs": (1, None),
    # NSMModel's hierarchy has 2 or 3 levels (nsm.models.hierarchical.CYCLE_WEIGHTS).
    "model_args.num_levels": (2, 3), "temperature.warmup_epochs": (0, None),
    "data.num_samples": (1, None), "data.hops": (1, None), "data.max_entities": (2, None),
}
# The number settings: (least, most, bounds), bounds "[)" etc. saying which ends are allowed; every one must be finite.
NUMBER_SETTINGS: dict[str, tuple[float, float, str]] = {
    "lr": (0, math.inf, "()"), "reconstruction_lr_scale": (0, math.inf, "()"),
    "weight_decay": (0, math.inf, "[)"), "cycle_loss_weight": (0, math.inf, "[)"),
    "saliency_loss_weight": (0, math.inf, "[)"),
    "gradient_clip": (0, math.inf, "[)"),  # 0: no clipping
    # NSMModel keeps a fraction of the nodes, never all; dropout 1 would zero every feature.
    "model_args.pool_ratio": (0, 1, "()"), "model_args.dropout": (0, 1, "[)"),
    "temperature.initial_temp": (0, math.inf, "()"), "temperature.final_temp": (0, math.inf, "()"),
    "temperature.decay_rate": (0, 1, "(]"),
}


def check_number(key: str, value: Any) -> float:
    """``value`` if it is a finite number in ``key``'s range (:data:`NUMBER_SETTINGS`); else NSMError naming ``key``."""
    least, most, bounds = NUMBER_SETTINGS[key]
    # inf passes "> 0" and nan fails every comparison: both would train to nan.
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
            and (least <= value if bounds[0] == "[" else least < value) \
            and (value <= most if bounds[1] == "]" else value < most):
        return value
    if most == math.inf:
        rule = "non-negative and finite" if bounds[0] == "[" else "positive and finite"
    else:
        rule = f"in {bounds[0]}{least:g}, {most:g}{bounds[1]}"
    raise NSMError(f"{key} must be {rule}, got {value!r}")


def _setting(config: dict[str, Any], key: str) -> tuple[bool, Any]:
    """Whether ``config`` holds the dotted ``key``, and its value."""
    value: Any = config
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return False, None
        value = value[part]
    return True, value


def validate_run_config(config: dict[str, Any]) -> None:
    """Refuse settings that cannot run, with one clear line."""
    check_fields(config)
    if config["model"] in KGE_MODELS and not (config["domain"] == "kg" and config["kg_dir"]):
        raise NSMError(f"--model {config['model']} embeds the entities of a KG in the TSV layout: it needs "
                       f"--domain kg --kg-dir DIR")
    if config["kg_dir"] is not None and config["domain"] != "kg":
        raise NSMError(f"kg_dir only applies to the kg domain, not {config['domain']}")
    if config["ood"] and (config["domain"] == "triples" or config["kg_dir"] is not None or config["model"] in KGE_MODELS):
        raise NSMError("--ood evaluates on a generated domain's out-of-distribution split (planning, causal, or kg "
                       "without --kg-dir); your own data has none")
    if config["domain"] == "triples" and not config["data"].get("data_path"):
        raise NSMError("--domain triples trains on your own labelled triple graphs: give --data PATH (a .jsonl "
                       "file or a directory of them; see README, \"Bring your own data\")")


def check_fields(config: dict[str, Any]) -> None:
    """The part of :func:`validate_run_config` that looks at one setting at a time (its choices, its
    range), so that a layer of settings is checked before a later one (a flag) completes it."""
    if config["model"] not in MODELS:
        raise NSMError(f"unknown model {config['model']!r}; choose one of {', '.join(MODELS)}")
    if config["device"] not in ("auto", "cpu", "cuda"):
        raise NSMError(f"unknown device {config['device']!r}; choose auto, cpu or cuda")
    readout = config["model_args"].get("readout")
    if readout is not None and readout not in READOUTS:
        raise NSMError(f"model_args.readout must be one of {', '.join(READOUTS)}, got {json_literal(readout)}")
    for key, (least, most) in INTEGER_SETTINGS.items():
        present, value = _setting(config, key)
        if present:
            check_integer(key, value, least, most)
    for key in NUMBER_SETTINGS:
        present, value = _setting(config, key)
        if present and value is not None:
            check_number(key, value)
