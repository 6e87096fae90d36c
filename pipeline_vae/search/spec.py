"""Search specs: ranges and choices over run settings and op arguments, a metric, a number of trials and a budget.

    name: lr_widths                           # letters, digits, _ . -
    description: free text
    trials: 12                                # configurations Optuna proposes, in all
    seed: 0                                   # the sampler's seed, and every trial's training seed
    metric: elbo                              # what is maximized: elbo (the best per-epoch ELBO on the split the
                                              # run selects on) or iw_bound (the final evaluation's)
    budget: {epochs: 9}                       # the most a trial trains (also train_steps_per_epoch, ...)
    scheduler: {grace_period: 1, reduction_factor: 3}   # ASHA: trials stopped at epoch boundaries (or: none)
    base: {latent_dim: 50, model: mlp}        # run settings every trial shares
    ops: {loss: {op: BetaVAELoss, args: {beta: 1.0}}}   # ops every trial shares (as an ablation variant's)
    search:                                   # run settings, or <slot>.<argument> of an op in `ops`
      learning_rate: {loguniform: [1.0e-4, 3.0e-3]}
      widths: {choice: [[512, 256], [256, 128]]}
      loss.beta: {uniform: [0.5, 2.0]}
      latent_dim: {int: [16, 64]}             # inclusive
    data: mnist                               # as an ablation spec's (optional)
    eval: {iw_samples: 100, n_images: 1000}   # the evaluation of the trials that run their whole budget

A trial is one sampled configuration: an ablation variant named `t<digest>` (the digest of its values), so the same
configuration is the same trial, trained once. `pipeline-vae tune --check SPEC` validates a spec without training.
"""
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from pipeline_vae import settings as run_settings
from pipeline_vae.ablation.spec import (NAME_PATTERN, SETTINGS, OpSpec, Spec, SpecError, Variant, _data, _is_int, _read,
                                        _Reader, _variant, read_base, read_budget, read_evaluation)

TOP_KEYS = ("name", "description", "trials", "seed", "metric", "budget", "scheduler", "base", "ops", "search", "data",
            "eval")
METRICS = ("elbo", "iw_bound")
DISTRIBUTIONS = ("loguniform", "uniform", "int", "choice")
SCHEDULER = {"grace_period": 1, "reduction_factor": 3}


@dataclass(frozen=True)
class Dimension:
    """One searched value: a run setting, or `<slot>.<argument>` of an op in the spec's `ops`.

    Args:
        name: The setting or `<slot>.<argument>`.
        kind: "loguniform", "uniform" (floats in [low, high]), "int" (integers in [low, high]) or "choice".
        values: [low, high], or the choices.
    """
    name: str
    kind: str
    values: Tuple[Any, ...]

    def to_json(self) -> Dict[str, Any]:
        return {self.kind: list(self.values)}


@dataclass(frozen=True)
class SearchSpec:
    """A validated search spec (see the module docstring)."""
    name: str
    trials: int
    seed: int
    metric: str
    budget: Dict[str, Any]
    scheduler: Optional[Dict[str, int]]
    base: Dict[str, Any]
    ops: Dict[str, Optional[List[OpSpec]]]
    dimensions: List[Dimension]
    eval: Dict[str, Any]
    data: Optional[Dict[str, Any]] = None
    description: str = ""
    path: str = ""

    def variant(self, params: Mapping[str, Any]) -> Variant:
        """The trial of sampled `params` (name -> value, as `Dimension.name`) as an ablation variant `t<digest>`."""
        settings = {**self.base, **{k: v for k, v in params.items() if "." not in k}}
        ops = {slot: None if specs is None else [OpSpec(s.op, dict(s.args)) for s in specs]
               for slot, specs in self.ops.items()}
        for key, value in params.items():
            if "." in key:
                slot, arg = key.split(".", 1)
                ops[slot][0].args[arg] = value
        if "loss" in ops:
            settings.pop("loss", None)  # the slot's op replaces the loss chosen by name
        return Variant(name=trial_name(params), ops=ops, settings=settings,
                       description=", ".join(f"{k}={_short(v)}" for k, v in sorted(params.items())))

    def trial_spec(self, params: Mapping[str, Any]) -> Spec:
        """A one-variant, one-seed ablation spec for the trial of `params` (what `ablation.trial.run_trial` runs)."""
        variant = self.variant(params)
        return Spec(name=self.name, baseline=variant.name, seeds=[self.seed], budget=dict(self.budget),
                    eval=dict(self.eval), variants=[variant], description=self.description, path=self.path,
                    data=self.data)

    def to_json(self) -> Dict[str, Any]:
        return {"name": self.name, "description": self.description, "trials": self.trials, "seed": self.seed,
                "metric": self.metric, "budget": self.budget, "scheduler": self.scheduler, "base": self.base,
                "ops": {slot: None if specs is None else [{"op": s.op, "args": s.args} for s in specs]
                        for slot, specs in sorted(self.ops.items())},
                "search": {d.name: d.to_json() for d in self.dimensions}, "eval": self.eval, "data": self.data}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], path: str = "") -> "SearchSpec":
        """Rebuild a SearchSpec from `to_json()` output (as written to OUT/search.json)."""
        dims = [Dimension(name, *next(iter(entry.items()))) for name, entry in obj["search"].items()]
        dims = [Dimension(d.name, d.kind, tuple(d.values)) for d in dims]
        ops = {slot: None if specs is None else [OpSpec(s["op"], dict(s["args"])) for s in specs]
               for slot, specs in obj["ops"].items()}
        return cls(name=obj["name"], description=obj.get("description", ""), trials=obj["trials"], seed=obj["seed"],
                   metric=obj["metric"], budget=dict(obj["budget"]), scheduler=obj["scheduler"],
                   base=dict(obj["base"]), ops=ops, dimensions=dims, eval=dict(obj["eval"]), data=obj.get("data"),
                   path=path)


def trial_name(params: Mapping[str, Any]) -> str:
    """`t<digest>`: the same values give the same trial (and run folder)."""
    blob = json.dumps(dict(sorted(params.items())), sort_keys=True)
    return "t" + hashlib.sha256(blob.encode()).hexdigest()[:8]


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else json.dumps(value).replace(" ", "")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _dimension(reader: _Reader, name: str, value: Any, base: Mapping[str, Any],
               ops: Mapping[str, Optional[List[OpSpec]]]) -> Dimension:
    path = ("search", name)
    if not isinstance(name, str):
        raise reader.fail(path, f"expected a run setting or <slot>.<argument>, got {name!r}")
    entry = reader.mapping(value, path, DISTRIBUTIONS)
    if len(entry) != 1:
        raise reader.fail(path, f"give exactly one of {', '.join(DISTRIBUTIONS)}, e.g. {{loguniform: [1.0e-4, "
                          "3.0e-3]}")
    kind, values = next(iter(entry.items()))
    if not isinstance(values, list):
        raise reader.fail(path + (kind, ), f"expected a list, got {values!r}")
    if kind == "choice":
        if not values:
            raise reader.fail(path + (kind, ), "choice needs at least one value")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise reader.fail(path + (kind, ), f"choice has a value twice: {values!r}")
    else:
        if len(values) != 2 or not all(_number(v) for v in values) or not values[0] < values[1]:
            raise reader.fail(path + (kind, ), f"expected [low, high] with low < high, got {values!r}")
        if kind == "int" and not all(isinstance(v, int) for v in values):
            raise reader.fail(path + (kind, ), f"int takes integers, got {values!r}")
        if kind == "loguniform" and values[0] <= 0:
            raise reader.fail(path + (kind, ), f"loguniform needs low > 0, got {values!r}")
    if "." in name:  # an op's argument: the slot must be in `ops`, the argument the op's
        slot, arg = name.split(".", 1)
        specs = ops.get(slot)
        if not specs:
            raise reader.fail(path, f"{slot!r} is not a slot given in `ops` (give its op there to search its "
                              f"arguments); ops: {', '.join(sorted(ops)) or 'none'}")
        for candidate in values:  # each value (each end of a range) must make a valid op
            try:
                OpSpec(specs[0].op, {**specs[0].args, arg: candidate}).build()
            except (ValueError, TypeError) as err:
                raise reader.fail(path + (kind, ), f"{specs[0].op}: {err}") from None
    else:
        if name not in SETTINGS:
            raise reader.fail(path, f"unknown run setting {name!r}; expected a setting ({', '.join(sorted(SETTINGS))})"
                              " or <slot>.<argument>")
        for candidate in values:
            try:
                run_settings.check(name, candidate)
            except ValueError as err:
                raise reader.fail(path + (kind, ), str(err)) from None
    return Dimension(name, kind, tuple(values))


def parse_search(text: str, path: str = "<search>", check_runs: bool = True, data: Optional[str] = None) -> SearchSpec:
    """Parse and validate a search spec; with `check_runs`, the configuration at the low end of every range and the
    first choice is resolved and its graph built on the spec's data (or `data`, a name or path, instead), as an
    ablation variant's.

    Raises:
        SpecError: Naming the file, line and entry of the first mistake.
    """
    reader = _Reader(path, text)
    top = reader.mapping(reader.data, (), TOP_KEYS)
    for key in ("name", "trials", "budget", "search"):
        if key not in top:
            raise reader.fail((), f"missing required key {key!r}")
    name = top["name"]
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise reader.fail(("name", ), f"name must be letters, digits, '_', '.' or '-', got {name!r}")
    if not _is_int(top["trials"], 1):
        raise reader.fail(("trials", ), f"trials must be a positive integer, got {top['trials']!r}")
    seed = top.get("seed", 0)
    if not _is_int(seed, 0):
        raise reader.fail(("seed", ), f"seed must be an integer >= 0, got {seed!r}")
    metric = top.get("metric", "elbo")
    if metric not in METRICS:
        raise reader.fail(("metric", ), f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    budget = read_budget(reader, top)
    scheduler: Optional[Dict[str, int]] = dict(SCHEDULER)
    if top.get("scheduler") == "none":
        scheduler = None
    else:
        given = reader.mapping(top.get("scheduler"), ("scheduler", ), tuple(SCHEDULER))
        for key, value in given.items():
            if not _is_int(value, 1 if key == "grace_period" else 2):
                raise reader.fail(("scheduler", key), f"{key} must be an integer >= "
                                  f"{1 if key == 'grace_period' else 2}, got {value!r}")
        scheduler.update(given)
    base, evaluation = read_base(reader, top), read_evaluation(reader, top)
    if metric == "iw_bound" and evaluation["iw_samples"] < 1:
        raise reader.fail(("eval", "iw_samples"), "metric iw_bound needs iw_samples >= 1")
    spec_data = _data(reader, top.get("data"))
    # `ops` and the first configuration, checked as an ablation variant is (its ops' arguments, and on the data its
    # resolved run and graph)
    raw_ops = reader.mapping(top.get("ops"), ("ops", ), tuple(_slots()))
    searched = reader.mapping(top["search"], ("search", ), tuple(top["search"] or ()))
    if not searched:
        raise reader.fail(("search", ), "search needs at least one setting or op argument to vary")
    probe = _variant(reader, {"name": "probe", "ops": raw_ops}, (), base, None)
    dimensions = [_dimension(reader, key, value, base, probe.ops) for key, value in searched.items()]
    spec = SearchSpec(name=name, trials=top["trials"], seed=seed, metric=metric, budget=budget, scheduler=scheduler,
                      base=base, ops=probe.ops, dimensions=dimensions, eval=evaluation, data=spec_data,
                      description=str(top.get("description", "")), path=path)
    if check_runs:
        from dataclasses import replace

        from pipeline_vae.ablation.spec import DataSource
        from pipeline_vae.data import load_data
        source = DataSource.from_json(spec_data) if spec_data else DataSource()
        try:
            images = load_data(replace(source, data=data) if data else source, fetch=False)
        except ValueError as err:
            raise reader.fail(("data", ), str(err).removeprefix("data: ")) from None
        first = {d.name: d.values[0] for d in dimensions}
        variant = spec.variant(first)
        raw = {"name": variant.name, "ops": {slot: None if specs is None else [{"op": s.op, "args": s.args}
                                                                               for s in specs]
                                             for slot, specs in variant.ops.items()},
               "set": {k: v for k, v in first.items() if "." not in k}}
        try:
            _variant(_Reader(path, json.dumps(raw)), raw, ("search", ), base, images)
        except SpecError as err:
            raise SpecError(f"{path}: search: the first configuration ({variant.description}): "
                            f"{str(err).split(': ', 2)[-1]}") from None
    return spec


def _slots() -> Tuple[str, ...]:
    from pipeline_vae.slots import SLOTS
    return tuple(SLOTS)


def load_search(path: str, check_runs: bool = True, data: Optional[str] = None) -> SearchSpec:
    """Read and validate the search spec file at `path` (YAML, or JSON for `.json`), its first configuration checked
    on `data` (instead of the spec's) if given.

    Raises:
        FileNotFoundError: If `path` does not exist.
        SpecError: For any mistake in it (file, line and entry named).
    """
    return parse_search(_read(path), path, check_runs, data)
