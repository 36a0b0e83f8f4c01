"""The feature flags' names (django-waffle), one definition for every app.

What each does is routing/flags.py's (the one place the gateway asks them) and docs/flags.md's.
"""

ROUTING_POLICIES = "routing_policies"  # Flag: per caller
COST_OPTIMIZATION = "cost_optimization"  # Sample: per request
INTELLIGENT_ROUTING = "intelligent_routing"  # Switch
INTELLIGENT_ROUTING_FALLBACK = "intelligent_routing_fallback"  # Switch
INTELLIGENT_ROUTING_MONITORING = "intelligent_routing_monitoring"  # Switch: health probes
SWITCHES = (INTELLIGENT_ROUTING, INTELLIGENT_ROUTING_FALLBACK, INTELLIGENT_ROUTING_MONITORING)

# What each object does, in the words an operator needs during an incident (admin labels,
# the rollback page, docs/flags.md).
DESCRIPTIONS = {
    ROUTING_POLICIES: "Routing policies are evaluated for the caller (off: the requested "
    "model's default provider, as before the router existed).",
    COST_OPTIMIZATION: "Share of requests on which cheapest/balanced policies may substitute "
    "a cheaper target (the rest act as priority: written order).",
    INTELLIGENT_ROUTING: "Live health, latency, load and circuit breakers reorder and filter "
    "targets (off: written order and no fallback at all).",
    INTELLIGENT_ROUTING_FALLBACK: "A failed target hands over to the next one (off: only the "
    "first target is tried).",
    INTELLIGENT_ROUTING_MONITORING: "The scheduled health probes run and update provider "
    "status (off: probes do nothing, providers keep their last status).",
}
