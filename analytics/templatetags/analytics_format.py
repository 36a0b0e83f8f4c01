"""Number formats shared by the report email, the admin report view and the dashboard."""

from django import template

register = template.Library()

DASH = "\N{EN DASH}"


@register.filter
def usd(value):
    """$1,234.56 for sums worth a cent or more; small sums keep six decimals ($0.000123)."""
    if value is None or value == "":
        return DASH
    amount = float(value)
    if amount and abs(amount) < 0.01:
        return f"${amount:,.6f}"
    return f"${amount:,.2f}"


@register.filter
def percent(value, digits=1):
    if value is None or value == "":
        return DASH
    return f"{float(value):.{int(digits)}f}%"


@register.filter
def seconds(value):
    if value is None or value == "":
        return DASH
    value = float(value)
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


@register.filter
def change(value, unit="%"):
    """A signed change: +12.5% / -3.0 pts; a dash without a base to compare with."""
    if value is None or value == "":
        return DASH
    return f"{float(value):+.1f}{' pts' if unit == 'pts' else '%'}"


@register.filter
def count(value):
    if value is None or value == "":
        return DASH
    return f"{int(value):,}"
