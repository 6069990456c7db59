"""What every counter endpoint shares: device authentication, the cashier headers, idempotent writes."""
from drf_spectacular.utils import OpenApiParameter
from rest_framework.response import Response
from rest_framework.views import APIView

from merchants.models import StaffMember
from pos_integration.api.authentication import DeviceKeyAuthentication, IsDevice
from pos_integration.cashiers import verify_cashier
from pos_integration.counter_actions import CounterResult
from pos_integration.models import PosDevice
from wallet.api.serializers import REPLAYED_HEADER, idempotency_parameter, replayed_parameter

TAGS = ["pos"]
CASHIER_HEADER = "Tessera-Cashier"
CASHIER_PIN_HEADER = "Tessera-Cashier-Pin"


def cashier_parameters(*, required: bool) -> list[OpenApiParameter]:
    need = "Required" if required else "Optional; when sent, checked and recorded"
    return [
        OpenApiParameter(CASHIER_HEADER, int, location=OpenApiParameter.HEADER, required=required,
                         description=f"{need}: the cashier's id (from GET /api/pos/v1/device/)."),
        OpenApiParameter(CASHIER_PIN_HEADER, str, location=OpenApiParameter.HEADER, required=required,
                         description="The cashier's PIN. Five wrong PINs in a row lock the cashier for 15 minutes."),
    ]


def write_parameters(*, cashier_required: bool, description: str) -> list[OpenApiParameter]:
    return [
        idempotency_parameter(required=True, description=description),
        replayed_parameter(201),
        *cashier_parameters(required=cashier_required),
    ]


class CounterView(APIView):
    authentication_classes = [DeviceKeyAuthentication]
    permission_classes = [IsDevice]

    def device(self, request) -> PosDevice:
        return request.user.device

    def body(self, serializer_class, request) -> dict:
        serializer = serializer_class(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def cashier(self, request, *, required: bool) -> StaffMember | None:
        """The cashier whose PIN came with the request. Checked before anything is written, and
        outside the write's transaction, so a wrong PIN is counted even though the request fails."""
        cashier_id = request.headers.get(CASHIER_HEADER)
        pin = request.headers.get(CASHIER_PIN_HEADER)
        if not required and not cashier_id and not pin:
            return None
        return verify_cashier(self.device(request), cashier_id, pin)

    @staticmethod
    def written(result: CounterResult, serializer_class) -> Response:
        response = Response(serializer_class(result.body).data, status=201)
        if result.replayed:
            response[REPLAYED_HEADER] = "true"  # the body is the first answer's
        return response
