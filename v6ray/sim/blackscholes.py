"""Black-Scholes-Merton prices and greeks (continuous dividend yield).

Greeks are reported the way IB's tickOptionComputation reports them: vega per one
volatility point (1 %), theta per calendar day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

RISK_FREE_RATE = 0.045
MIN_YEARS = 1.0 / (365.0 * 24.0 * 60.0)  # one minute: an expiring option still has a price


@dataclass(frozen=True)
class Greeks:
    price: float
    delta: float
    gamma: float
    vega: float  # per 1 vol point
    theta: float  # per calendar day


def norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def norm_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def greeks(
    right: str, spot: float, strike: float, years: float, vol: float, dividend: float = 0.0,
    rate: float = RISK_FREE_RATE,
) -> Greeks:
    """Price and greeks of one European option; ``right`` is "C" or "P"."""
    t = max(years, MIN_YEARS)
    sqrt_t = math.sqrt(t)
    d1 = (math.log(spot / strike) + (rate - dividend + 0.5 * vol * vol) * t) / (vol * sqrt_t)
    d2 = d1 - vol * sqrt_t
    disc_q, disc_r = math.exp(-dividend * t), math.exp(-rate * t)
    pdf = norm_pdf(d1)
    gamma = disc_q * pdf / (spot * vol * sqrt_t)
    vega = spot * disc_q * pdf * sqrt_t / 100.0
    common = -spot * disc_q * pdf * vol / (2.0 * sqrt_t)
    if right == "C":
        price = spot * disc_q * norm_cdf(d1) - strike * disc_r * norm_cdf(d2)
        delta = disc_q * norm_cdf(d1)
        theta = (common - rate * strike * disc_r * norm_cdf(d2)
                 + dividend * spot * disc_q * norm_cdf(d1))
    else:
        price = strike * disc_r * norm_cdf(-d2) - spot * disc_q * norm_cdf(-d1)
        delta = -disc_q * norm_cdf(-d1)
        theta = (common + rate * strike * disc_r * norm_cdf(-d2)
                 - dividend * spot * disc_q * norm_cdf(-d1))
    return Greeks(price=max(price, 0.0), delta=delta, gamma=gamma, vega=vega, theta=theta / 365.0)


def _norm_cdf_array(x: np.ndarray) -> np.ndarray:
    # Abramowitz & Stegun 26.2.17 (|error| < 7.5e-8): numpy has no erf of its own.
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.2316419 * z)
    poly = t * (0.319381530 + t * (-0.356563782 + t * (1.781477937
                                                       + t * (-1.821255978 + t * 1.330274429))))
    upper = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi) * poly
    return np.where(x >= 0, 1.0 - upper, upper)


def prices(
    right: str, spot: np.ndarray, strike: float, years: np.ndarray, vol: np.ndarray,
    dividend: float = 0.0, rate: float = RISK_FREE_RATE,
) -> np.ndarray:
    """Vectorised option prices (for historical option bars)."""
    t = np.maximum(years, MIN_YEARS)
    sqrt_t = np.sqrt(t)
    d1 = (np.log(spot / strike) + (rate - dividend + 0.5 * vol * vol) * t) / (vol * sqrt_t)
    d2 = d1 - vol * sqrt_t
    disc_q, disc_r = np.exp(-dividend * t), np.exp(-rate * t)
    if right == "C":
        value = spot * disc_q * _norm_cdf_array(d1) - strike * disc_r * _norm_cdf_array(d2)
    else:
        value = strike * disc_r * _norm_cdf_array(-d2) - spot * disc_q * _norm_cdf_array(-d1)
    return np.maximum(value, 0.0)
