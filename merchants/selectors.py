"""Reads of the public merchant directory: who takes part, their programs, and which stores are near.

Everything here is for prospective and current customers, so it shows only what is on offer today:
active merchants, their active programs, stores and rewards. Nothing here writes.
"""
import datetime as dt
import logging
import math
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone

from core.errors import NotFound, ValidationFailed
from merchants.models import Merchant, Program, Reward, Store
from merchants.opening_hours import is_open_at, validate_opening_hours

logger = logging.getLogger(__name__)

# Mean Earth radius (IUGG), the usual figure for great-circle distances; the sphere is within 0.5 % of
# the ellipsoid, far closer than anyone needs to find a shop.
EARTH_RADIUS_KM = 6371.0088
DEFAULT_RADIUS_KM = 25.0
# Wide enough for a region, small enough that the candidates fit in memory for the exact distance.
MAX_RADIUS_KM = 200.0
# The bounding box is compared with 6-decimal stored coordinates; a margin of about a metre keeps
# rounding from dropping a store that lies exactly on the radius.
_BOX_MARGIN_DEGREES = 1e-5


def list_directory_merchants(search: str | None = None) -> QuerySet[Merchant]:
    """Active merchants with what a customer browses prefetched (programs with tiers and active
    rewards, active stores), in a fixed number of queries whatever the page size.

    `search` matches, case-insensitively, the merchant's name or the city of one of its active
    stores. (On SQLite, case folding covers ASCII letters only; PostgreSQL folds all of Unicode.)

    Prefetched lists are exposed as `directory_programs`, `directory_stores` and, on each program,
    `directory_rewards`, so a caller cannot mistake them for the unfiltered relations.
    """
    merchants = Merchant.objects.filter(is_active=True)
    search = (search or "").strip()
    if search:
        store_in_city = Store.objects.filter(merchant=OuterRef("pk"), is_active=True, city__icontains=search)
        # Exists rather than a join: a merchant with two stores in the city is listed once, no DISTINCT.
        merchants = merchants.filter(Q(name__icontains=search) | Exists(store_in_city))
    programs = Program.objects.filter(is_active=True).order_by("name", "id").prefetch_related(
        "tiers",
        Prefetch("rewards", queryset=Reward.objects.filter(is_active=True), to_attr="directory_rewards"),
    )
    return merchants.order_by("name", "id").prefetch_related(
        Prefetch("programs", queryset=programs, to_attr="directory_programs"),
        Prefetch("stores", queryset=_active_stores().order_by("name", "id"), to_attr="directory_stores"),
    )


def get_directory_merchant(merchant_id: int) -> Merchant:
    """One active merchant as `list_directory_merchants` shows it; unknown or inactive is `NotFound`
    (the same answer for both, so the directory does not reveal merchants that left)."""
    merchant = list_directory_merchants().filter(pk=merchant_id).first()
    if merchant is None:
        raise NotFound("No such merchant in the directory.")
    return merchant


@dataclass(frozen=True)
class NearbyStore:
    store: Store
    distance_m: int
    is_open_now: bool


def list_nearby_stores(
    latitude: float,
    longitude: float,
    radius_km: float = DEFAULT_RADIUS_KM,
    *,
    now: dt.datetime | None = None,
) -> list[NearbyStore]:
    """Active stores of active merchants within `radius_km` of a point, nearest first.

    How: the database narrows the candidates to a latitude/longitude bounding box around the circle
    (an indexable range comparison that works on SQLite and PostgreSQL alike, no GIS extension), and
    Python then computes the exact great-circle (haversine) distance of each candidate, drops the
    box's corners that lie outside the circle and sorts. The box's longitude span widens with
    latitude; near a pole, where the circle reaches over it, any longitude qualifies, and a box that
    crosses the antimeridian (±180°) becomes two longitude ranges.

    Ties in distance are ordered by store id, so pages are stable. `is_open_now` is judged at `now`
    (default: the current time) in each store's own time zone. The result is a list, fully computed;
    `MAX_RADIUS_KM` bounds how many candidates that can be. When stores number in the hundreds of
    thousands, PostGIS with a spatial index is the next step.
    """
    _check_point_and_radius(latitude, longitude, radius_km)
    now = now or timezone.now()
    stores = _active_stores().filter(merchant__is_active=True).select_related("merchant")
    stores = stores.filter(_bounding_box(latitude, longitude, radius_km))
    radius_m = radius_km * 1000
    nearby = []
    for store in stores:
        distance_m = haversine_m(latitude, longitude, float(store.latitude), float(store.longitude))
        if distance_m <= radius_m:
            nearby.append(NearbyStore(store=store, distance_m=round(distance_m), is_open_now=_is_open(store, now)))
    nearby.sort(key=lambda item: (item.distance_m, item.store.pk))
    return nearby


def haversine_m(latitude_1: float, longitude_1: float, latitude_2: float, longitude_2: float) -> float:
    """Great-circle distance in metres between two points given in degrees."""
    phi_1, phi_2 = math.radians(latitude_1), math.radians(latitude_2)
    d_phi = phi_2 - phi_1
    d_lambda = math.radians(longitude_2 - longitude_1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi_1) * math.cos(phi_2) * math.sin(d_lambda / 2) ** 2
    # min() guards asin against a rounding error pushing `a` a hair above 1 for antipodal points.
    return 2 * EARTH_RADIUS_KM * 1000 * math.asin(min(1.0, math.sqrt(a)))


def _active_stores() -> QuerySet[Store]:
    return Store.objects.filter(is_active=True)


def _check_point_and_radius(latitude: float, longitude: float, radius_km: float) -> None:
    problems = {}
    if not (isinstance(latitude, int | float) and math.isfinite(latitude) and -90 <= latitude <= 90):
        problems["latitude"] = ["Must be a number from -90 to 90."]
    if not (isinstance(longitude, int | float) and math.isfinite(longitude) and -180 <= longitude <= 180):
        problems["longitude"] = ["Must be a number from -180 to 180."]
    if not (isinstance(radius_km, int | float) and math.isfinite(radius_km) and 0 < radius_km <= MAX_RADIUS_KM):
        problems["radius_km"] = [f"Must be more than 0 and at most {MAX_RADIUS_KM:g} km."]
    if problems:
        raise ValidationFailed("The point or radius is out of range.", fields=problems)


def _bounding_box(latitude: float, longitude: float, radius_km: float) -> Q:
    """Stores whose coordinates fall in the smallest latitude/longitude box containing the circle.

    The longitude half-width is asin(sin r / cos φ) (r the angular radius), which is exact for the
    circle's widest point, not r / cos φ, which is only an approximation and undershoots.
    """
    angular_radius = radius_km / EARTH_RADIUS_KM
    d_latitude = math.degrees(angular_radius) + _BOX_MARGIN_DEGREES
    south, north = latitude - d_latitude, latitude + d_latitude
    box = Q(latitude__isnull=False, longitude__isnull=False)
    if south <= -90 or north >= 90:
        # The circle contains a pole: every longitude is inside the box.
        return box & Q(latitude__gte=max(south, -90), latitude__lte=min(north, 90))
    box &= Q(latitude__gte=south, latitude__lte=north)
    d_longitude = (
        math.degrees(math.asin(math.sin(angular_radius) / math.cos(math.radians(latitude)))) + _BOX_MARGIN_DEGREES
    )
    west, east = longitude - d_longitude, longitude + d_longitude
    if west < -180:
        return box & (Q(longitude__gte=west + 360) | Q(longitude__lte=east))
    if east > 180:
        return box & (Q(longitude__gte=west) | Q(longitude__lte=east - 360))
    return box & Q(longitude__gte=west, longitude__lte=east)


def _is_open(store: Store, now: dt.datetime) -> bool:
    """Opening hours are validated on save through forms and the admin, but a row written another way
    must not break the whole list: a store whose hours cannot be read is shown as closed."""
    try:
        validate_opening_hours(store.opening_hours)
    except ValidationError:
        logger.warning("Store %s has unreadable opening hours; shown as closed.", store.pk)
        return False
    return is_open_at(store.opening_hours, store.time_zone, now)
