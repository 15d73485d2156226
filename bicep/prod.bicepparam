using './main.bicep'

param environment = 'prod'
param location = 'swedencentral'
param tags = {
  costCenter: 'it-platform'
  criticality: 'high'
}

param departments = [
  { id: 'research', displayName: 'Research' }
  { id: 'marketing', displayName: 'Marketing' }
  { id: 'finance', displayName: 'Finance' }
  { id: 'support', displayName: 'Customer support' }
]

param openAiDeployments = [
  { name: 'gpt-4o', model: 'gpt-4o', version: '2024-11-20', sku: 'GlobalStandard', capacity: 100 }
  { name: 'gpt-4o-mini', model: 'gpt-4o-mini', version: '2024-07-18', sku: 'GlobalStandard', capacity: 200 }
  { name: 'text-embedding-3-small', model: 'text-embedding-3-small', version: '1', sku: 'GlobalStandard', capacity: 100 }
]

param cosmos = { mode: 'autoscale', maxThroughput: 4000 }
param redisSkuName = 'Balanced_B3'
param redisHighAvailability = true
param apimSkuName = 'StandardV2'
param apimCapacity = 1

param publisherEmail = readEnvironmentVariable('APIM_PUBLISHER_EMAIL')
param publisherName = 'AI platform'

param entra = {
  audience: readEnvironmentVariable('CHARGEBACK_API_AUDIENCE')
  clientAppId: readEnvironmentVariable('CHARGEBACK_CLIENT_APP_ID')
}
param limits = {
  requestsPerMinute: 600
  openaiTokensPerMinute: 100000
  openaiTokensPerMonth: 200000000
}
param retention = {
  usageSpoolDays: 35
  usageQuarantineDays: 90
}
param alertEmails = [
  'ai-platform-oncall@example.com'
]

param gatewaySharedSecret = readEnvironmentVariable('GATEWAY_SHARED_SECRET')
param functionKey = readEnvironmentVariable('APIM_FUNCTION_KEY')
