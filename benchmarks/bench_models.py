"""Anomaly-model scoring: exported trees in Numba vs scikit-learn's IsolationForest, and the feature stage.

    python benchmarks/bench_models.py --pairs 1M,10M          # scoring only (synthetic pair matrices)
    python benchmarks/bench_models.py --world /tmp/m1m        # + feature table and scoring on a synth world

Scoring: one forest (100 trees, 256 rows each, the `model train` defaults) fitted on 100k synthetic
rows of the model's width, then the same N rows scored by sklearn `score_samples` (n_jobs default)
and by followmoney.forest.score_forest (Numba, 2 threads), exactly (all trees; both results must
agree bit for bit) and with the calibrated 20-tree prefilter the scan uses (exact for the top 1%).
Prints a table (pairs, seconds, pairs/s, ratio, CPU seconds) and, with --world, how long the
pair-feature table takes beside scoring. Numbers are wall clock on this machine (median of --repeat
runs), not assertions.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
from run import parse_rows as parse_counts  # benchmarks/ is on sys.path when run as a script


def timed(fn, repeat: int) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    """Median wall time of `repeat` calls, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def cpu_time(fn) -> float:  # type: ignore[no-untyped-def]
    """CPU seconds of one call (all threads): fairer than wall time on a busy shared machine."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def bench_scoring(counts: list[int], repeat: int, sklearn_max: int) -> None:
    """Numba vs sklearn on synthetic matrices of the model's width."""
    from sklearn.ensemble import IsolationForest

    from followmoney.features import FEATURE_NAMES
    from followmoney.forest import score_forest
    from followmoney.models import TrainParams, _calibrate_prefilter, _export_iforest

    d = len(FEATURE_NAMES)
    rng = np.random.default_rng(0)
    fit = rng.lognormal(size=(100_000, d))
    params = TrainParams()
    arrays, _ = _export_iforest(fit, params)
    forest = IsolationForest(n_estimators=params.n_trees, max_samples=params.max_samples, random_state=params.seed)
    forest.fit(fit)
    arrays.update(_calibrate_prefilter(fit, arrays, score_forest(fit, arrays, exact=True)))
    print(
        f"{'pairs':>12} {'prefilter s':>11} {'numba s':>9} {'pairs/s':>12} {'sklearn s':>10} {'pairs/s':>12}"
        f" {'ratio':>7} {'numba cpu':>10} {'sklearn cpu':>12} {'cpu ratio':>10}"
    )
    for n in counts:
        x = rng.lognormal(size=(n, d))
        t_fast, _ = timed(lambda x=x: score_forest(x, arrays), repeat)
        t_numba, ours = timed(lambda x=x: score_forest(x, arrays, exact=True), repeat)
        if n <= sklearn_max:
            t_sk, theirs = timed(lambda x=x: forest.score_samples(x), repeat)
            assert np.array_equal(np.asarray(ours), -np.asarray(theirs)), "scores differ from sklearn"
            c_numba = cpu_time(lambda x=x: score_forest(x, arrays, exact=True))
            c_sk = cpu_time(lambda x=x: forest.score_samples(x))
            sk = f"{t_sk:10.2f} {n / t_sk:12,.0f} {t_sk / t_numba:6.1f}x"
            sk += f" {c_numba:10.2f} {c_sk:12.2f} {c_sk / c_numba:9.1f}x"
        else:
            sk = f"{'(skipped)':>10} {'':>12} {'':>7}"
        print(f"{n:12,} {t_fast:11.2f} {t_numba:9.2f} {n / t_numba:12,.0f} {sk}")


def bench_world(path: Path, repeat: int) -> None:
    """Feature table vs scoring on a real synth world (what `scan` spends in its model stage)."""
    from followmoney.config import ScanConfig
    from followmoney.features import pair_table
    from followmoney.models import load, score_table
    from followmoney.pipeline import load_transactions
    from followmoney.read import inspect_files, resolve_inputs

    config = ScanConfig(inputs=str(path / "transactions.arrow"), out_dir=path)
    clean, _ = load_transactions(
        inspect_files(resolve_inputs(config.inputs), config.read), config, None, lambda n: None
    )
    model = load("iforest")
    t_feat, table = timed(lambda: pair_table(clean, model.corridors()), repeat)
    t_score, _ = timed(lambda: score_table(model, table), repeat)  # type: ignore[arg-type]
    n = table.height  # type: ignore[attr-defined]
    print(f"world {path}: {clean.height:,} rows, {n:,} pairs")
    print(f"  pair features {t_feat:6.2f} s   scoring {t_score:6.2f} s ({n / t_score:,.0f} pairs/s)")


def main() -> None:
    """Parse arguments and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", default="1M", help="pair counts to score, e.g. 1M,10M")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sklearn-max", default="10M", help="skip sklearn above this many pairs")
    parser.add_argument("--world", type=Path, help="a synth world directory to time the feature stage on")
    args = parser.parse_args()
    bench_scoring(parse_counts(args.pairs), args.repeat, parse_counts(args.sklearn_max)[0])
    if args.world:
        bench_world(args.world, args.repeat)


if __name__ == "__main__":
    main()
