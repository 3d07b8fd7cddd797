"""Train, export and load anomaly models under models/<name>-v<N>/, as data a reviewer can read.

A model directory holds exactly two files:
- `manifest.json`: name, version, kind, feature order (with fill values and log flags), parameters,
  training data (input hashes, row and pair counts, seed), library versions, metrics, and the
  sha256 of the arrays file;
- `arrays.npz`: plain numeric/text arrays (tree nodes or ECOD tail tables, the training score
  distribution, per-feature quantiles for explanations, the corridor-rarity table), written with
  fixed zip timestamps so the same model gives the same bytes, and read with allow_pickle=False.

Nothing is ever unpickled: an arrays file that is a pickle, holds object arrays, fails its hash, or
has tree indices out of range is refused with a ModelError naming the file. A retrain writes the
next version directory; one whose arrays equal the latest version's is not written again.

Kinds: `iforest` (scikit-learn IsolationForest, exported to node arrays and scored by the Numba
kernel in forest.py, identical to scikit-learn's score_samples) and `ecod` (pyod's ECOD rule,
parameter-free per-feature tail probabilities against a stored reference sample).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import platform
import re
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from followmoney import __version__
from followmoney.config import DEFAULT_MODELS_DIR
from followmoney.errors import ModelError
from followmoney.features import (
    FEATURE_BY_NAME,
    FEATURE_NAMES,
    FEATURES,
    MODEL_FEATURES,
    Feature,
    corridor_table,
    feature_matrix,
    pair_table,
)
from followmoney.forest import score_ecod, score_forest

DEFAULT_MODEL = "iforest"
MODEL_KINDS = ("iforest", "ecod")
FORMAT = "followmoney-model/1"
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DIR_RE = re.compile(r"^([a-z][a-z0-9_]{0,39})-v(\d+)$")
# Quantile levels of the training score distribution: dense in the top 1% where alerts live.
SCORE_LEVELS = np.unique(np.concatenate([np.linspace(0.0, 0.99, 100), np.linspace(0.99, 1.0, 1001)]))
FEATURE_LEVELS = np.linspace(0.0, 1.0, 1001)
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_INT_KINDS = "iub"


@dataclass(frozen=True)
class TrainParams:
    """How to fit: kind, seed, trees and rows per tree (iforest), rows sampled for fitting."""

    kind: str = "iforest"
    seed: int = 0
    n_trees: int = 100
    max_samples: int = 256
    fit_rows: int = 200_000
    ecod_ref_rows: int = 4096
    features: str = "novel"  # "novel": behaviour no rule judges (MODEL_FEATURES); "all": every feature


@dataclass(frozen=True)
class Model:
    """A loaded model: its manifest (as read) and its arrays; scores pair tables."""

    name: str
    version: int
    path: Path
    manifest: dict[str, Any]
    manifest_sha256: str
    arrays: dict[str, np.ndarray]

    @property
    def kind(self) -> str:
        """iforest or ecod."""
        return str(self.manifest["kind"])

    @property
    def label(self) -> str:
        """name-vN, as alerts and summaries cite it."""
        return f"{self.name}-v{self.version}"

    def info(self) -> dict[str, Any]:
        """What summary.json records about the model that produced alerts."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "path": str(self.path),
            "manifest_sha256": self.manifest_sha256,
            "arrays_sha256": self.manifest["arrays"]["sha256"],
        }

    def corridors(self) -> pl.DataFrame:
        """The corridor-rarity table learned in training."""
        from followmoney.features import CORRIDOR, RARITY

        return pl.DataFrame(
            {CORRIDOR: self.arrays["corridor_keys"].astype(str).tolist(), RARITY: self.arrays["corridor_rarity"]},
            schema={CORRIDOR: pl.String, RARITY: pl.Float64},
        )

    @property
    def features(self) -> tuple[Feature, ...]:
        """The model's inputs, in order (from its manifest)."""
        return tuple(FEATURE_BY_NAME[f["name"]] for f in self.manifest["features"])

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The names of the model's inputs, in order: the pair-table columns it needs (pair_table's `features`)."""
        return tuple(f.name for f in self.features)

    def matrix(self, table: pl.DataFrame) -> np.ndarray:
        """The model input for a pair table."""
        return feature_matrix(table, self.arrays["fill"], self.features)

    def raw_scores(self, x: np.ndarray) -> np.ndarray:
        """Anomaly scores (higher = more abnormal) of model-input rows."""
        return _raw_scores(self.kind, self.arrays, x)

    def table_scores(self, table: pl.DataFrame) -> np.ndarray:
        """Anomaly scores of a pair table's rows (its matrix built directly in the dtype the scorer reads)."""
        dtype = np.float32 if self.kind == "iforest" else np.float64
        return _raw_scores(self.kind, self.arrays, feature_matrix(table, self.arrays["fill"], self.features, dtype))

    def percentiles(self, scores: np.ndarray) -> np.ndarray:
        """Where each score falls in the training score distribution (0-1)."""
        return score_percentiles(scores, self.arrays["score_grid"])

    def score_below(self, percentile: float) -> float:
        """A score such that every lower score's percentile is below `percentile` (so scores under it need no
        percentile to be ruled out)."""
        return score_bound(self.arrays["score_grid"], percentile)

    def typical(self) -> np.ndarray:
        """The training median of each feature (natural units)."""
        return np.asarray(self.arrays["feature_q"][len(FEATURE_LEVELS) // 2], dtype=np.float64)


def score_percentiles(scores: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Where each score falls among the training score quantiles `grid` (at SCORE_LEVELS), 0-1, interpolated."""
    levels = SCORE_LEVELS
    n = grid.shape[0]
    scores = np.asarray(scores, dtype=np.float64)
    lo = np.searchsorted(grid, scores, side="left")
    hi = np.searchsorted(grid, scores, side="right")
    i = np.clip(lo, 1, n - 1)
    g0, g1 = grid[i - 1], grid[i]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(g1 > g0, (scores - g0) / (g1 - g0), 1.0)
    between = levels[i - 1] + np.clip(frac, 0.0, 1.0) * (levels[i] - levels[i - 1])
    tied = (levels[np.clip(lo, 0, n - 1)] + levels[np.clip(hi - 1, 0, n - 1)]) / 2.0
    out = np.where(hi > lo, tied, between)
    return np.where(scores < grid[0], 0.0, np.where(scores > grid[-1], 1.0, out))


def score_bound(grid: np.ndarray, percentile: float) -> float:
    """The score_grid value at the highest level below `percentile` (-inf if none): a score s below it has
    score_percentiles(s) <= that level < `percentile` (both interpolation and ties stay at or under it)."""
    below = np.flatnonzero(SCORE_LEVELS[: grid.shape[0]] < percentile)
    return float(grid[below[-1]]) if below.size else -np.inf


def feature_percentiles(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of each value of each feature among its training quantiles (rows x features)."""
    out = np.empty(values.shape, dtype=np.float64)
    m = quantiles.shape[0]
    for j in range(values.shape[1]):
        col = quantiles[:, j]
        lo = np.searchsorted(col, values[:, j], side="left")
        hi = np.searchsorted(col, values[:, j], side="right")
        out[:, j] = np.clip((lo + hi) / 2.0 / m, 0.0, 1.0)
    return out


def _raw_scores(kind: str, arrays: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    if kind == "iforest":
        return score_forest(x, arrays)
    return score_ecod(x, arrays)


# ---------------------------------------------------------------- training


def _export_iforest(x: np.ndarray, params: TrainParams) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fit scikit-learn's IsolationForest and flatten its trees into node arrays."""
    from sklearn.ensemble import IsolationForest
    from sklearn.ensemble._iforest import _average_path_length

    forest = IsolationForest(
        n_estimators=params.n_trees,
        max_samples=min(params.max_samples, x.shape[0]),
        random_state=params.seed,
    ).fit(x)
    subsample = forest._max_features != x.shape[1]
    feature, threshold, left, right, leaf_value, roots = [], [], [], [], [], []
    offset = 0
    for tree, feats, depths, avg in zip(
        forest.estimators_,
        forest.estimators_features_,
        forest._decision_path_lengths,
        forest._average_path_length_per_tree,
        strict=True,
    ):
        t = tree.tree_
        is_leaf = t.children_left < 0
        f = np.where(is_leaf, 0, t.feature)
        if subsample:
            f = np.asarray(feats)[f]
        f = np.where(is_leaf, -1, f)
        roots.append(offset)
        feature.append(f.astype(np.int32))
        threshold.append(np.where(is_leaf, 0.0, t.threshold).astype(np.float64))
        left.append(np.where(is_leaf, -1, t.children_left + offset).astype(np.int32))
        right.append(np.where(is_leaf, -1, t.children_right + offset).astype(np.int32))
        leaf_value.append(np.where(is_leaf, depths + avg - 1.0, 0.0).astype(np.float64))
        offset += t.node_count
    denominator = len(forest.estimators_) * float(_average_path_length([forest._max_samples])[0])
    arrays: dict[str, np.ndarray] = {
        "feature": np.concatenate(feature),
        "threshold": np.concatenate(threshold),
        "left": np.concatenate(left),
        "right": np.concatenate(right),
        "leaf_value": np.concatenate(leaf_value),
        "roots": np.asarray(roots, dtype=np.int64),
        "denominator": np.asarray([denominator], dtype=np.float64),
    }
    probe = x[: min(2000, x.shape[0])]
    parity = float(np.max(np.abs(score_forest(probe, arrays) + forest.score_samples(probe))))
    info = {
        "library": "scikit-learn IsolationForest",
        "n_trees": params.n_trees,
        "max_samples": int(forest._max_samples),
        "nodes": int(offset),
        "max_abs_diff_vs_sklearn": parity,
    }
    return arrays, info


PREFILTER_TREES = 20
PREFILTER_MARGIN = 0.25  # path-length units of slack above the longest top-1% partial path seen in training


def _calibrate_prefilter(x: np.ndarray, arrays: dict[str, np.ndarray], scores: np.ndarray) -> dict[str, np.ndarray]:
    """The k-tree prefilter's cutoff: the longest k-tree mean path of any training pair in the top 1%, plus slack."""
    n_trees = arrays["roots"].shape[0]
    k = min(PREFILTER_TREES, n_trees)
    if k >= n_trees:
        return {}
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    from followmoney.forest import _path_sums

    partial = _path_sums(x32, arrays, arrays["roots"][:k], 2) / k
    top = scores >= np.quantile(scores, 0.99)
    cutoff = float(partial[top].max()) + PREFILTER_MARGIN
    return {
        "prefilter_trees": np.asarray([k], dtype=np.int64),
        "prefilter_cutoff": np.asarray([cutoff], dtype=np.float64),
    }


def _export_ecod(x: np.ndarray, params: TrainParams) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """ECOD needs no fitting beyond its reference sample: store it sorted per feature, with skew signs."""
    from scipy.stats import skew

    rng = np.random.default_rng(params.seed)
    rows = rng.choice(x.shape[0], size=min(params.ecod_ref_rows, x.shape[0]), replace=False)
    ref = x[np.sort(rows)]
    skew_sign = np.sign(np.nan_to_num(skew(ref, axis=0))).astype(np.int8)
    arrays = {"ecod_ref": np.ascontiguousarray(np.sort(ref, axis=0).T), "ecod_skew": skew_sign}
    info: dict[str, Any] = {"library": "pyod ECOD rule (reimplemented over a stored reference sample)"}
    try:
        from pyod.models.ecod import ECOD

        reference = ECOD().fit(ref).decision_scores_
        info["max_abs_diff_vs_pyod"] = float(np.max(np.abs(score_ecod(ref, arrays) - reference)))
    except ImportError:  # pyod is a dependency; keep training usable if an install lacks it
        info["max_abs_diff_vs_pyod"] = None
    info["reference_rows"] = int(ref.shape[0])
    return arrays, info


def train(
    txns: pl.DataFrame,
    params: TrainParams,
    *,
    inputs: list[dict[str, Any]] | None = None,
    labels: pl.DataFrame | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Fit a model on clean transactions; returns (arrays, manifest without name/version)."""
    if params.kind not in MODEL_KINDS:
        raise ModelError(f"unknown model kind '{params.kind}' (known: {', '.join(MODEL_KINDS)})")
    corridors = corridor_table(txns)
    table = pair_table(txns, corridors)
    if table.height < 10:
        raise ModelError(f"too little data to train: {table.height} payer->receiver pair(s); need at least 10")
    if params.features not in ("novel", "all"):
        raise ModelError(f"unknown feature set '{params.features}' (known: novel, all)")
    feats = MODEL_FEATURES if params.features == "novel" else FEATURES
    names = [f.name for f in feats]
    raw = table.select(pl.col(n).cast(pl.Float64).fill_nan(None) for n in names)
    fill = np.asarray([raw[n].median() if raw[n].null_count() < raw.height else 0.0 for n in names])
    x = feature_matrix(table, fill, feats)
    rng = np.random.default_rng(params.seed)
    fit_idx = np.sort(rng.choice(x.shape[0], size=min(params.fit_rows, x.shape[0]), replace=False))
    if params.kind == "iforest":
        arrays, fit_info = _export_iforest(x[fit_idx], params)
    else:
        arrays, fit_info = _export_ecod(x[fit_idx], params)
    scores = score_forest(x, arrays, exact=True) if params.kind == "iforest" else _raw_scores(params.kind, arrays, x)
    if params.kind == "iforest":
        arrays.update(_calibrate_prefilter(x, arrays, scores))
    filled = raw.with_columns(pl.col(n).fill_null(float(fill[i])) for i, n in enumerate(names)).to_numpy()
    arrays.update(
        {
            "score_grid": np.quantile(scores, SCORE_LEVELS),
            "feature_q": np.quantile(filled.astype(np.float64), FEATURE_LEVELS, axis=0),
            "fill": fill.astype(np.float64),
            "corridor_keys": np.asarray(corridors["_corridor"].to_list(), dtype="<U16"),
            "corridor_rarity": corridors["_corridor_rarity"].to_numpy().astype(np.float64),
        }
    )
    metrics: dict[str, Any] = {
        "train_score_quantiles": {q: float(np.quantile(scores, float(q))) for q in ("0.5", "0.9", "0.99", "0.999")},
        **fit_info,
    }
    if labels is not None:
        metrics.update(_label_metrics(table, scores, labels))
    manifest = {
        "format": FORMAT,
        "kind": params.kind,
        "level": "pair",
        "created_by": f"followmoney {__version__}",
        "trained_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "features": [
            {"name": f.name, "level": f.level, "log1p": f.log, "fill": float(fill[i])} for i, f in enumerate(feats)
        ],
        "params": {
            "seed": params.seed,
            "n_trees": params.n_trees,
            "max_samples": params.max_samples,
            "fit_rows": params.fit_rows,
            "ecod_ref_rows": params.ecod_ref_rows,
            "features": params.features,
        },
        "training": {
            "inputs": inputs or [],
            "rows": txns.height,
            "pairs": table.height,
            "fit_rows": int(fit_idx.shape[0]),
            "feature_matrix_sha256": hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest(),
        },
        "libraries": _library_versions(),
        "metrics": metrics,
    }
    return arrays, manifest


def _label_metrics(table: pl.DataFrame, scores: np.ndarray, labels: pl.DataFrame) -> dict[str, Any]:
    """ROC AUC of pair scores against planted anomaly patterns, when labels are given (a quality record)."""
    from sklearn.metrics import roc_auc_score

    planted = labels.filter(pl.col("suspicious") & (pl.col("typology") == "anomaly"))
    if planted.height == 0:
        return {}
    parties = set(planted.select(pl.col("party_ids").explode())["party_ids"].to_list())
    y = table["subject_id"].is_in(list(parties)).to_numpy()
    if y.all() or not y.any():
        return {}
    return {"roc_auc_planted_anomaly_pairs": round(float(roc_auc_score(y, scores)), 4), "planted_pairs": int(y.sum())}


def _library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("numpy", "polars", "numba", "scikit-learn", "pyod", "scipy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


# ---------------------------------------------------------------- saving


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A .npz archive with fixed timestamps (same arrays, same bytes)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_FIXED_ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            part = io.BytesIO()
            np.lib.format.write_array(part, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            zf.writestr(info, part.getvalue())
    return buf.getvalue()


def _versions(models_dir: Path, name: str) -> list[int]:
    if not models_dir.is_dir():
        return []
    found = []
    for p in models_dir.iterdir():
        m = DIR_RE.match(p.name)
        if m and m.group(1) == name and p.is_dir():
            found.append(int(m.group(2)))
    return sorted(found)


def save(models_dir: Path, name: str, arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> tuple[Path, bool]:
    """Write models_dir/<name>-v<N+1>/ (manifest + arrays); (path, False) if equal to the latest version."""
    if not NAME_RE.match(name):
        raise ModelError(f"model name '{name}': use lower-case letters, digits and '_' (e.g. iforest)")
    data = _npz_bytes(arrays)
    digest = hashlib.sha256(data).hexdigest()
    versions = _versions(models_dir, name)
    if versions:
        latest = models_dir / f"{name}-v{versions[-1]}"
        try:
            old = json.loads((latest / MANIFEST).read_text(encoding="utf-8"))
            if old.get("arrays", {}).get("sha256") == digest:
                return latest, False
        except (OSError, ValueError):
            pass
    version = (versions[-1] if versions else 0) + 1
    out = models_dir / f"{name}-v{version}"
    full = {
        "format": FORMAT,
        "name": name,
        "version": version,
        **{k: v for k, v in manifest.items() if k != "format"},
        "arrays": {
            "file": ARRAYS,
            "sha256": digest,
            "names": sorted(arrays),
            "dtypes": {k: str(arrays[k].dtype) for k in sorted(arrays)},
        },
    }
    tmp = models_dir / f".{name}-v{version}.tmp"
    try:
        tmp.mkdir(parents=True, exist_ok=False)
        (tmp / ARRAYS).write_bytes(data)
        (tmp / MANIFEST).write_text(json.dumps(full, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        tmp.rename(out)
    except OSError as exc:
        raise ModelError(f"{out}: could not write the model ({exc})") from None
    return out, True


# ---------------------------------------------------------------- loading


def resolve(ref: str, models_dir: Path = DEFAULT_MODELS_DIR) -> Path:
    """A model directory from a name (latest version), a name-vN, or a path to a directory."""
    path = Path(ref)
    if path.is_dir() and (path / MANIFEST).exists():
        return path
    m = DIR_RE.match(ref)
    if m:
        candidate = models_dir / ref
        if candidate.is_dir():
            return candidate
        raise ModelError(f"{candidate}: no such model version (see `followmoney model list`)")
    if NAME_RE.match(ref):
        versions = _versions(models_dir, ref)
        if versions:
            return models_dir / f"{ref}-v{versions[-1]}"
    raise ModelError(
        f"model '{ref}': not found in {models_dir} (give a name, name-vN or a model directory; "
        "see `followmoney model list`, or train one with `followmoney model train`)"
    )


def load(ref: str, models_dir: Path = DEFAULT_MODELS_DIR) -> Model:
    """Load and verify a model: manifest, arrays hash, no pickle, dtypes, feature order, tree indices."""
    path = resolve(ref, models_dir)
    for bad in sorted(p.name for p in path.iterdir() if p.suffix in (".pkl", ".pickle", ".joblib")):
        raise ModelError(f"{path / bad}: pickle/joblib model files are never loaded; export the model with followmoney")
    manifest_path = path / MANIFEST
    try:
        manifest_bytes = manifest_path.read_bytes()
        manifest = json.loads(manifest_bytes.decode("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{manifest_path}: missing; a model directory needs manifest.json and arrays.npz") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{manifest_path}: not valid JSON ({exc})") from None
    _check_manifest(manifest_path, manifest)
    arrays_path = path / ARRAYS
    try:
        data = arrays_path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{arrays_path}: missing") from None
    if data[:1] == b"\x80" or not data.startswith(b"PK"):
        raise ModelError(f"{arrays_path}: not a plain .npz archive (a pickle?); followmoney never loads pickles")
    if hashlib.sha256(data).hexdigest() != manifest["arrays"]["sha256"]:
        raise ModelError(
            f"{arrays_path}: sha256 differs from manifest.json (modified after training?); "
            "restore the model directory or retrain"
        )
    arrays = _read_arrays(arrays_path, data, manifest)
    _check_arrays(arrays_path, manifest["kind"], arrays, len(manifest["features"]))
    return Model(
        name=str(manifest["name"]),
        version=int(manifest["version"]),
        path=path,
        manifest=manifest,
        manifest_sha256=hashlib.sha256(manifest_bytes).hexdigest(),
        arrays=arrays,
    )


def _check_manifest(path: Path, manifest: Any) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ModelError(f"{path}: key 'format': expected '{FORMAT}'")
    for key in ("name", "version", "kind", "features", "arrays"):
        if key not in manifest:
            raise ModelError(f"{path}: key '{key}': missing")
    if manifest["kind"] not in MODEL_KINDS:
        raise ModelError(f"{path}: key 'kind': '{manifest['kind']}' is not one of {', '.join(MODEL_KINDS)}")
    names = [f.get("name") if isinstance(f, dict) else None for f in manifest["features"]]
    order = [FEATURE_NAMES.index(n) if n in FEATURE_NAMES else -1 for n in names]
    if not names or min(order) < 0 or order != sorted(set(order)):
        raise ModelError(
            f"{path}: key 'features': the model was trained on other features than this followmoney computes; "
            "retrain it with `followmoney model train`"
        )
    arrays = manifest["arrays"]
    if not isinstance(arrays, dict) or not isinstance(arrays.get("sha256"), str):
        raise ModelError(f"{path}: key 'arrays.sha256': missing")


def _read_arrays(path: Path, data: bytes, manifest: dict[str, Any]) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except ValueError as exc:  # object arrays need pickle: refused
        raise ModelError(f"{path}: holds arrays that need pickle to load ({exc}); refused") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelError(f"{path}: unreadable .npz archive ({exc})") from None
    expected = set(manifest["arrays"].get("names", []))
    if set(arrays) != expected:
        raise ModelError(f"{path}: arrays {sorted(arrays)} differ from those the manifest lists {sorted(expected)}")
    for k, a in arrays.items():
        if a.dtype.kind not in "fiubU":
            raise ModelError(f"{path}: array '{k}' has dtype {a.dtype}; only numbers and text are allowed")
    return arrays


def _check_arrays(path: Path, kind: str, a: dict[str, np.ndarray], d: int) -> None:
    """Shapes and indices the kernels rely on (Numba does not bounds-check); d = number of model inputs."""

    def need(cond: bool, what: str) -> None:
        if not cond:
            raise ModelError(f"{path}: {what}; the file is damaged or was not written by followmoney")

    need(
        all(k in a for k in ("score_grid", "feature_q", "fill", "corridor_keys", "corridor_rarity")),
        "missing common arrays",
    )
    need(a["fill"].shape == (d,) and a["feature_q"].shape == (len(FEATURE_LEVELS), d), "feature arrays of wrong shape")
    need(a["score_grid"].shape == SCORE_LEVELS.shape, "score distribution of wrong shape")
    need(a["corridor_keys"].shape == a["corridor_rarity"].shape, "corridor table of mismatched lengths")
    if kind == "iforest":
        keys = ("feature", "threshold", "left", "right", "leaf_value", "roots", "denominator")
        need(all(k in a for k in keys), "missing tree arrays")
        n = a["feature"].shape[0]
        need(
            all(a[k].shape == (n,) for k in keys[:5]) and a["denominator"].shape == (1,),
            "tree arrays of unequal length",
        )
        need(a["left"].dtype.kind in _INT_KINDS and a["right"].dtype.kind in _INT_KINDS, "tree links are not integers")
        idx = np.arange(n)
        left, right = a["left"].astype(np.int64), a["right"].astype(np.int64)
        internal = left >= 0
        need(
            bool(np.all((left == -1) | (left > idx)) and np.all((right == -1) | (right > idx))), "tree links point back"
        )
        need(
            bool(np.all(left < n) and np.all(right < n) and np.all(internal == (right >= 0))), "tree links out of range"
        )
        need(bool(np.all((a["feature"][internal] >= 0) & (a["feature"][internal] < d))), "tree features out of range")
        need(bool(np.all(a["feature"][~internal] == -1)), "tree leaves not marked")
        roots = a["roots"]
        need(roots.ndim == 1 and roots.size > 0 and bool(np.all((roots >= 0) & (roots < n))), "tree roots out of range")
        a["feature"] = np.ascontiguousarray(a["feature"], dtype=np.int32)
        a["left"] = np.ascontiguousarray(left, dtype=np.int32)
        a["right"] = np.ascontiguousarray(right, dtype=np.int32)
        a["roots"] = np.ascontiguousarray(roots, dtype=np.int64)
        if "prefilter_trees" in a or "prefilter_cutoff" in a:
            k, cut = a.get("prefilter_trees"), a.get("prefilter_cutoff")
            need(
                k is not None and cut is not None and k.shape == (1,) and cut.shape == (1,) and 0 < k[0] < roots.size,
                "prefilter arrays malformed",
            )
    else:
        need("ecod_ref" in a and "ecod_skew" in a, "missing ECOD arrays")
        need(a["ecod_ref"].ndim == 2 and a["ecod_ref"].shape[0] == d, "ECOD reference of wrong shape")
        need(a["ecod_skew"].shape == (d,), "ECOD skew signs of wrong shape")


def list_models(models_dir: Path = DEFAULT_MODELS_DIR) -> list[dict[str, Any]]:
    """Every model directory with its manifest summary (unreadable ones are listed with the problem)."""
    out: list[dict[str, Any]] = []
    if not models_dir.is_dir():
        return out
    for p in sorted(models_dir.iterdir(), key=lambda q: (DIR_RE.sub(r"\1", q.name), _version_of(q.name))):
        if not DIR_RE.match(p.name) or not p.is_dir():
            continue
        try:
            m = load(str(p), models_dir)
            out.append(
                {
                    "model": m.label,
                    "kind": m.kind,
                    "trained_at": m.manifest.get("trained_at", ""),
                    "rows": m.manifest.get("training", {}).get("rows"),
                    "pairs": m.manifest.get("training", {}).get("pairs"),
                    "manifest_sha256": m.manifest_sha256[:12],
                    "status": "ok",
                }
            )
        except ModelError as exc:
            out.append({"model": p.name, "kind": "?", "status": exc.one_line()})
    return out


def _version_of(name: str) -> int:
    m = DIR_RE.match(name)
    return int(m.group(2)) if m else 0


def score_table(model: Model, table: pl.DataFrame) -> pl.DataFrame:
    """The pair table with anomaly_score and anomaly_percentile columns added."""
    if table.height == 0:
        return table.with_columns(
            pl.lit(None, pl.Float64).alias("anomaly_score"), pl.lit(None, pl.Float64).alias("anomaly_percentile")
        )
    scores = model.table_scores(table)
    return table.with_columns(
        pl.Series("anomaly_score", scores), pl.Series("anomaly_percentile", model.percentiles(scores))
    )


def train_from_files(
    inputs: str,
    name: str,
    params: TrainParams,
    models_dir: Path = DEFAULT_MODELS_DIR,
    labels: Path | None = None,
    read: Any = None,
) -> tuple[Path, bool, dict[str, Any]]:
    """Read and normalise transaction files, train, and save the next version; (path, written, manifest)."""
    from followmoney.config import ReadOptions, ScanConfig
    from followmoney.errors import ResourceError
    from followmoney.memory import TRAIN_WORKING_SET_FACTOR, plan_memory
    from followmoney.pipeline import CORE_COLUMNS, load_transactions
    from followmoney.read import file_sha256, inspect_files, resolve_inputs

    if not NAME_RE.match(name):
        raise ModelError(f"model name '{name}': use lower-case letters, digits and '_' (e.g. iforest)")
    config = ScanConfig(inputs=inputs, out_dir=models_dir, read=read or ReadOptions())
    files = inspect_files(resolve_inputs(inputs), config.read)
    # Training holds every transfer and every pair in memory: stop with advice, before loading, where the kernel
    # would otherwise kill the process part way (the 50M-row synth world: about 51 GB by this estimate).
    plan = plan_memory(files, CORE_COLUMNS, factor=TRAIN_WORKING_SET_FACTOR)
    if plan.mode == "stop":
        raise ResourceError(
            plan.advice(
                "training",
                "train on fewer files (a few million transfers of a recent period show what is typical), "
                "or on a larger machine",
            )
        )
    clean, _ = load_transactions(files, config, None, lambda n: None)
    label_frame = None
    if labels is not None:
        try:
            label_frame = pl.read_parquet(labels)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise ModelError(f"{labels}: unreadable labels file ({' '.join(str(exc).split())[:120]})") from None
    info = [{"path": f.label, "sha256": file_sha256(f.path)} for f in files]
    arrays, manifest = train(clean, params, inputs=info, labels=label_frame)
    path, written = save(models_dir, name, arrays, manifest)
    return path, written, manifest
