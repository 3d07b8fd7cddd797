"""Registry of detector kinds; a rule names its kind, the registry gives the code that runs it."""

from __future__ import annotations

from followmoney.detectors.anomaly import AnomalousPair
from followmoney.detectors.base import Detector, Param
from followmoney.detectors.fan import DistinctInWindow
from followmoney.detectors.oneoff import OneOffAfterTransfer
from followmoney.detectors.pooling import PoolAndForward
from followmoney.detectors.recurring import RecurringPair
from followmoney.detectors.rounding import RoundAmounts
from followmoney.detectors.structuring import NearThresholdWindow

DETECTORS: dict[str, type[Detector]] = {
    cls.kind: cls
    for cls in (
        NearThresholdWindow,
        RecurringPair,
        DistinctInWindow,
        PoolAndForward,
        OneOffAfterTransfer,
        RoundAmounts,
        AnomalousPair,  # the anomaly engineer's kind (detectors/anomaly.py)
    )
}

__all__ = ["DETECTORS", "Detector", "Param"]
