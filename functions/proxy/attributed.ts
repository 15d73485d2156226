import type { HttpRequest, InvocationContext } from '@azure/functions';
import type { AppServices } from '../../shared/config/composition';
import { GATEWAY_HEADERS } from '../../shared/contracts/gateway-headers';
import type { Attribution } from '../../shared/metering/attribution';
import { readAttribution } from '../../shared/metering/attribution';

/**
 * Who a proxied call is billed to (the gateway's headers), and a warning when it is charged to
 * `unassigned`: either the subscription has no department, or the gateway sent a department
 * header that cannot be used (a misconfigured policy), logged and counted as such.
 */
export function attributionOf(
  request: HttpRequest,
  services: AppServices,
  context: InvocationContext,
): Attribution {
  const attribution = readAttribution(request.headers, services.config.proxy.gatewaySecret);
  const { subscriptionId, departmentProblem } = attribution;
  if (departmentProblem !== undefined) {
    context.warn(
      `Unusable ${GATEWAY_HEADERS.department} header from the gateway for subscription ${subscriptionId}: ${departmentProblem}. Charged to unassigned; check the gateway's policy.`,
    );
    services.telemetry.badDepartmentHeader(attribution);
  } else if (attribution.unassigned) {
    context.warn(`Subscription ${subscriptionId} has no department: charged to unassigned.`);
  }
  if (attribution.unassigned) services.telemetry.unassigned(attribution);
  return attribution;
}
