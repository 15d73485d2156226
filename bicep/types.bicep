// User-defined types shared by main.bicep and the modules (compile-time imports).

@export()
@description('Short environment name; part of every resource name.')
type environmentName = 'dev' | 'test' | 'prod'

@export()
@description('Tags put on every resource.')
type tagMap = {
  *: string
}

@export()
@description('A consumer group (department): one APIM product. Its id is what APIM forwards as the department (context.Product.Id), so it must match the department id pattern of shared/contracts/department.ts: lower-case letters, digits, ".", "_" and "-", starting with a letter or digit.')
type department = {
  @minLength(1)
  @maxLength(64)
  id: string
  displayName: string
  description: string?
  @description('Subscriptions to this department\'s product need an admin\'s approval.')
  approvalRequired: bool?
}

@export()
@description('An app of a department that gets an APIM subscription (its key) at deployment. The subscription\'s display name is the app id the usage is attributed to.')
type appSubscription = {
  @minLength(1)
  @maxLength(80)
  app: string
  @description('The id of a department in `departments`.')
  department: string
}

@export()
@description('Azure OpenAI model deployment. `name` is the deployment name callers use in their URLs.')
type modelDeployment = {
  name: string
  model: string
  version: string
  sku: 'GlobalStandard' | 'DataZoneStandard' | 'Standard'
  @minValue(1)
  @description('Thousands of tokens per minute.')
  capacity: int
}

@export()
@description('Cosmos DB capacity: serverless (default), or provisioned autoscale throughput shared by the database (maxThroughput RU/s, at least 1000).')
type cosmosCapacity = {
  mode: 'serverless' | 'autoscale'
  @minValue(1000)
  maxThroughput: int?
}

@export()
@description('Azure Managed Redis (redisEnterprise) SKUs suitable for the usage buffer.')
type redisSku =
  | 'Balanced_B0'
  | 'Balanced_B1'
  | 'Balanced_B3'
  | 'Balanced_B5'
  | 'Balanced_B10'
  | 'MemoryOptimized_M10'
  | 'ComputeOptimized_X3'

@export()
@description('API Management v2 tiers.')
type apimSku = 'BasicV2' | 'StandardV2'

@export()
@description('The gateway\'s limits (APIM named values the policies read).')
type gatewayLimits = {
  @minValue(1)
  requestsPerMinute: int
  @minValue(1)
  openaiTokensPerMinute: int
  @minValue(1)
  openaiTokensPerMonth: int
}

@export()
@description('Entra ID: who issues callers\' tokens for the finance/admin API (and optional tokens on the OpenAI API).')
type entraSettings = {
  @description('Tenant id; defaults to the deployment\'s tenant.')
  tenantId: string?
  @description('Application ID URI (or client id) of the chargeback API app registration: the token audience.')
  audience: string
  @description('App id of the client application allowed to call with Entra ID tokens.')
  clientAppId: string
}

@export()
@description('Spool and quarantine expiry (Blob lifecycle). Reports are kept.')
type blobRetention = {
  @minValue(7)
  @description('Days after which a spooled usage event is deleted. Spooled events are released by the chargeback run once committed; this only removes what an outage longer than this left behind, so keep it well above the longest outage you would still want to charge.')
  usageSpoolDays: int
  @minValue(1)
  usageQuarantineDays: int
}
