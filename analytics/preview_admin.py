"""Admin: the impact preview of a policy on recorded traffic (docs/policies.md#impact-preview).
Registered from analytics/admin.py."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from .models import PolicyImpact
from .preview import DEFAULT_DAYS, DEFAULT_SAMPLE, PreviewError, policy_preview, preview_compile


class PreviewForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=90, initial=DEFAULT_DAYS)
    sample = forms.IntegerField(min_value=0, max_value=200, initial=DEFAULT_SAMPLE)


@admin.register(PolicyImpact)
class PolicyImpactAdmin(admin.ModelAdmin):
    """Every policy, with a link to replay the request log through it."""

    list_display = ["name", "status", "priority", "preview_link"]
    list_filter = ["status"]
    search_fields = ["name"]
    ordering = ["priority", "name"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="impact preview")
    def preview_link(self, obj):
        url = reverse("admin:analytics_policyimpact_preview", args=[obj.pk])
        return format_html('<a href="{}">preview on recorded traffic</a>', url)

    def get_urls(self):
        preview = path(
            "<uuid:pk>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="analytics_policyimpact_preview",
        )
        return [preview, *super().get_urls()]

    def preview_view(self, request, pk):
        if not self.has_view_permission(request):
            raise PermissionDenied
        policy = get_object_or_404(PolicyImpact, pk=pk)
        form = PreviewForm(request.GET or None)
        result = error = None
        if form.is_valid():
            try:
                compiled = preview_compile(
                    policy.id,
                    policy.name,
                    policy.priority,
                    policy.resolved_conditions(),
                    policy.resolved_actions(),
                )
                result = policy_preview(
                    compiled,
                    days=form.cleaned_data["days"],
                    sample_size=form.cleaned_data["sample"],
                )
            except PreviewError as exc:
                error = str(exc)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Impact preview: {policy.name}",
            "opts": self.model._meta,
            "policy": policy,
            "form": form,
            "result": result,
            "error": error,
        }
        return TemplateResponse(request, "admin/analytics/policy_preview.html", context)
