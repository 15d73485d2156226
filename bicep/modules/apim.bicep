// API Management (v2 tier): the APIs of shared/contracts/apim.ts APIM_APIS with their policies
// (apim-policies/, loaded as raw XML: the policies contain quotes inside C# expressions), the
// global policy at service scope, one product per department, the named values every policy
// references (APIM_NAMED_VALUES; the secret ones Key Vault–backed through APIM's system-assigned
// identity), an Application Insights logger with diagnostics (metrics on, for
// llm-emit-token-metric), and a backend for the Function App.

import { appSubscription, apimSku, department, entraSettings, gatewayLimits, tagMap } from '../types.bicep'
import { roleDefinitionIds } from 'role-ids.bicep'

param name string
param location string
param tags tagMap
param sku apimSku = 'BasicV2'
@minValue(1)
param capacity int = 1
param publisherEmail string
param publisherName string

param appInsightsName string
param keyVaultName string
@description('Key Vault secret holding the function key APIM sends.')
param functionKeySecretName string
@description('Key Vault secret holding the gateway credential (GATEWAY_SHARED_SECRET).')
param gatewaySecretName string

param functionAppName string
@description('The Function App\'s base URL, https://<host>/api.')
param functionsBaseUrl string

@description('Log Analytics workspace the gateway\'s resource logs go to.')
param workspaceId string

param entra entraSettings
param limits gatewayLimits
param departments department[]
param subscriptions appSubscription[] = []

// APIM_APIS of shared/contracts/apim.ts (a test compares them).
var apis = {
  openai: {
    id: 'azure-openai'
    displayName: 'Azure OpenAI (metered)'
    path: 'openai'
    subscriptionKey: { header: 'api-key', query: 'api-key' }
    backendPath: 'openai'
    operations: [
      { id: 'chat-completions', method: 'POST', urlTemplate: '/deployments/{deployment-id}/chat/completions' }
      { id: 'embeddings', method: 'POST', urlTemplate: '/deployments/{deployment-id}/embeddings' }
      { id: 'responses', method: 'POST', urlTemplate: '/responses' }
      { id: 'v1-chat-completions', method: 'POST', urlTemplate: '/v1/chat/completions' }
      { id: 'v1-embeddings', method: 'POST', urlTemplate: '/v1/embeddings' }
      { id: 'v1-responses', method: 'POST', urlTemplate: '/v1/responses' }
    ]
  }
  speech: {
    id: 'azure-speech'
    displayName: 'Azure Speech (metered)'
    path: 'speech'
    subscriptionKey: { header: 'Ocp-Apim-Subscription-Key', query: 'subscription-key' }
    backendPath: ''
    operations: [
      {
        id: 'recognize-short-audio'
        method: 'POST'
        urlTemplate: '/speech/recognition/conversation/cognitiveservices/v1'
      }
      { id: 'synthesize', method: 'POST', urlTemplate: '/cognitiveservices/v1' }
    ]
  }
  chargeback: {
    id: 'chargeback'
    displayName: 'Chargeback reports and administration'
    path: 'chargeback'
    subscriptionKey: null
    backendPath: ''
    operations: [
      { id: 'list-reports', method: 'GET', urlTemplate: '/reports' }
      { id: 'get-report', method: 'GET', urlTemplate: '/reports/{*path}' }
      { id: 'start-run', method: 'POST', urlTemplate: '/chargeback/runs' }
      { id: 'get-run', method: 'GET', urlTemplate: '/chargeback/runs/{id}' }
      { id: 'import-usage', method: 'POST', urlTemplate: '/usage/imports' }
      { id: 'admin-get', method: 'GET', urlTemplate: '/chargeback/admin/{*path}' }
      { id: 'admin-post', method: 'POST', urlTemplate: '/chargeback/admin/{*path}' }
      { id: 'admin-put', method: 'PUT', urlTemplate: '/chargeback/admin/{*path}' }
      { id: 'admin-delete', method: 'DELETE', urlTemplate: '/chargeback/admin/{*path}' }
    ]
  }
}

// Each API's policy file (APIM_APIS[*].policyFile); the global one is GLOBAL_POLICY_FILE.
var apiPolicies = {
  openai: loadTextContent('../../apim-policies/openai-api.xml')
  speech: loadTextContent('../../apim-policies/speech-api.xml')
  chargeback: loadTextContent('../../apim-policies/chargeback-api.xml')
}
var globalPolicy = loadTextContent('../../apim-policies/global.xml')

// APIM_NAMED_VALUES: key -> named value name (a test compares them).
var namedValueNames = {
  functionsBaseUrl: 'chargeback-functions-url'
  functionKey: 'chargeback-function-key'
  gatewaySecret: 'chargeback-gateway-secret'
  tenantId: 'entra-tenant-id'
  audience: 'chargeback-api-audience'
  clientAppId: 'entra-client-app-id'
  requestsPerMinute: 'requests-per-minute'
  tokensPerMinute: 'openai-tokens-per-minute'
  tokensPerMonth: 'openai-tokens-per-month'
}

// Plain named values: key -> value.
var plainNamedValues = {
  functionsBaseUrl: functionsBaseUrl
  tenantId: entra.?tenantId ?? tenant().tenantId
  audience: entra.audience
  clientAppId: entra.clientAppId
  requestsPerMinute: string(limits.requestsPerMinute)
  tokensPerMinute: string(limits.openaiTokensPerMinute)
  tokensPerMonth: string(limits.openaiTokensPerMonth)
}

// Secret named values: key -> Key Vault secret name.
var keyVaultNamedValues = {
  functionKey: functionKeySecretName
  gatewaySecret: gatewaySecretName
}

// The APIs a department's product holds: those that take a subscription key.
var meteredApiIds = map(filter(items(apis), api => api.value.subscriptionKey != null), api => api.value.id)

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2026-02-01' existing = {
  name: keyVaultName
}

resource functionApp 'Microsoft.Web/sites@2025-03-01' existing = {
  name: functionAppName
}

resource service 'Microsoft.ApiManagement/service@2024-05-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
    capacity: capacity
  }
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    publisherEmail: publisherEmail
    publisherName: publisherName
  }
}

// APIM reads its Key Vault–backed named values with its own identity.
resource apimSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, service.id, roleDefinitionIds.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds.keyVaultSecretsUser)
    principalId: service.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource plainValues 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = [
  for value in items(plainNamedValues): {
    parent: service
    name: namedValueNames[value.key]
    properties: {
      displayName: namedValueNames[value.key]
      value: value.value
      secret: false
    }
  }
]

resource secretValues 'Microsoft.ApiManagement/service/namedValues@2024-05-01' = [
  for value in items(keyVaultNamedValues): {
    parent: service
    name: namedValueNames[value.key]
    properties: {
      displayName: namedValueNames[value.key]
      secret: true
      keyVault: {
        // Versionless: APIM picks up a rotated secret within hours.
        secretIdentifier: '${vault.properties.vaultUri}secrets/${value.value}'
      }
    }
    dependsOn: [
      apimSecretsUser
    ]
  }
]

resource logger 'Microsoft.ApiManagement/service/loggers@2024-05-01' = {
  parent: service
  name: 'appinsights'
  properties: {
    loggerType: 'applicationInsights'
    resourceId: appInsights.id
    credentials: {
      connectionString: appInsights.properties.ConnectionString
    }
    isBuffered: true
  }
}

resource diagnostics 'Microsoft.ApiManagement/service/diagnostics@2024-05-01' = {
  parent: service
  name: 'applicationinsights'
  properties: {
    loggerId: logger.id
    alwaysLog: 'allErrors'
    sampling: {
      samplingType: 'fixed'
      percentage: 100
    }
    httpCorrelationProtocol: 'W3C'
    verbosity: 'information'
    logClientIp: false
    // Custom metrics (llm-emit-token-metric) need this.
    metrics: true
  }
}

// Resource logs to Log Analytics: every gateway request (ApiManagementGatewayLogs) and the
// generative AI gateway's LLM logs (ApiManagementGatewayLlmLog; filled for APIs APIM treats as
// language model APIs with LLM logging on; the metered APIs here are plain HTTP APIs whose
// usage the Function App meters). Independent of the Application Insights logger above.
resource gatewayDiagnostics 'microsoft.insights/diagnosticSettings@2016-09-01' = {
  name: 'service'
  scope: service
  location: location
  tags: tags
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'GatewayLogs', enabled: true }
      { category: 'GatewayLlmLogs', enabled: true }
    ]
  }
}

resource backend 'Microsoft.ApiManagement/service/backends@2024-05-01' = {
  parent: service
  name: 'chargeback-functions'
  properties: {
    title: 'Chargeback Function App'
    url: functionsBaseUrl
    protocol: 'http'
    resourceId: '${environment().resourceManager}${substring(functionApp.id, 1)}'
    tls: {
      validateCertificateChain: true
      validateCertificateName: true
    }
  }
}

resource globalPolicyResource 'Microsoft.ApiManagement/service/policies@2024-05-01' = {
  parent: service
  name: 'policy'
  properties: {
    format: 'rawxml'
    value: globalPolicy
  }
  dependsOn: [
    plainValues
    secretValues
  ]
}

module apiModules 'apim-api.bicep' = [
  for api in items(apis): {
    name: '${deployment().name}-api-${api.key}'
    params: {
      serviceName: service.name
      api: api.value
      policyXml: apiPolicies[api.key]
      serviceUrl: empty(api.value.backendPath) ? functionsBaseUrl : '${functionsBaseUrl}/${api.value.backendPath}'
    }
    dependsOn: [
      plainValues
      secretValues
      globalPolicyResource
    ]
  }
]

module products 'apim-product.bicep' = [
  for dept in departments: {
    name: take('${deployment().name}-product-${dept.id}', 64)
    params: {
      serviceName: service.name
      department: dept
      apiIds: meteredApiIds
      subscriptions: subscriptions
    }
    dependsOn: [
      apiModules
    ]
  }
]

output name string = service.name
output id string = service.id
output gatewayUrl string = service.properties.gatewayUrl
output principalId string = service.identity.principalId
