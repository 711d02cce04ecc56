"""The decimal context every run computes money in.

Python's default context keeps 28 significant digits: a KRW balance of 1e10 quantized to
1e-12 for the report already needs 23. Runs use 50 digits, round half-even, and trap
every signal that would otherwise hide a wrong amount (invalid operations, division by
zero, overflow) so that a bad value fails loudly instead of becoming NaN.
"""

from __future__ import annotations

from decimal import (
    ROUND_HALF_EVEN,
    Context,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)

MONEY_CONTEXT = Context(
    prec=50, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)
