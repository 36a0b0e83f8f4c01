"""Number formats shared by the report email, the admin report view and the dashboard."""

import functools

from django import template

register = template.Library()

DASH = "\N{EN DASH}"


def _dash_when_missing(format_value):
    """A dash for no value: None, or "" (what a template gives for a missing variable)."""

    @functools.wraps(format_value)
    def format_or_dash(value, *args):
        if value is None or value == "":
            return DASH
        return format_value(value, *args)

    return format_or_dash


@register.filter
@_dash_when_missing
def usd(value):
    """$1,234.56 for sums worth a cent or more; small sums keep six decimals ($0.000123)."""
    amount = float(value)
    if amount and abs(amount) < 0.01:
        return f"${amount:,.6f}"
    return f"${amount:,.2f}"


@register.filter
@_dash_when_missing
def percent(value, digits=1):
    return f"{float(value):.{int(digits)}f}%"


@register.filter
@_dash_when_missing
def seconds(value):
    value = float(value)
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


@register.filter
@_dash_when_missing
def change(value, unit="%"):
    """A signed change: +12.5% / -3.0 pts; a dash without a base to compare with."""
    return f"{float(value):+.1f}{' pts' if unit == 'pts' else '%'}"


@register.filter
@_dash_when_missing
def count(value):
    return f"{int(value):,}"
