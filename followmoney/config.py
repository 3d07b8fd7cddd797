"""Frozen run configuration: defaults < config file < CLI flags."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from followmoney.errors import ConfigError
from followmoney.schema import TXN_SCHEMA

DEFAULT_RULES_DIR = Path(__file__).resolve().parent.parent / "rules"
DEFAULT_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"  # anomaly models (models.py)


@dataclass(frozen=True)
class ReadOptions:
    """How to read transaction files."""

    column_map: dict[str, str] = field(default_factory=dict)  # contract name -> name in the file
    csv_delimiter: str = ","
    encoding: str | None = None  # None = UTF-8 (BOM allowed)
    assume_tz: str | None = None
    # Where an Arrow copy of a file in oversized blocks is written (read.LARGE_BLOCK_ROWS): a scan passes its spill
    # files' place (partition.spill_parent); None: the system's temporary directory.
    temp_dir: Path | None = None


@dataclass(frozen=True)
class ScanConfig:
    """Everything one `scan` run depends on; two runs with equal configs give equal alerts."""

    inputs: str
    out_dir: Path
    officials: Path | None = None
    networks: Path | None = None
    read: ReadOptions = field(default_factory=ReadOptions)
    fx: Path | None = None
    rules_dir: Path = DEFAULT_RULES_DIR
    select: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    rule_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    min_score: float = 25.0
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    max_amount_usd: float = 100_000_000.0
    link: dict[str, Any] = field(default_factory=dict)  # [link] table: match threshold, review floor, max_hops, ...
    model: str | None = None  # anomaly model for rules of kind `anomaly` (None: the rule's own `model` param)
    models_dir: Path = DEFAULT_MODELS_DIR
    memory_limit: int | None = None  # bytes the scan may plan to use (None: a safe share of the machine)
    spill_dir: Path | None = None  # where partitions are spilled when the scan is larger than memory (None: out_dir)
    spill_compression: str = "auto"  # spill files: "auto" (uncompressed when the disk has room), "none" or "zstd"


def parse_column_map(items: list[str]) -> dict[str, str]:
    """Turn `--map contract=source` pairs (or paths of TOML files with such pairs) into a mapping."""
    mapping: dict[str, str] = {}
    for item in items:
        if "=" in item:
            target, _, source = item.partition("=")
            pairs = {target.strip(): source.strip()}
        else:
            path = Path(item)
            if not path.is_file():
                raise ConfigError(f"--map {item}: expected contract=source or a TOML mapping file")
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{path}: not a valid TOML mapping file ({exc})") from None
            table = data.get("columns", data)
            pairs = {str(k): str(v) for k, v in table.items()}
        for target, source in pairs.items():
            if target not in TXN_SCHEMA:
                raise ConfigError(f"--map {target}={source}: '{target}' is not a contract column")
            if not source:
                raise ConfigError(f"--map {target}=: the source column name is empty")
            mapping[target] = source
    return mapping


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a user config file (TOML): `[scan]` options and `[rules.FM101]` parameter overrides."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - {"scan", "rules", "link"})
    if unknown:
        raise ConfigError(
            f"{path}: unknown section(s) {', '.join(unknown)}; expected [scan], [rules.<CODE>] and [link]"
        )
    return data


def with_overrides(config: ScanConfig, **changes: Any) -> ScanConfig:
    """A copy of `config` with the given fields replaced (None values are ignored)."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
