"""The followmoney command line: the only module that prints, draws progress, or exits."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from followmoney import __version__

# Polars allocates with jemalloc; by default freed pages stay with the process for ~10 s, so a scan that
# loads partition after partition looks (and is, to the kernel) far bigger than its working set. Return
# them within half a second. Read by jemalloc when Polars loads, so set before any Polars import.
os.environ.setdefault("_RJEM_MALLOC_CONF", "background_thread:true,dirty_decay_ms:500,muzzy_decay_ms:500")

app = typer.Typer(
    name="followmoney",
    help="Find bribery and structuring signals in money-service transaction data.\n\n"
    "Example: followmoney scan dump.arrow --officials officials.csv --networks networks.csv --out alerts/",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
rules_app = typer.Typer(
    help="List and check the rule catalogue.\n\nExample: followmoney rules list",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(rules_app, name="rules")


def _stderr() -> Any:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _stdout() -> Any:
    from rich.console import Console

    # Piped or logged output is read later in full: give tables room instead of 80 columns.
    return Console(highlight=False, width=None if sys.stdout.isatty() else 200)


def _fail(message: str, code: int = 2) -> None:
    print(f"followmoney: error: {message}", file=sys.stderr)
    raise typer.Exit(code)


class _Interrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM/SIGHUP as an exception, so the same cleanup runs for each (temporary files removed).

    A subclass, not KeyboardInterrupt itself: CPython re-kills itself with SIGINT at exit when a bare
    KeyboardInterrupt once passed through PyRun_* (as inside some extension calls), even if caught.
    """

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


_PENDING: list[int] = []  # signals received during this command; cleared when the command starts


def _on_signal(signum: int, frame: object) -> None:
    _PENDING.append(signum)
    raise _Interrupted(signum)


def _checkpoint() -> None:
    """Raise again for a signal whose exception an extension swallowed (Polars reports such as 'ignored')."""
    if _PENDING:
        raise _Interrupted(_PENDING[-1])


@contextlib.contextmanager
def _termination_as_interrupt() -> Iterator[None]:
    """While a command runs, SIGINT, SIGTERM and SIGHUP unwind the stack instead of killing the process.

    The handler raises at once; should a library swallow that exception, the next stage boundary
    (`_Bars.stage`, which the pipeline enters before writing outputs) raises it again.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _PENDING.clear()
    wanted = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {sig: signal.signal(sig, _on_signal) for sig in wanted}
    default_hook = sys.unraisablehook

    def quiet_hook(unraisable: Any) -> None:  # the one-line rule: no 'Exception ignored' for our own signal
        if not (_PENDING or isinstance(unraisable.exc_value, _Interrupted)):
            default_hook(unraisable)

    sys.unraisablehook = quiet_hook
    try:
        yield
        _checkpoint()
    finally:
        # After a signal the quiet hook stays until the exit: objects the signal left half-built are finalised
        # later (llvmlite's, interrupted while Numba loaded a kernel: "Exception ignored in ObjectRef.__del__ ...
        # AttributeError" after the one-line message).
        if not _PENDING:
            sys.unraisablehook = default_hook
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _ignore_further_interrupts() -> None:
    """Cleanup is done and the exit code chosen: a repeated or late-delivered signal must not kill the exit."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


class _WarningLines(logging.Handler):
    """The library's warnings as `followmoney: …` lines on whatever sys.stderr is when one is emitted."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.setFormatter(logging.Formatter("followmoney: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Write one record as a line on the current stderr."""
        try:
            print(self.format(record), file=sys.stderr)
        except Exception:  # a closed stream must not turn a warning into a failure
            self.handleError(record)


def _native_bridges_ready() -> None:
    """Initialise what Polars' native code first does by calling back into Python, before signals become exceptions:
    its first `to_numpy` runs numpy's version check (rust-numpy's capsule), and an exception raised there makes the
    Rust side panic and print a backtrace (an interrupted scan once wrote 163 lines to stderr instead of one)."""
    import polars as pl

    pl.Series([0.0]).to_numpy()


@contextlib.contextmanager
def _user_errors() -> Iterator[None]:
    """Turn library errors into one line on stderr and exit code 2 (1 for bugs), never a traceback.

    SIGINT exits 130 and SIGTERM 143 (128 + signal), after the library has removed its temporary files.
    """
    from followmoney.errors import FollowMoneyError

    level = os.environ.get("FOLLOWMONEY_LOG", "").upper()
    log = logging.getLogger("followmoney")
    ours = [h for h in log.handlers if isinstance(h, _WarningLines)]
    if level in ("DEBUG", "INFO", "WARNING"):  # stage timings and memory on stderr; never names or ids
        for handler in ours:  # the root handler below prints warnings too
            log.removeHandler(handler)
        logging.basicConfig(level=level, format="followmoney: %(message)s", stream=sys.stderr)
    elif not ours:  # warnings only (a file's layout that defeats --memory-limit), as they happen
        log.addHandler(_WarningLines())
    _native_bridges_ready()
    try:
        with _termination_as_interrupt():
            yield
    except typer.Exit:
        raise
    except BaseException as exc:
        if isinstance(exc, SystemExit | GeneratorExit):
            raise
        if _PENDING or isinstance(exc, KeyboardInterrupt):
            # Whatever surfaced after a signal is its consequence: a compiled kernel, for one, turns the
            # interrupt into "SystemError: ... returned a result with an exception set".
            signum = _PENDING[-1] if _PENDING else getattr(exc, "signum", 2)
            _ignore_further_interrupts()
            _fail("interrupted; no partial output was left behind", 128 + signum)
        if isinstance(exc, FollowMoneyError):
            _fail(exc.one_line(), exc.exit_code)
        if os.environ.get("FOLLOWMONEY_DEBUG"):  # a bug (incl. a Polars panic): traceback only on request
            raise
        _fail(
            f"internal error ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); "
            "rerun with FOLLOWMONEY_DEBUG=1 for a traceback and please report it",
            1,
        )


class _Bars:
    """Progress bars on stderr for the pipeline's stages (transient, off with --quiet)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled

    @contextlib.contextmanager
    def stage(self, name: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        _checkpoint()  # a swallowed interrupt stops the run here, before e.g. the outputs are written
        if not self.enabled:
            yield lambda n: _checkpoint()
            _checkpoint()
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = [
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=_stderr(), transient=True) as bars:
            task = bars.add_task(name, total=total)

            def advance(n: int) -> None:
                _checkpoint()
                bars.advance(task, n)

            yield advance
        _checkpoint()


def _version(value: bool) -> None:
    if value:
        print(f"followmoney {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Find bribery and structuring signals in money-service transaction data."""


def _split(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for v in values or []:
        out.extend(p.strip() for p in v.split(",") if p.strip())
    return tuple(out)


@app.command()
def scan(
    inputs: Annotated[str, typer.Argument(help="Transaction file, directory or glob (Arrow IPC, Parquet, CSV).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for alerts.parquet, alerts.csv, summary.json.")],
    officials: Annotated[Path | None, typer.Option(help="Officials list (OpenSanctions targets.simple.csv).")] = None,
    networks: Annotated[Path | None, typer.Option(help="Known networks list (CSV).")] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="Rename a column: contract=source (repeatable), or a TOML mapping file."),
    ] = None,
    fx: Annotated[Path | None, typer.Option(help="FX table CSV: currency, usd_per_unit[, date].")] = None,
    assume_tz: Annotated[
        str | None, typer.Option(help="Zone for time-zone-naive timestamps, e.g. Asia/Bangkok.")
    ] = None,
    csv_delimiter: Annotated[str | None, typer.Option(help="CSV field delimiter (default ',').")] = None,
    encoding: Annotated[str | None, typer.Option(help="CSV text encoding if not UTF-8, e.g. cp1252.")] = None,
    select: Annotated[list[str] | None, typer.Option(help="Run only these rule codes or globs (FM10*).")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Skip these rule codes or globs.")] = None,
    rules_dir: Annotated[Path | None, typer.Option(help="Directory of rule files (default: bundled rules/).")] = None,
    config: Annotated[
        Path | None, typer.Option(help="TOML config: [scan] options and [rules.FM101] overrides.")
    ] = None,
    min_score: Annotated[
        float | None, typer.Option(help="Write only alerts scoring at least this (default 25).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="Anomaly model: a name (latest version), name-vN or a model directory (default: iforest)."),
    ] = None,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            help="Memory the scan may use, e.g. 8GiB (default: 80% of what is available). A larger input is "
            "partitioned by party into spill files and scanned partition by partition."
        ),
    ] = None,
    spill_dir: Annotated[
        Path | None,
        typer.Option(
            help="Directory for the partition spill files and temporary copies of inputs (default: inside --out)."
        ),
    ] = None,
    spill_compression: Annotated[
        str | None,
        typer.Option(
            help="Spill files: auto (uncompressed when they fit twice over on the spill disk and in the memory "
            "left to the page cache, else zstd), none (fastest while cached) or zstd (a third of the bytes)."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Scan a transaction dump and write scored, evidenced alerts.

    Example: followmoney scan sample_data/transactions.arrow --officials sample_data/officials.csv
    --networks sample_data/networks.csv --out out/
    """
    with _user_errors():
        from followmoney.config import DEFAULT_RULES_DIR, ReadOptions, ScanConfig, load_config_file, parse_column_map
        from followmoney.pipeline import run

        file_cfg: dict[str, Any] = load_config_file(config) if config else {}
        scan_cfg = file_cfg.get("scan", {})

        def pick(flag: Any, key: str, default: Any = None) -> Any:
            return flag if flag is not None else scan_cfg.get(key, default)

        def path_or_none(value: Any) -> Path | None:
            return Path(value) if value is not None else None

        read = ReadOptions(
            column_map=parse_column_map(list(scan_cfg.get("map", [])) + list(map_ or [])),
            csv_delimiter=pick(csv_delimiter, "csv_delimiter", ","),
            encoding=pick(encoding, "encoding"),
            assume_tz=pick(assume_tz, "assume_tz"),
        )
        if len(read.csv_delimiter) != 1:
            _fail(f"--csv-delimiter must be one character, got '{read.csv_delimiter}'")
        cfg = ScanConfig(
            inputs=inputs,
            out_dir=out,
            officials=path_or_none(pick(officials, "officials")),
            networks=path_or_none(pick(networks, "networks")),
            read=read,
            fx=path_or_none(pick(fx, "fx")),
            select=_split(select) or tuple(scan_cfg.get("select", ())),
            exclude=_split(exclude) or tuple(scan_cfg.get("exclude", ())),
            rule_overrides=dict(file_cfg.get("rules", {})),
            link=dict(file_cfg.get("link", {})),
            min_score=float(pick(min_score, "min_score", 25.0)),
            rules_dir=Path(pick(rules_dir, "rules_dir", DEFAULT_RULES_DIR)),
            model=pick(model, "model"),
            memory_limit=_size_option(pick(memory_limit, "memory_limit")),
            spill_dir=path_or_none(pick(spill_dir, "spill_dir")),
            spill_compression=_spill_compression(pick(spill_compression, "spill_compression", "auto")),
        )
        summary = run(cfg, progress=_Bars(enabled=not quiet and sys.stderr.isatty()))
        _print_summary(summary)


def _spill_compression(text: str) -> str:
    """--spill-compression text -> auto, none or zstd (a one-line error on anything else)."""
    from followmoney.partition import SPILL_COMPRESSIONS

    choice = str(text).strip().lower()
    if choice not in SPILL_COMPRESSIONS:
        _fail(f"--spill-compression must be one of {', '.join(SPILL_COMPRESSIONS)}, got '{text}'")
    return choice


def _size_option(text: str | None) -> int | None:
    """--memory-limit text -> bytes (a one-line error on anything that is not a size)."""
    if text is None:
        return None
    from followmoney.memory import parse_size

    try:
        size = parse_size(str(text))
    except ValueError:
        _fail(f"--memory-limit {text!r}: expected a size such as 8GiB, 512MB or 2g")
    if size <= 0:
        _fail(f"--memory-limit {text!r}: must be more than zero")
    return size


def _print_summary(summary: Any) -> None:
    """A short table: rows read/scanned/quarantined, alerts per typology, the top 10 alerts."""
    from rich.table import Table

    d = summary.data
    console = _stdout()
    counts = Table(title="followmoney scan", show_header=False)
    counts.add_row("rows read", f"{d['rows_read']:,}")
    counts.add_row("rows scanned", f"{d['rows_scanned']:,}")
    counts.add_row("rows quarantined", f"{d['rows_quarantined']:,}")
    for typology, n in d["alerts_per_typology"].items():
        counts.add_row(f"alerts: {typology}", f"{n:,}")
    counts.add_row("alerts written", f"{d['alerts']:,}")
    console.print(counts)
    top = Table(title="top alerts")
    for col in ("score", "alert_id", "typology", "subject_id", "counterparty_id", "network_id", "n_txns", "total_usd"):
        top.add_column(col)
    for row in summary.alerts.head(10).to_dicts():
        top.add_row(
            f"{row['score']:.1f}",
            row["alert_id"],
            row["typology"],
            row["subject_id"],
            row["counterparty_id"] or "",
            row["network_id"] or "",
            str(row["n_txns"]),
            f"{row['total_usd']:,.0f}",
        )
    console.print(top)
    console.print(f"outputs in {summary.outputs[0].parent}" if summary.outputs else "")


@app.command()
def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the synthetic world.")],
    rows: Annotated[int, typer.Option(help="Number of transaction rows.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same world).")] = 7,
    chunk_rows: Annotated[int, typer.Option(help="Rows generated per chunk (bounds memory).")] = 1_000_000,
    bad_fraction: Annotated[float, typer.Option(help="Share of deliberately bad rows (quarantine tests).")] = 0.0005,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Write a synthetic money-service world: transactions, officials, networks and ground-truth labels.

    Example: followmoney synth --rows 1000000 --seed 7 --out worlds/1m
    """
    with _user_errors():
        from followmoney.synth import generate_world

        if rows < 1000:
            _fail("--rows must be at least 1000")
        bars = _Bars(enabled=not quiet and sys.stderr.isatty())
        with bars.stage("generating transactions", total=rows) as advance:
            result = generate_world(rows, seed, out, chunk_rows=chunk_rows, bad_fraction=bad_fraction, progress=advance)
        print(f"wrote a world of {rows:,} rows to {out}")
        del result


@app.command()
def evaluate(
    alerts: Annotated[Path, typer.Argument(help="alerts.parquet written by scan.")],
    labels: Annotated[Path, typer.Argument(help="labels.parquet written by synth.")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON here.")] = None,
) -> None:
    """Precision, recall and F1 per typology and rule, precision@50/@200, look-alike false-positive rate.

    Example: followmoney evaluate out/demo/alerts.parquet sample_data/labels.parquet
    """
    with _user_errors():
        import json

        from rich.table import Table

        from followmoney.evaluate import evaluate_files

        result = evaluate_files(alerts, labels)
        table = Table(title="per typology (entity level)")
        for col in ("typology", "alerts", "planted", "found", "precision", "recall", "f1"):
            table.add_column(col)
        for typ, m in result["per_typology"].items():
            table.add_row(
                typ,
                str(m["alerts"]),
                str(m["planted"]),
                str(m["patterns_found"]),
                f"{m['precision']:.3f}",
                f"{m['recall']:.3f}",
                f"{m['f1']:.3f}",
            )
        console = _stdout()
        console.print(table)
        rules = Table(title="per rule")
        for col in ("rule", "alerts", "true alerts", "precision", "patterns found"):
            rules.add_column(col)
        for code, m in result["per_rule"].items():
            rules.add_row(
                code, str(m["alerts"]), str(m["true_alerts"]), f"{m['precision']:.3f}", str(m["patterns_found"])
            )
        console.print(rules)
        console.print(
            f"precision@50 {result['precision@50']:.3f}   precision@200 {result['precision@200']:.3f}   "
            f"look-alike FP rate {result['lookalike_fp_rate']:.4f} "
            f"({result['lookalike_parties_alerted']}/{result['lookalike_parties']} parties)"
        )
        for kind, m in result["lookalike_fp_by_kind"].items():
            console.print(f"  {kind}: {m['alerted']}/{m['parties']} alerted")
        reached = ", ".join(f"{t} {n}" for t, n in result["lookalike_parties_by_alert_typology"].items()) or "none"
        console.print(f"look-alike parties reached, by alert typology: {reached}")
        console.print(
            f"average precision {result['average_precision']:.3f}   planted patterns found by any alert "
            f"{result['patterns_found_by_any_alert']}/{result['planted_patterns']}"
        )
        if json_out:
            json_out.write_text(json.dumps(result, indent=2) + "\n")


@app.command("match-eval")
def match_eval(
    world: Annotated[Path, typer.Argument(help="A directory written by `followmoney synth` (identities.parquet).")],
    threshold: Annotated[float, typer.Option(help="Match threshold (confidence 0-1).")] = 0.85,
    review_floor: Annotated[float, typer.Option(help="Below the threshold, down to this: 'possible'.")] = 0.70,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON here.")] = None,
) -> None:
    """Precision and recall of the list matcher against a synthetic world's planted identities.

    Example: followmoney match-eval worlds/60k --threshold 0.85
    """
    with _user_errors():
        import json

        from followmoney.errors import ConfigError
        from followmoney.link import LinkSettings
        from followmoney.match_eval import evaluate_world
        from followmoney.matching import MatchSettings

        if not 0 < review_floor <= threshold <= 1:
            raise ConfigError(f"need 0 < --review-floor ({review_floor}) <= --threshold ({threshold}) <= 1")
        settings = LinkSettings(match=MatchSettings(threshold=threshold, review_floor=review_floor))
        result = evaluate_world(world, settings)
        console = _stdout()
        console.print(
            f"parties {result['parties']:,}  list entries {result['list_entries']:,}  "
            f"threshold {threshold}  review floor {review_floor}  ({result['seconds']} s)"
        )
        console.print(
            f"precision {result['precision']:.4f}  recall {result['recall']:.4f}  "
            f"({result['true_positives']}/{result['matches']} matches true, "
            f"{result['true_positives']}/{result['true_identities']} identities found; "
            f"{result['identities_not_in_transactions']} identities never transact)"
        )
        console.print(
            f"namesakes matched above threshold {result['namesakes_matched']}/{result['namesakes']}  "
            f"(reported as possible: {result['namesakes_possible']}); possible matches {result['possible']}"
        )
        for row in result["per_noise"]:
            console.print(f"  recall {row['noise']:<16} {row['found']}/{row['n']}")
        if json_out:
            json_out.write_text(json.dumps(result, indent=2, default=str) + "\n")


@rules_app.command("list")
def rules_list(
    rules_dir: Annotated[Path | None, typer.Option(help="Directory of rule files (default: bundled rules/).")] = None,
) -> None:
    """List the rules: code, name, typology, severity, source.

    Example: followmoney rules list
    """
    with _user_errors():
        from rich.table import Table

        from followmoney.config import DEFAULT_RULES_DIR
        from followmoney.rules import load_rules

        table = Table(title="followmoney rules")
        for col in ("code", "name", "typology", "severity", "source"):
            table.add_column(col)
        for rule in load_rules(rules_dir or DEFAULT_RULES_DIR):
            table.add_row(rule.code, rule.name, rule.typology, f"{rule.severity:.2f}", rule.source)
        _stdout().print(table)


@rules_app.command("doc")
def rules_doc(
    rules_dir: Annotated[Path | None, typer.Option(help="Directory of rule files (default: bundled rules/).")] = None,
) -> None:
    """Print the rule catalogue as a Markdown table (the README's table is this output).

    Example: followmoney rules doc
    """
    with _user_errors():
        from followmoney.config import DEFAULT_RULES_DIR
        from followmoney.rules import load_rules, rules_markdown

        print(rules_markdown(load_rules(rules_dir or DEFAULT_RULES_DIR)), end="")


@rules_app.command("check")
def rules_check(
    rules_dir: Annotated[Path | None, typer.Option(help="Directory of rule files (default: bundled rules/).")] = None,
) -> None:
    """Validate every rule file and run its examples; exit 1 if an example fails.

    Example: followmoney rules check
    """
    with _user_errors():
        from followmoney.config import DEFAULT_RULES_DIR
        from followmoney.pipeline import run_example
        from followmoney.rules import load_rules

        failures = 0
        for rule in load_rules(rules_dir or DEFAULT_RULES_DIR):
            for example in rule.examples:
                n = run_example(rule, example)
                ok = (n > 0) == (example.expect == "alert")
                failures += not ok
                print(f"{'ok  ' if ok else 'FAIL'} {rule.code} {example.expect:5} {example.name} ({n} alert(s))")
        if failures:
            print(f"{failures} example(s) failed", file=sys.stderr)
            raise typer.Exit(1)


# ---------------------------------------------------------------- anomaly models (issue 5)

model_app = typer.Typer(
    help="Train and list anomaly models (models/<name>-v<N>/: manifest.json + arrays.npz, never pickle).\n\n"
    "Example: followmoney model list",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(model_app, name="model")


@model_app.command("train")
def model_train(
    transactions: Annotated[str, typer.Argument(help="Transaction file, directory or glob to learn 'typical' from.")],
    name: Annotated[str, typer.Option(help="Model name; saved as the next version models/<name>-v<N>/.")] = "iforest",
    kind: Annotated[str, typer.Option(help="iforest (isolation forest) or ecod (parameter-free tails).")] = "iforest",
    seed: Annotated[int, typer.Option(help="Random seed (same data and seed, same model).")] = 0,
    trees: Annotated[int, typer.Option(help="Isolation-forest trees.")] = 100,
    max_samples: Annotated[int, typer.Option(help="Rows per isolation tree.")] = 256,
    labels: Annotated[
        Path | None, typer.Option(help="labels.parquet from synth: records the ROC AUC on planted anomalies.")
    ] = None,
    models_dir: Annotated[Path | None, typer.Option(help="Where models live (default: bundled models/).")] = None,
) -> None:
    """Fit an anomaly model on payer->receiver pair features and save it as a new version.

    Example: followmoney model train worlds/1m/transactions.arrow --name iforest --kind iforest
    """
    with _user_errors():
        from followmoney.config import DEFAULT_MODELS_DIR
        from followmoney.models import MODEL_KINDS, TrainParams, train_from_files

        if kind not in MODEL_KINDS:
            _fail(f"--kind must be one of {', '.join(MODEL_KINDS)}, got '{kind}'")
        if trees < 1 or max_samples < 2:
            _fail("--trees must be at least 1 and --max-samples at least 2")
        params = TrainParams(kind=kind, seed=seed, n_trees=trees, max_samples=max_samples)
        path, written, manifest = train_from_files(transactions, name, params, models_dir or DEFAULT_MODELS_DIR, labels)
        what = "wrote" if written else "unchanged, same as"
        metrics = manifest["metrics"]
        auc = metrics.get("roc_auc_planted_anomaly_pairs")
        print(
            f"{what} {path} ({kind}, {manifest['training']['pairs']:,} pairs from {manifest['training']['rows']:,} rows"
            + (f", ROC AUC on planted anomalies {auc:.3f}" if auc is not None else "")
            + ")"
        )


@model_app.command("list")
def model_list(
    models_dir: Annotated[Path | None, typer.Option(help="Where models live (default: bundled models/).")] = None,
) -> None:
    """List the models: name-version, kind, training size, manifest hash, whether it loads.

    Example: followmoney model list
    """
    with _user_errors():
        from rich.table import Table

        from followmoney.config import DEFAULT_MODELS_DIR
        from followmoney.models import list_models

        table = Table(title="followmoney models")
        for col in ("model", "kind", "trained_at", "rows", "pairs", "manifest", "status"):
            table.add_column(col)
        for m in list_models(models_dir or DEFAULT_MODELS_DIR):
            table.add_row(
                m["model"],
                m["kind"],
                str(m.get("trained_at", "")),
                f"{m['rows']:,}" if m.get("rows") is not None else "",
                f"{m['pairs']:,}" if m.get("pairs") is not None else "",
                m.get("manifest_sha256", ""),
                m["status"],
            )
        _stdout().print(table)


def console_main() -> None:
    """The `followmoney` command: run the CLI, then leave without tearing the interpreter down.

    By the time app() returns, outputs are written and closed; exit handlers (the transcoded CSV copies,
    logging) still run here, as at a normal exit. What is skipped is Python freeing every object and module
    of Polars, Numba and SciPy one by one: 0.4 s of every scan (a sample scan took 2.8 s, now 2.4 s)."""
    import atexit

    try:
        app()
        code: int = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:  # sys.exit("message"): Python prints it and exits 1
            print(exc.code, file=sys.stderr)
            code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    console_main()
