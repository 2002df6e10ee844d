"""Django: an execute wrapper records every query; the middleware makes a unit per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402

if not settings.configured:
    settings.configure(
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=[],
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()

from django.db import connection, models  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402

from sentia_core.errors import ConfigError  # noqa: E402
from sentia_core.integrations import QueryUnitMiddleware, instrument_django  # noqa: E402
from sentia_core.sql import QueryOptimizer  # noqa: E402


class Customer(models.Model):
    email = models.CharField(max_length=80)

    class Meta:
        app_label = "sentia_shop"


class Order(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
    total = models.IntegerField()

    class Meta:
        app_label = "sentia_shop"


@pytest.fixture(scope="module")
def tables() -> Iterator[None]:
    with connection.schema_editor() as editor:
        editor.create_model(Customer)
        editor.create_model(Order)
    for i in range(8):
        c = Customer.objects.create(email=f"zqdjango{i}@example.com")
        for j in range(2):
            Order.objects.create(customer=c, total=i * 10 + j)
    yield
    with connection.schema_editor() as editor:
        editor.delete_model(Order)
        editor.delete_model(Customer)


@pytest.fixture
def optimizer(tables: None) -> Iterator[QueryOptimizer]:
    opt = QueryOptimizer(sample_rate=0.0, log_events=False)
    remove = instrument_django(opt)
    yield opt
    remove()


def orders_view(request: Any) -> HttpResponse:
    lines = [f"{o.customer.email}: {o.total}" for o in Order.objects.order_by("id")]  # N+1 here
    return HttpResponse("\n".join(lines))


def orders_view_fixed(request: Any) -> HttpResponse:
    orders = Order.objects.select_related("customer").order_by("id")
    return HttpResponse("\n".join(f"{o.customer.email}: {o.total}" for o in orders))


def test_every_query_is_recorded_with_its_row_count(optimizer: QueryOptimizer) -> None:
    with connection.cursor() as cur:
        cur.execute("UPDATE sentia_shop_order SET total = total WHERE total < %s", [30])
    assert Order.objects.filter(total__gte=0).count() == 16
    shapes = {s.fingerprint: s for s in optimizer.stats().shapes}
    update = shapes["UPDATE sentia_shop_order SET total = total WHERE total < ?"]
    assert (update.calls, update.rows) == (1, 6)
    assert any(fp.startswith("SELECT COUNT(*)") for fp in shapes)


def test_a_lazy_foreign_key_in_a_view_is_reported_per_request(optimizer: QueryOptimizer) -> None:
    middleware = QueryUnitMiddleware(orders_view)
    response = middleware(RequestFactory().get("/orders"))
    assert response.status_code == 200
    (r,) = optimizer.nplusone_reports()
    assert r.unit == "GET /orders"
    assert r.count == 16  # one per order: Django has no identity map
    assert r.table == "sentia_shop_customer"
    assert "test_django.py" in r.call_site
    with open(__file__) as fh:
        assert "N+1 here" in fh.read().splitlines()[int(r.call_site.rsplit(":", 1)[1]) - 1]
    assert "zqdjango" not in repr(optimizer.export())


def test_select_related_is_not_reported(optimizer: QueryOptimizer) -> None:
    QueryUnitMiddleware(orders_view_fixed)(RequestFactory().get("/orders"))
    assert optimizer.nplusone_reports() == []


def test_uninstalling_stops_recording(tables: None) -> None:
    opt = QueryOptimizer(log_events=False)
    remove = instrument_django(opt)
    Order.objects.count()
    remove()
    Order.objects.count()
    assert opt.stats().calls == 1
    # without an instrumented optimizer the middleware only passes requests on
    response = QueryUnitMiddleware(lambda request: HttpResponse("ok"))(RequestFactory().get("/"))
    assert response.content == b"ok"


def test_instrument_django_rejects_a_non_optimizer() -> None:
    with pytest.raises(ConfigError) as info:
        instrument_django("opt")  # type: ignore[arg-type]
    assert info.value.parameter == "optimizer"


def order_detail(request: Any, pk: int) -> HttpResponse:
    order = Order.objects.get(pk=pk)
    lines = [f"{o.customer.email}" for o in Order.objects.filter(customer_id=order.customer_id)]
    return HttpResponse("\n".join(lines * 3))


class _UrlConf:
    from django.urls import path as _path

    urlpatterns = [_path("orders/<int:pk>/", order_detail)]


def _resolving(request: Any) -> HttpResponse:
    """What Django's handler does before the view: resolve the URL, keep the match."""
    from django.urls import resolve

    match = resolve(request.path_info, urlconf=_UrlConf)
    request.resolver_match = match
    return match.func(request, *match.args, **match.kwargs)  # type: ignore[no-any-return]


def test_units_are_named_by_the_route_template(optimizer: QueryOptimizer) -> None:
    optimizer.nplusone_threshold = 2
    middleware = QueryUnitMiddleware(_resolving)
    for pk in (1, 3):
        assert middleware(RequestFactory().get(f"/orders/{pk}/")).status_code == 200
    units = {r.unit for r in optimizer.nplusone_reports()}
    assert units == {"GET /orders/<int:pk>/"}
