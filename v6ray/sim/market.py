"""Prices of every instrument: snapshot quotes and historical bars, from the root walks.

Consistency between instruments comes from pricing them off one root walk: SPY is
SPX/10 exactly, ES is SPX grown at its cost of carry to expiry, an option is
Black-Scholes on its underlying with a deterministic volatility smile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time

import numpy as np

from v6ray.sim import blackscholes
from v6ray.sim.calendar import NEW_YORK
from v6ray.sim.lookup import ContractBook
from v6ray.sim.prices import EPOCH, YEAR_SECONDS, PricePaths
from v6ray.sim.universe import ROOTS, Instrument, Underlying

_SPOT_CACHE_SIZE = 4096
_CHUNK_POINTS = 40 * 1440  # bars are computed in chunks of at most this many grid points
IV_HALF_SPREAD = 0.005  # bid/ask quoted half a vol point either side of the model


@dataclass(frozen=True)
class OptionQuote:
    underlying: float
    model: blackscholes.Greeks
    model_iv: float
    bid: blackscholes.Greeks
    bid_iv: float
    ask: blackscholes.Greeks
    ask_iv: float


@dataclass(frozen=True)
class Quote:
    bid: float | None  # None: no bid/ask (indices)
    ask: float | None
    last: float
    bid_size: int
    ask_size: int
    last_size: int
    volume: int
    close: float
    option: OptionQuote | None = None


@dataclass(frozen=True)
class Bar:
    start: int
    end: int
    open: float
    high: float
    low: float
    close: float
    volume: float  # -1 where IB sends no volume (MIDPOINT, BID, ...)
    wap: float
    count: int


def _round_to(values, tick: float):
    return np.round(np.round(np.asarray(values) / tick) * tick, 6)


def expiry_epoch(instrument: Instrument) -> int:
    day = datetime.strptime(instrument.expiry, "%Y%m%d").date()
    return int(datetime.combine(day, time(16, 0), tzinfo=NEW_YORK).timestamp())


class Market:
    """Deterministic market for one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.paths = PricePaths(seed)
        self.book = ContractBook(self.reference_spot)
        self._spot_cache: dict[tuple[str, int], float] = {}

    # --- spot ------------------------------------------------------------------------
    def root_price(self, root_symbol: str, epoch_seconds: float) -> float:
        key = (root_symbol, int(epoch_seconds))
        price = self._spot_cache.get(key)
        if price is None:
            root = ROOTS[root_symbol]
            log = self.paths.log_price_at(root_symbol, root.annual_vol, epoch_seconds)
            price = root.reference_price * math.exp(log)
            if len(self._spot_cache) >= _SPOT_CACHE_SIZE:
                self._spot_cache.clear()
            self._spot_cache[key] = price
        return price

    def reference_spot(self, underlying: Underlying, day: date) -> float:
        """The underlying at 09:30 New York on ``day``: centres that day's strike grid."""
        opening = datetime.combine(day, time(9, 30), tzinfo=NEW_YORK).timestamp()
        return underlying.ratio * self.root_price(underlying.root, opening)

    def implied_vol(self, instrument: Instrument, spot: float, years: float) -> float:
        """A smile: higher for low strikes, a little higher for short expiries."""
        root = ROOTS[instrument.root]
        moneyness = math.log(instrument.strike / spot) / math.sqrt(max(years, 1.0 / 365.0))
        smile = 1.0 - 0.5 * moneyness + 0.8 * moneyness * moneyness
        term = 1.0 + 0.1 * math.exp(-8.0 * years)
        return min(3.0, max(0.05, root.annual_vol * smile * term))

    def mid(self, instrument: Instrument, epoch_seconds: float) -> float:
        spot = instrument.ratio * self.root_price(instrument.root, epoch_seconds)
        if instrument.sec_type in ("FUT", "CONTFUT"):
            years = max(expiry_epoch(instrument) - epoch_seconds, 0) / YEAR_SECONDS
            return spot * math.exp(instrument.carry * years)
        if instrument.sec_type == "OPT":
            return self._option(instrument, spot, epoch_seconds).model.price
        return spot

    def _option(self, instrument: Instrument, spot: float, now: float) -> OptionQuote:
        years = max(expiry_epoch(instrument) - now, 0) / YEAR_SECONDS
        q = ROOTS[instrument.root].dividend_yield
        iv = self.implied_vol(instrument, spot, years)

        def at(vol: float) -> blackscholes.Greeks:
            return blackscholes.greeks(instrument.right, spot, instrument.strike, years, vol, q)

        bid_iv, ask_iv = max(iv - IV_HALF_SPREAD, 0.01), iv + IV_HALF_SPREAD
        return OptionQuote(spot, at(iv), iv, at(bid_iv), bid_iv, at(ask_iv), ask_iv)

    # --- snapshots -------------------------------------------------------------------
    def quote(self, instrument: Instrument, now: float) -> Quote:
        tick = instrument.min_tick
        noise = self.paths.unit_noise(str(instrument.con_id), "quote", np.array([int(now), 1, 2]))
        sizes = [int(1 + 10 * abs(n)) * (100 if instrument.sec_type == "STK" else 1) for n in noise]
        day_fraction = min(1.0, ((now - EPOCH) % 86_400) / 86_400 + 0.05)
        volume = int(self._volume_base(instrument) * 390 * day_fraction)
        close = float(_round_to(self.mid(instrument, now - 86_400), tick))
        if instrument.sec_type == "OPT":
            spot = instrument.ratio * self.root_price(instrument.root, now)
            option = self._option(instrument, spot, now)
            bid = math.floor(option.bid.price / tick) * tick
            ask = max(math.ceil(option.ask.price / tick) * tick, bid + tick)
            last = float(_round_to(option.model.price, tick))
            return Quote(round(bid, 4), round(ask, 4), last, *sizes, volume, close, option)
        mid = self.mid(instrument, now)
        last = float(_round_to(mid, tick))
        if instrument.sec_type == "IND":
            return Quote(None, None, last, 0, 0, 0, 0, close)
        bid = math.floor(mid / tick) * tick
        return Quote(round(bid, 4), round(bid + tick, 4), last, *sizes, volume, close)

    def _volume_base(self, instrument: Instrument) -> float:
        """Mean volume per minute: shares, contracts; indices trade none."""
        if instrument.sec_type == "STK":
            return ROOTS[instrument.root].minute_volume * (3 if instrument.ratio != 1 else 1)
        if instrument.sec_type in ("FUT", "CONTFUT"):
            return 3_000.0
        return 20.0 if instrument.sec_type == "OPT" else 0.0

    # --- historical bars ---------------------------------------------------------------
    def bars(self, instrument: Instrument, intervals: list[tuple[int, int]],
             what_to_show: str) -> list[Bar]:
        """OHLC for each (start, end) interval; a pure function of (seed, instrument, interval)."""
        if not intervals:
            return []
        on_minutes = all((s - EPOCH) % 60 == 0 and (e - EPOCH) % 60 == 0 for s, e in intervals)
        step = 60 if on_minutes else 1
        out: list[Bar] = []
        group: list[tuple[int, int]] = []
        for interval in intervals:
            if group and (interval[1] - group[0][0]) // step > _CHUNK_POINTS:
                out += self._bars_on_grid(instrument, group, what_to_show, step)
                group = []
            group.append(interval)
        return out + self._bars_on_grid(instrument, group, what_to_show, step)

    def _series(self, instrument: Instrument, first: int, last: int, step: int) -> np.ndarray:
        root = ROOTS[instrument.root]
        grid = self.paths.minutes if step == 60 else self.paths.seconds
        log = grid(instrument.root, root.annual_vol, first, last)
        times = EPOCH + step * np.arange(first, first + len(log), dtype=np.float64)
        spot = instrument.ratio * root.reference_price * np.exp(log)
        if instrument.sec_type in ("FUT", "CONTFUT"):
            years = np.maximum(expiry_epoch(instrument) - times, 0) / YEAR_SECONDS
            return spot * np.exp(instrument.carry * years)
        if instrument.sec_type == "OPT":
            years = np.maximum(expiry_epoch(instrument) - times, 0) / YEAR_SECONDS
            moneyness = np.log(instrument.strike / spot) / np.sqrt(np.maximum(years, 1 / 365))
            smile = 1.0 - 0.5 * moneyness + 0.8 * moneyness * moneyness
            vol = np.clip(root.annual_vol * smile * (1 + 0.1 * np.exp(-8 * years)), 0.05, 3.0)
            return blackscholes.prices(instrument.right, spot, instrument.strike, years, vol,
                                       root.dividend_yield)
        return spot

    def _bars_on_grid(self, instrument: Instrument, intervals: list[tuple[int, int]],
                      what: str, step: int) -> list[Bar]:
        first = (intervals[0][0] - EPOCH) // step
        last = (intervals[-1][1] - EPOCH) // step
        mids = self._series(instrument, first, last, step)
        tick = instrument.min_tick
        if instrument.sec_type == "OPT":
            half = np.maximum(0.01 * mids, 0.005)
        else:
            half = np.full_like(mids, tick / 2 if instrument.sec_type != "IND" else 0.0)
        trades = what in ("TRADES", "ADJUSTED_LAST")
        # Bar i spans grid points a[i]..b[i] inclusive; neighbours share their boundary.
        a = np.array([(s - EPOCH) // step - first for s, _ in intervals])
        b = np.array([(e - EPOCH) // step - first for _, e in intervals])
        if what == "BID":
            mids = mids - half
        elif what == "ASK":
            mids = mids + half
        if what == "BID_ASK":
            bids, asks = mids - half, mids + half
            o, c = _means(bids, a, b), _means(asks, a, b)
            h, lo = _range_max(asks, a, b), -_range_max(-bids, a, b)
        else:
            o, h, lo, c = mids[a], _range_max(mids, a, b), -_range_max(-mids, a, b), mids[b]
        grid_tick = tick if trades else tick / 2
        o, h, lo, c = (_round_to(v, grid_tick).tolist() for v in (o, h, lo, c))
        if trades:
            base = self._volume_base(instrument) * step / 60.0
            noise = self.paths.unit_noise(str(instrument.con_id), f"volume{step}",
                                          np.arange(first, last + 1))
            cum_volume = np.concatenate(([0.0], np.cumsum(np.floor(base * np.exp(0.5 * noise
                                                                                 - 0.125)))))
            volumes = (cum_volume[b] - cum_volume[a]).tolist()
            waps = np.round((np.array(h) + np.array(lo) + np.array(c)) / 3.0, 4).tolist()
            counts = [int(v // 100) + (1 if v else 0) for v in volumes]
        else:
            volumes, waps, counts = [-1.0] * len(a), [-1.0] * len(a), [-1] * len(a)
        return [Bar(s, e, *values) for (s, e), *values
                in zip(intervals, o, h, lo, c, volumes, waps, counts, strict=True)]


def _range_max(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max(values[a[i] : b[i] + 1]) for every i, in one reduceat (a[i] < b[i] <= a[i+1])."""
    bounds = np.empty(2 * len(a), dtype=np.int64)
    bounds[0::2], bounds[1::2] = a, b
    return np.maximum(np.maximum.reduceat(values, bounds)[0::2], values[b])


def _means(values: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    total = np.concatenate(([0.0], np.cumsum(values)))
    return (total[b + 1] - total[a]) / (b - a + 1)
