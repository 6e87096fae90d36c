"""Ablation specs: a YAML or JSON file naming a base configuration, variants, a budget, seeds and the evaluation.

    name: binarization
    baseline: static                  # the row the others are compared with
    seeds: [0, 1]
    budget: {epochs: 3}               # the same for every variant (also train_steps_per_epoch, eval_steps_per_epoch)
    base: {latent_dim: 2}             # get_estimator settings (settings.SPEC_SETTINGS): latent_dim, batch_size,
                                      # learning_rate, lr_schedule, model, widths, loss, kl_warmup, likelihood,
                                      # binarize_threshold, protocol, prior, prior_components, upper_latent_dim,
                                      # flow, flow_steps
    data: mnist                       # optional: a name or path, or {data: PATH, image_size: [H, W], channels: 3,
                                      # test_fraction: 0.1, split_seed: 0, validation_fraction: 0.1};
                                      # `ablate --data` overrides it
    eval: {iw_samples: 100, n_images: 10000}
    variants:
      - name: static                  # no changes: the base configuration
      - name: dynamic
        ops: {binarize: {op: DynamicBinarize}}
      - name: none
        ops: {binarize: null}         # drop the slot
      - name: beta4
        ops: {loss: {op: BetaVAELoss, args: {beta: 4}}}
      - name: mlp
        set: {model: mlp}             # override base settings

A slot takes null (drop), one `{op: NAME, args: {...}}`, or a list of them; NAME is a TensorOp class exported by
`ops` (`OPS`); a loss op whose args give no `likelihood` uses the run's. Every mistake (unknown key, slot, op or
argument, bad value) raises `SpecError` naming the file, the line and the entry, before anything trains; so does a
variant whose run does not resolve or whose op graph, built as a trial builds it (`pipeline_vae.resolve.resolve`,
`pipeline_vae.slots.graph_for`), does not connect (an op reading a key nothing upstream produces).

The file's structure (syntax, keys, names, budget, seeds, settings, data) is checked without importing TensorFlow
(`check_spec_file`, which the CLI runs first, so such mistakes answer at once); the ops and the graph need the op
classes, imported on first use.
"""
import functools
import inspect
import json
import os
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple, Union

import yaml

from pipeline_vae import settings as run_settings
from pipeline_vae.data.image_data import DataSource

if TYPE_CHECKING:
    from fastestimator.op.tensorop.tensorop import TensorOp


#: Ops a spec cannot name: they hold models the graph builds (set `prior` or `flow` instead) or are the graph's
#: own (`JointGradientOp`).
BUILT_BY_THE_GRAPH = ("HierarchicalPrior", "JointGradientOp", "MixturePrior", "PlanarFlow", "VampPrior")


@functools.lru_cache(maxsize=None)
def known_ops() -> Dict[str, type]:
    """The ops a spec can name: every TensorOp class exported by the `ops` package that fits a slot (importing them
    imports TensorFlow). Also available as `OPS`."""
    from fastestimator.op.tensorop.tensorop import TensorOp

    import ops as ops_package
    exported = {name: getattr(ops_package, name) for name in ops_package.__all__}
    return {name: obj for name, obj in exported.items()
            if inspect.isclass(obj) and issubclass(obj, TensorOp) and name not in BUILT_BY_THE_GRAPH}


def __getattr__(name: str) -> Any:
    if name == "OPS":
        return known_ops()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: `get_estimator` settings a spec's `base` (and a variant's `set`) may give, with their defaults (`pipeline_vae.settings`).
SETTINGS: Dict[str, Any] = {name: run_settings.default(name) for name in run_settings.SPEC_SETTINGS}
BUDGET: Dict[str, Any] = {"epochs": None, "train_steps_per_epoch": None, "eval_steps_per_epoch": None}
EVAL: Dict[str, Any] = {"iw_samples": run_settings.default("iw_samples"), "n_images": 10000}
TOP_KEYS = ("name", "description", "baseline", "seeds", "budget", "base", "data", "eval", "variants")
VARIANT_KEYS = ("name", "description", "ops", "set")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # matched whole (fullmatch): no trailing newline
Path = Tuple[Union[str, int], ...]


class SpecError(ValueError):
    """A mistake in an ablation spec; the message names the file, line and entry."""


@dataclass(frozen=True)
class OpSpec:
    """One op of a slot: the class name in `OPS` and its keyword arguments."""
    op: str
    args: Dict[str, Any] = field(default_factory=dict)

    def build(self) -> "TensorOp":
        """A fresh instance of the op (a loss op given no `likelihood` takes the run's when the graph is built)."""
        return known_ops()[self.op](**self.args)


@dataclass(frozen=True)
class Variant:
    """One row of the ablation.

    Args:
        name: Unique name (letters, digits, `_.-`).
        ops: Slot -> None (drop) or a list of OpSpecs; slots not named keep their default.
        settings: The complete `get_estimator` settings (base with this variant's `set` applied).
        description: Free text for the table.
    """
    name: str
    ops: Dict[str, Optional[List[OpSpec]]]
    settings: Dict[str, Any]
    description: str = ""

    def build_ops(self) -> Dict[str, Any]:
        """Slot -> fresh op instances (or None), ready for `get_estimator(ops=...)`."""
        return {slot: None if specs is None else [spec.build() for spec in specs] for slot, specs in self.ops.items()}

    def to_json(self) -> Dict[str, Any]:
        """A plain-JSON form (also what identifies a finished run: changing it re-runs the variant)."""
        return {"name": self.name, "description": self.description, "settings": self.settings,
                "ops": {slot: None if specs is None else [{"op": s.op, "args": s.args} for s in specs]
                        for slot, specs in sorted(self.ops.items())}}


@dataclass(frozen=True)
class Spec:
    """A validated ablation spec. See the module docstring for the file format."""
    name: str
    baseline: str
    seeds: List[int]
    budget: Dict[str, Any]
    eval: Dict[str, Any]
    variants: List[Variant]
    description: str = ""
    path: str = ""
    data: Optional[Dict[str, Any]] = None

    def data_source(self, override: Optional[str] = None) -> DataSource:
        """The data every run uses: the spec's `data` (MNIST when it has none), its name or path replaced by
        `override` if given."""
        source = DataSource.from_json(self.data) if self.data else DataSource()
        return replace(source, data=override) if override else source

    def variant(self, name: str) -> Variant:
        """The variant called `name`."""
        return next(v for v in self.variants if v.name == name)

    def to_json(self) -> Dict[str, Any]:
        """A plain-JSON form; `from_json` reads it back."""
        return {"name": self.name, "description": self.description, "baseline": self.baseline, "seeds": self.seeds,
                "budget": self.budget, "eval": self.eval, "data": self.data,
                "variants": [v.to_json() for v in self.variants]}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], path: str = "") -> "Spec":
        """Rebuild a Spec from `to_json()` output (as written to the run folder)."""
        variants = [
            Variant(name=v["name"], description=v.get("description", ""), settings=dict(v["settings"]),
                    ops={slot: None if specs is None else [OpSpec(s["op"], dict(s["args"])) for s in specs]
                         for slot, specs in v["ops"].items()}) for v in obj["variants"]
        ]
        return cls(name=obj["name"], description=obj.get("description", ""), baseline=obj["baseline"],
                   seeds=list(obj["seeds"]), budget=dict(obj["budget"]), eval=dict(obj["eval"]), variants=variants,
                   path=path, data=obj.get("data"))


class _Reader:
    """Reads a parsed spec, remembering the source line of every entry for error messages."""
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines: Dict[Path, int] = {}
        try:
            self.data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text)
            root = yaml.compose(text)
        except (ValueError, yaml.YAMLError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            line = getattr(getattr(err, "problem_mark", None), "line", None)
            line = getattr(err, "lineno", None) if line is None else line + 1
            raise SpecError(f"{path}:{line or '?'}: not valid {'JSON' if path.endswith('.json') else 'YAML'} "
                            f"({first})") from None
        if root is not None:
            self._index(root, ())

    def _index(self, node: yaml.Node, path: Path) -> None:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                self._index(value, path + (key.value, ))
        elif isinstance(node, yaml.SequenceNode):
            for i, value in enumerate(node.value):
                self._index(value, path + (i, ))

    def fail(self, path: Path, message: str) -> SpecError:
        """A SpecError at the line of `path` (or its nearest parent that has one)."""
        probe = path
        while probe not in self.lines and probe:
            probe = probe[:-1]
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".") or "(top level)"
        return SpecError(f"{self.path}:{self.lines.get(probe, '?')}: {where}: {message}")

    def mapping(self, value: Any, path: Path, allowed: Tuple[str, ...]) -> Dict[str, Any]:
        """Check that `value` is a mapping (None counts as empty) with only `allowed` keys."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping with keys {', '.join(allowed)}, got {type(value).__name__}")
        for key in value:
            if key not in allowed:
                raise self.fail(path + (key, ), f"unknown key {key!r}; expected one of {', '.join(allowed)}")
        return value


def _is_int(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_settings(reader: _Reader, values: Mapping[str, Any], path: Path) -> None:
    for key, value in values.items():
        try:
            run_settings.check(key, value)
        except ValueError as err:
            raise reader.fail(path + (key, ), str(err)) from None


def _op_spec(reader: _Reader, value: Any, path: Path) -> OpSpec:
    entry = reader.mapping(value, path, ("op", "args"))
    name, ops = entry.get("op"), known_ops()
    if name not in ops:
        raise reader.fail(path + ("op", ), f"unknown op {name!r}; known ops: {', '.join(sorted(ops))}")
    args = reader.mapping(entry.get("args"), path + ("args", ), tuple(inspect.signature(ops[name]).parameters))
    spec = OpSpec(name, dict(args))
    try:
        spec.build()
    except (ValueError, TypeError) as err:
        raise reader.fail(path + ("args", ), f"{name}: {err}") from None
    return spec


def _variant_head(reader: _Reader, value: Any, path: Path) -> Tuple[str, Dict[str, Any]]:
    """A variant's name and `set` overrides, checked (no TensorFlow needed)."""
    entry = reader.mapping(value, path, VARIANT_KEYS)
    if not value:
        raise reader.fail(path, "a variant needs at least a name")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise reader.fail(path + ("name", ), f"name must be letters, digits, '_', '.' or '-', got {name!r}")
    overrides = reader.mapping(entry.get("set"), path + ("set", ), tuple(SETTINGS))
    _check_settings(reader, overrides, path + ("set", ))
    return name, overrides


def _variant(reader: _Reader, value: Any, path: Path, base: Dict[str, Any], data: Optional[Any]) -> Variant:
    """One variant, checked; with `data` (an ImageData) its run is resolved and its graph built on those images."""
    from pipeline_vae.models import MODELS
    from pipeline_vae.resolve import resolve
    from pipeline_vae.slots import SLOTS, graph_for
    entry = reader.mapping(value, path, VARIANT_KEYS)
    name, overrides = _variant_head(reader, value, path)
    slots: Dict[str, Optional[List[OpSpec]]] = {}
    for slot, slot_value in reader.mapping(entry.get("ops"), path + ("ops", ), SLOTS).items():
        if slot_value is None:
            slots[slot] = None
        elif isinstance(slot_value, list):
            slots[slot] = [_op_spec(reader, v, path + ("ops", slot, i)) for i, v in enumerate(slot_value)]
        else:
            slots[slot] = [_op_spec(reader, slot_value, path + ("ops", slot))]
    if "loss" in overrides and "loss" in slots:
        raise reader.fail(path + ("set", "loss"), "give either set.loss or ops.loss, not both")
    settings = {**base, **overrides}
    if "loss" in slots:
        del settings["loss"]  # the slot's op replaces the loss chosen by name
    try:
        if data is not None:
            MODELS[settings["model"]].check(settings["latent_dim"], settings["widths"], data.image_shape)
    except ValueError as err:
        where = path + ("set", "widths") if "widths" in overrides or "model" in overrides else ("base", "widths")
        raise reader.fail(where, f"{settings['model']} model: {err}") from None
    variant = Variant(name=name, ops=slots, settings=settings, description=str(entry.get("description", "")))
    # The variant's run, resolved and its graph built as a trial builds them (every op's inputs produced upstream,
    # the likelihoods agreeing, the models fitting the data), so what is checked here is what trains.
    try:
        ops = variant.build_ops()
        if data is not None:
            graph_for(resolve(settings, data, ops)[0], ops)
    except (ValueError, TypeError) as err:
        raise reader.fail(path + (("ops", ) if slots else ()), str(err)) from None
    return variant


def parse_spec(text: str, path: str = "<spec>", data: Optional[str] = None, check_runs: bool = True) -> Spec:
    """Parse and validate a spec: its structure, then each variant's run resolved and its graph built (as a trial
    builds it) on the spec's data.

    Args:
        text: The file's content (YAML, or JSON when `path` ends in .json).
        path: The file name, for messages.
        data: The data the runs will use instead of the spec's (`ablate --data`), by name or path.
        check_runs: Resolve each variant's run and build its graph on the data (False: the ops' arguments are
            checked, not the graphs, and no data is read; for reading records of a spec whose data is elsewhere).

    Returns:
        The validated Spec.

    Raises:
        SpecError: Naming the file, line and entry of the first mistake.
    """
    spec = _parse(text, path, deep=True, data_override=data, check_runs=check_runs)
    assert spec is not None
    return spec


def _parse(text: str, path: str, deep: bool, data_override: Optional[str] = None,
           check_runs: bool = True) -> Optional[Spec]:
    """`parse_spec`; with `deep=False` only the structure is checked (no ops, no graph, no TensorFlow) and None is
    returned."""
    reader = _Reader(path, text)
    top = reader.mapping(reader.data, (), TOP_KEYS)
    for key in ("name", "budget", "variants"):
        if key not in top:
            raise reader.fail((), f"missing required key {key!r}")
    name = top["name"]
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise reader.fail(("name", ), f"name must be letters, digits, '_', '.' or '-', got {name!r}")
    budget, base, evaluation = read_budget(reader, top), read_base(reader, top), read_evaluation(reader, top)
    seeds = top.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(_is_int(s, 0) for s in seeds) or len(set(seeds)) != len(
            seeds):
        raise reader.fail(("seeds", ), f"seeds must be a non-empty list of distinct integers >= 0, got {seeds!r}")
    if not isinstance(top["variants"], list) or not top["variants"]:
        raise reader.fail(("variants", ), "variants must be a non-empty list")
    data = _data(reader, top.get("data"))
    names = [_variant_head(reader, v, ("variants", i))[0] for i, v in enumerate(top["variants"])]
    for i, variant_name in enumerate(names):
        if variant_name in names[:i]:
            raise reader.fail(("variants", i, "name"), f"duplicate variant name {variant_name!r}")
    baseline = top.get("baseline", names[0])
    if baseline not in names:
        raise reader.fail(("baseline", ), f"baseline {baseline!r} is not a variant; variants: {', '.join(names)}")
    if not deep:
        return None
    images = None
    if check_runs:
        from pipeline_vae.data import load_data
        source = DataSource.from_json(data) if data else DataSource()
        try:  # the images the variants are checked against: `ablate --data`'s, else the spec's, else MNIST
            images = load_data(replace(source, data=data_override) if data_override else source, fetch=False)
        except ValueError as err:
            raise reader.fail(("data", ), str(err).removeprefix("data: ")) from None
    variants = [_variant(reader, v, ("variants", i), base, images) for i, v in enumerate(top["variants"])]
    return Spec(name=name, description=str(top.get("description", "")), baseline=baseline, seeds=seeds,
                budget=budget, eval=evaluation, variants=variants, path=path, data=data)


def read_budget(reader: _Reader, top: Mapping[str, Any]) -> Dict[str, Any]:
    """A spec's `budget` (also a search spec's), checked, with the defaults."""
    budget = {**BUDGET, **reader.mapping(top["budget"], ("budget", ), tuple(BUDGET))}
    if not _is_int(budget["epochs"], 1):
        raise reader.fail(("budget", "epochs"), f"epochs must be a positive integer, got {budget['epochs']!r}")
    for key in ("train_steps_per_epoch", "eval_steps_per_epoch"):
        if budget[key] is not None and not _is_int(budget[key], 1):
            raise reader.fail(("budget", key), f"{key} must be a positive integer or null, got {budget[key]!r}")
    return budget


def read_base(reader: _Reader, top: Mapping[str, Any]) -> Dict[str, Any]:
    """A spec's `base` settings, checked, over every setting's default."""
    overrides = reader.mapping(top.get("base"), ("base", ), tuple(SETTINGS))
    _check_settings(reader, overrides, ("base", ))
    return {**SETTINGS, **overrides}


def read_evaluation(reader: _Reader, top: Mapping[str, Any]) -> Dict[str, Any]:
    """A spec's `eval`, checked, with the defaults."""
    evaluation = {**EVAL, **reader.mapping(top.get("eval"), ("eval", ), tuple(EVAL))}
    if not _is_int(evaluation["iw_samples"], 0):
        raise reader.fail(("eval", "iw_samples"), f"iw_samples must be an integer >= 0, got "
                          f"{evaluation['iw_samples']!r}")
    if evaluation["n_images"] is not None and not _is_int(evaluation["n_images"], 2):
        raise reader.fail(("eval", "n_images"), f"n_images must be an integer >= 2 (at most the test split's size) or "
                          f"null (the whole test split), got {evaluation['n_images']!r}")
    return evaluation


def _data(reader: _Reader, value: Any) -> Optional[Dict[str, Any]]:
    """The spec's `data`: a name or path, or a mapping of `DataSource` fields; as DataSource JSON (None if absent)."""
    if value is None:
        return None
    fields = ("data", "image_size", "channels", "test_fraction", "split_seed", "validation_fraction")
    entry = {"data": value} if isinstance(value, str) else reader.mapping(value, ("data", ), fields)
    if not isinstance(entry.get("data"), str):
        raise reader.fail(("data", ), f"data must be a name or path, or a mapping with a 'data' name or path, got "
                          f"{value!r}")
    try:
        return DataSource.from_json(entry).to_json()
    except ValueError as err:
        raise reader.fail(("data", ), str(err)) from None


def _read(path: str) -> str:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"spec file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as file:
            return file.read()
    except UnicodeDecodeError as err:
        raise SpecError(f"{path}: not a text file ({err.reason})") from None


def load_spec(path: str, data: Optional[str] = None, check_runs: bool = True) -> Spec:
    """Read and validate the spec file at `path` (YAML, or JSON for `.json`), its variants checked on `data` (the
    data the runs will use instead of the spec's, by name or path) if given.

    Raises:
        FileNotFoundError: If `path` does not exist.
        SpecError: For any mistake in it (file, line and entry named).
    """
    return parse_spec(_read(path), path, data, check_runs)


def check_spec_file(path: str) -> None:
    """Check the spec file's structure without importing TensorFlow: that it exists and parses, its keys, names,
    budget, seeds, settings, data and baseline (not its ops or graph: `load_spec` checks those too).

    Raises:
        FileNotFoundError: If `path` does not exist.
        SpecError: For any such mistake (file, line and entry named).
    """
    _parse(_read(path), path, deep=False)
