import type { HttpRequest, InvocationContext } from '@azure/functions';
import type { AppServices } from '../../shared/config/composition';
import { GATEWAY_HEADERS } from '../../shared/contracts/gateway-headers';
import type { Attribution } from '../../shared/metering/attribution';
import { readAttribution } from '../../shared/metering/attribution';
import type { RequestBudget } from '../../shared/metering/budget';
import { budgetOwner } from '../../shared/metering/budget';

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

/** What a failed part of the budget check means for the request (it is served in every case). */
const UNAVAILABLE_EFFECT = {
  config: 'budgets not enforced for this request, served regardless',
  reserve: 'budgets not enforced for this request, served regardless',
  settle: "a served request's cost was not added to its budgets' spend",
  'price-table': 'budgets priced without the current price overrides',
} as const;

/**
 * The budgets of a proxied call, reporting to the invocation's log and to telemetry: a crossed
 * warning threshold (logged once per budget, threshold and month on each instance; counted on every
 * warned request), a refusal, and a budget check that failed and let the request through.
 */
export function budgetOf(services: AppServices, context: InvocationContext): RequestBudget {
  return services.budgets().forRequest({
    warned: ({ budget, threshold, month, first, percentUsed }) => {
      if (first) {
        context.warn(
          `Budget '${budget.id}' of ${budgetOwner(budget)}: ${percentUsed}% of ${budget.monthlyAmount} USD used in ${month}, past its ${threshold}% warning.`,
        );
      }
      services.telemetry.budgetWarning({
        budgetId: budget.id,
        department: budget.department,
        ...(budget.appId === undefined ? {} : { appId: budget.appId }),
        threshold,
      });
    },
    refused: ({ budget, month }) => {
      context.log(`Refused by budget '${budget.id}' of ${budgetOwner(budget)} (${month}).`);
      services.telemetry.budgetRefused({
        budgetId: budget.id,
        department: budget.department,
        ...(budget.appId === undefined ? {} : { appId: budget.appId }),
      });
    },
    unavailable: (stage, problem, first) => {
      if (first) context.warn(`BUDGET_UNAVAILABLE ${stage}: ${UNAVAILABLE_EFFECT[stage]} (${problem}).`);
      services.telemetry.budgetUnavailable(stage);
    },
  });
}
