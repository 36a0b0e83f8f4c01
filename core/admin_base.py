"""Admin pieces shared by the apps."""

from collections.abc import Callable

from django.contrib import admin

# Panels shown on a model's change page by the apps that know something about its rows: an
# app above (analytics: the traffic a provider saw) adds to a page of an app below (providers)
# without that app importing it. model label ("providers.Provider") -> functions
# (request, obj) -> {"title": ..., "template": ..., **context}, or None to show nothing.
_CHANGE_PANELS: dict[str, list[Callable]] = {}


def change_panel_register(model_label: str, panel: Callable) -> None:
    if panel not in _CHANGE_PANELS.setdefault(model_label, []):
        _CHANGE_PANELS[model_label].append(panel)


def change_panels(request, obj) -> list[dict]:
    label = f"{obj._meta.app_label}.{obj._meta.object_name}"
    found = (panel(request, obj) for panel in _CHANGE_PANELS.get(label, []))
    return [p for p in found if p]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the system writes (request log, rollups, probes, reports, the audit trail):
    operators look, never add, edit or delete."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
