"""The feature flags' names (django-waffle), one definition for every app.

What each does is routing/flags.py's (the one place the gateway asks them) and docs/flags.md's.
"""

ROUTING_POLICIES = "routing_policies"  # Flag: per caller
COST_OPTIMIZATION = "cost_optimization"  # Sample: per request
INTELLIGENT_ROUTING = "intelligent_routing"  # Switch
INTELLIGENT_ROUTING_FALLBACK = "intelligent_routing_fallback"  # Switch
INTELLIGENT_ROUTING_MONITORING = "intelligent_routing_monitoring"  # Switch: health probes
SWITCHES = (INTELLIGENT_ROUTING, INTELLIGENT_ROUTING_FALLBACK, INTELLIGENT_ROUTING_MONITORING)
