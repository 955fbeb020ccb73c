"""Flows: create, read, update, delete, revisions, search, validate, namespace updates (spec §11.2)."""
from __future__ import annotations

from django.db.models import Q
from rest_framework import status
from rest_framework.response import Response

from accounts_app.permissions import namespace_q

from ... import models, services, services_admin
from .. import serializers
from ..exceptions import InvalidEntity, NotFound
from .common import ApiView, bool_param, int_param, label_pairs, page, parse_filters, text_q, yaml_body

FLOW_SORT = {"id": "flow_id", "namespace": "namespace", "revision": "revision", "updated": "updated"}


def _flow_or_404(namespace: str, flow_id: str, *, allow_deleted: bool = False) -> models.Flow:
    flow = models.Flow.objects.filter(namespace=namespace, flow_id=flow_id).first()
    if flow is None or (flow.deleted and not allow_deleted):
        raise NotFound(f"Unable to find flow '{namespace}'.'{flow_id}'")
    return flow


class FlowCreateView(ApiView):
    """``POST /flows``: body = the YAML source; 422 when invalid or when the flow already exists."""

    def post(self, request):
        from orchestrator.runtime.flows import parse

        source = yaml_body(request)
        parsed = parse(source)
        if models.Flow.objects.filter(namespace=parsed.namespace, flow_id=parsed.id, deleted=False).exists():
            raise InvalidEntity("flow.id: Flow id already exists", [{"message": "Flow id already exists",
                                                                     "path": "flow.id"}])
        deployed = services.deploy_flow(source)
        return Response(serializers.flow_row_json(deployed.flow, parsed=deployed.parsed))


class FlowView(ApiView):
    """``GET|PUT|DELETE /flows/{namespace}/{id}``."""

    def get(self, request, namespace, flow_id):
        revision = int_param(request, "revision")
        flow = _flow_or_404(namespace, flow_id, allow_deleted=bool_param(request, "allowDeleted"))
        with_source = bool_param(request, "source")
        if revision is not None and revision != flow.revision:
            row = flow.revisions.filter(revision=revision).first()
            if row is None:
                raise NotFound(f"Unable to find flow '{namespace}'.'{flow_id}' with revision '{revision}'")
            return Response(serializers.revision_json(flow, row, with_source=with_source))
        return Response(serializers.flow_row_json(flow, with_source=with_source))

    def put(self, request, namespace, flow_id):
        _flow_or_404(namespace, flow_id)
        deployed = services.deploy_flow(yaml_body(request), expect=(namespace, flow_id))
        return Response(serializers.flow_row_json(deployed.flow, parsed=deployed.parsed))

    def delete(self, request, namespace, flow_id):
        _flow_or_404(namespace, flow_id)
        services.delete_flow(namespace, flow_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FlowRevisionsView(ApiView):
    """``GET /flows/{namespace}/{id}/revisions``: every revision with its source."""

    def get(self, request, namespace, flow_id):
        flow = _flow_or_404(namespace, flow_id, allow_deleted=True)
        return Response([serializers.revision_json(flow, row) for row in flow.revisions.order_by("revision")])


class NamespaceFlowsView(ApiView):
    """``GET /flows/{namespace}``: the namespace's flows; ``POST``: replace them from a multi-document YAML."""

    def get(self, request, namespace):
        flows = models.Flow.objects.filter(namespace=namespace, deleted=False).order_by("flow_id")
        return Response([serializers.flow_row_json(f, with_source=False) for f in flows])

    def post(self, request, namespace):
        flows = services_admin.deploy_many(yaml_body(request), namespace=namespace,
                                           delete=bool_param(request, "delete", True))
        return Response([serializers.flow_row_json(f) for f in flows])


class FlowBulkView(ApiView):
    """``POST /flows/bulk?namespace=&delete=&allowNamespaceChild=``: create or update many flows."""

    def post(self, request):
        namespace = request.query_params.get("namespace") or None
        flows = services_admin.deploy_many(yaml_body(request), namespace=namespace,
                                           delete=bool_param(request, "delete", False) and namespace is not None,
                                           allow_children=bool_param(request, "allowNamespaceChild"))
        return Response([serializers.flow_row_json(f) for f in flows])


class FlowValidateView(ApiView):
    """``POST /flows/validate``: one report per YAML document, never 422."""

    def post(self, request):
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        return Response(services_admin.validate_flows(text))


class FlowSearchView(ApiView):
    """``GET /flows/search``: paged flows filtered by ``q``, ``namespace``, ``labels`` (and ``filters[…]``)."""

    legacy = {"q": "CONTAINS", "namespace": "PREFIX", "labels": "EQUALS"}

    def get(self, request):
        return Response(page(request, self.filtered(request),
                             lambda rows: [serializers.flow_row_json(f, with_source=False) for f in rows],
                             FLOW_SORT, ["namespace", "flow_id"]))

    @classmethod
    def filtered(cls, request):
        """The flows the request's filters select (the search, and the bulk ``by-query`` routes)."""
        # a search shows what the caller may read; a bulk change reaches what they may edit
        action = "flow.read" if request.method == "GET" else "flow.edit"
        queryset = models.Flow.objects.filter(deleted=False).filter(namespace_q(request.user, action))
        for f in parse_filters(request, cls.legacy):
            if f.field == "q":
                queryset = queryset.filter(Q(flow_id__icontains=f.value) | Q(namespace__icontains=f.value)
                                           | Q(description__icontains=f.value))
            elif f.field == "namespace":
                queryset = queryset.filter(text_q("namespace", f))
            elif f.field in ("id", "flowId"):
                queryset = queryset.filter(text_q("flow_id", f))
            elif f.field == "labels":
                for key, value in label_pairs(f):
                    matching = models.FlowLabel.objects.filter(key=key, value=value).values("flow_id")
                    queryset = (queryset.exclude(pk__in=matching) if f.op in ("NOT_EQUALS", "NOT_IN")
                                else queryset.filter(pk__in=matching))
        return queryset


class DistinctNamespacesView(ApiView):
    """``GET /flows/distinct-namespaces?q=``."""

    def get(self, request):
        queryset = models.Flow.objects.filter(deleted=False).filter(namespace_q(request.user, "flow.read"))
        if request.query_params.get("q"):
            queryset = queryset.filter(namespace__icontains=request.query_params["q"])
        return Response(sorted(set(queryset.values_list("namespace", flat=True))))


class NamespaceSearchView(ApiView):
    """``GET /namespaces/search``: OSS namespaces are the ones flows live in (and their parents)."""

    def get(self, request):
        queryset = models.Namespace.objects.filter(namespace_q(request.user, "namespace.read", "name"))
        if request.query_params.get("q"):
            queryset = queryset.filter(name__icontains=request.query_params["q"])
        return Response(page(request, queryset, lambda rows: [{"id": n.name, "deleted": False} for n in rows],
                             {"id": "name"}, ["name"]))


class NamespaceView(ApiView):
    """``GET /namespaces/{id}``."""

    def get(self, request, namespace):
        if not models.Namespace.objects.filter(name=namespace).exists():
            raise NotFound(f"Unable to find namespace '{namespace}'")
        return Response({"id": namespace, "deleted": False})
