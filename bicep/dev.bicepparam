using './main.bicep'

param environment = 'dev'
param location = 'swedencentral'
param tags = {
  costCenter: 'it-platform'
}

param departments = [
  { id: 'research', displayName: 'Research', approvalRequired: false }
  { id: 'marketing', displayName: 'Marketing', approvalRequired: false }
]
param appSubscriptions = [
  { app: 'chat-app', department: 'research' }
]

param openAiDeployments = [
  { name: 'gpt-4o-mini', model: 'gpt-4o-mini', version: '2024-07-18', sku: 'GlobalStandard', capacity: 10 }
  { name: 'text-embedding-3-small', model: 'text-embedding-3-small', version: '1', sku: 'GlobalStandard', capacity: 10 }
]

param cosmos = { mode: 'serverless' }
param redisSkuName = 'Balanced_B0'
param redisHighAvailability = false
param apimSkuName = 'BasicV2'

param publisherEmail = readEnvironmentVariable('APIM_PUBLISHER_EMAIL', 'ai-platform@example.com')
param publisherName = 'AI platform (dev)'

param entra = {
  audience: readEnvironmentVariable('CHARGEBACK_API_AUDIENCE', 'api://ai-chargeback-dev')
  clientAppId: readEnvironmentVariable('CHARGEBACK_CLIENT_APP_ID', '00000000-0000-0000-0000-000000000000')
}
param limits = {
  requestsPerMinute: 120
  openaiTokensPerMinute: 20000
  openaiTokensPerMonth: 5000000
}
param retention = {
  usageSpoolDays: 35
  usageQuarantineDays: 30
}

// Secrets come from the environment of whoever deploys, never from this file.
param gatewaySharedSecret = readEnvironmentVariable('GATEWAY_SHARED_SECRET')
param functionKey = readEnvironmentVariable('APIM_FUNCTION_KEY')
