"""Fault state the tests and other engineers switch on (see Simulator's fault methods).

Pure bookkeeping: the server asks it what to do; it never touches a socket.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Request kinds an injected error can target.
REQUEST_KINDS = frozenset(
    {"historical", "mktdata", "contract_details", "secdef", "head_timestamp",
     "matching_symbols", "positions"}
)


@dataclass
class InjectedError:
    kind: str
    code: int
    message: str
    remaining: int
    symbol: str | None = None


@dataclass
class FaultState:
    response_delay: float = 0.0  # extra seconds before every data answer
    refuse_until: float = 0.0  # loop time until which the port is closed
    connectivity_lost: bool = False  # between 1100 and 1101/1102: data answers are held
    injected: list[InjectedError] = field(default_factory=list)

    def inject(self, kind: str, code: int, message: str, count: int, symbol: str | None) -> None:
        if kind not in REQUEST_KINDS:
            raise ValueError(f"kind must be one of {sorted(REQUEST_KINDS)}, got {kind!r}")
        if count < 1:
            raise ValueError(f"count must be >= 1, got {count!r}")
        self.injected.append(InjectedError(kind, int(code), message, count,
                                           symbol.upper() if symbol else None))

    def take(self, kind: str, symbol: str, sec_type: str = "") -> InjectedError | None:
        """The injected error that answers this request, consuming one use of it. An
        injection's symbol may name a security type too ("SPY:OPT": SPY's options only)."""
        names = {None, symbol.upper(), f"{symbol}:{sec_type}".upper()}
        for entry in self.injected:
            if entry.kind == kind and entry.symbol in names:
                entry.remaining -= 1
                if entry.remaining <= 0:
                    self.injected.remove(entry)
                return entry
        return None

    def describe(self, now: float) -> dict:
        return {
            "response_delay": self.response_delay,
            "refusing_for": round(max(0.0, self.refuse_until - now), 3),
            "connectivity_lost": self.connectivity_lost,
            "pending_injected_errors": sum(e.remaining for e in self.injected),
        }
