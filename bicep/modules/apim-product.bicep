// One department's product: the metered APIs, and the subscriptions (one per app) the
// deployment creates. APIM forwards the product id as the department and the subscription's
// display name as the app.

import { appSubscription, department as departmentType } from '../types.bicep'

param serviceName string
param department departmentType
@description('Ids of the APIs in the product (the ones that take a subscription key).')
param apiIds string[]
@description('All app subscriptions; this module creates those of its department.')
param subscriptions appSubscription[]

var ownSubscriptions = filter(subscriptions, subscription => subscription.department == department.id)

resource service 'Microsoft.ApiManagement/service@2024-05-01' existing = {
  name: serviceName
}

resource product 'Microsoft.ApiManagement/service/products@2024-05-01' = {
  parent: service
  name: department.id
  properties: {
    displayName: department.displayName
    description: department.?description ?? 'AI usage charged to ${department.displayName}'
    subscriptionRequired: true
    approvalRequired: department.?approvalRequired ?? true
    state: 'published'
  }
}

resource productApis 'Microsoft.ApiManagement/service/products/apis@2024-05-01' = [
  for apiId in apiIds: {
    parent: product
    name: apiId
  }
]

resource appSubscriptions 'Microsoft.ApiManagement/service/subscriptions@2024-05-01' = [
  for subscription in ownSubscriptions: {
    parent: service
    name: '${department.id}-${subscription.app}'
    properties: {
      displayName: subscription.app
      scope: product.id
      state: 'active'
    }
  }
]
