import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from routing import services
from routing.canary import policy_canary_start
from routing.models import RoutingPolicy

from .serializers import CanaryStartSerializer, PolicyCanarySerializer, RoutingPolicySerializer


class RoutingPolicyFilter(django_filters.FilterSet):
    class Meta:
        model = RoutingPolicy
        fields = {"status": ["exact", "in"], "priority": ["exact", "lte", "gte"]}


class RoutingPolicyViewSet(viewsets.ModelViewSet):
    """Routing policies (conditions -> actions). Only `active` ones route traffic."""

    queryset = RoutingPolicy.objects.all()
    serializer_class = RoutingPolicySerializer
    filterset_class = RoutingPolicyFilter
    search_fields = ["name", "description"]
    ordering_fields = ["priority", "name", "status", "created_at", "updated_at"]

    @extend_schema(request=None, responses=RoutingPolicySerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        policy = services.policy_activate(policy=self.get_object())
        return Response(self.get_serializer(policy).data)

    @extend_schema(request=None, responses=RoutingPolicySerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        policy = services.policy_deactivate(policy=self.get_object())
        return Response(self.get_serializer(policy).data)

    @extend_schema(request=CanaryStartSerializer, responses={201: PolicyCanarySerializer})
    @action(detail=True, methods=["post"])
    def canary(self, request, pk=None):
        """Activate the policy as "canary N %": it routes that sticky share of the callers
        its conditions match; beat compares them with the others and rolls it back or
        promotes it (docs/policies.md#canary-activation)."""
        body = CanaryStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        canary = policy_canary_start(
            policy=self.get_object(),
            started_by=str(request.user),
            **body.validated_data,
        )
        return Response(PolicyCanarySerializer(canary).data, status=201)
