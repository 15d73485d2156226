// AI chargeback: the whole deployment into one resource group.
//
// targetScope resourceGroup: everything lives in one group that the deployer (or a pipeline)
// already has, with Owner or Contributor + Role Based Access Control Administrator on it; no
// subscription-level rights are needed and `az deployment group create` is the one command.
targetScope = 'resourceGroup'

import { apimSku, appSubscription, blobRetention, cosmosCapacity, department, entraSettings, environmentName, gatewayLimits, modelDeployment, redisSku, tagMap } from 'types.bicep'

@description('Environment: part of every name.')
param environment environmentName

@minLength(2)
@maxLength(12)
@description('Name prefix (letters, digits, hyphens).')
param prefix string = 'chargeback'

param location string = resourceGroup().location
@description('Speech account region (defaults to location).')
param speechLocation string = location

param tags tagMap = {}

@description('Departments: one APIM product each; the product id is the department id.')
param departments department[]

@description('App subscriptions created at deployment (others are created later, see docs/deploy.md).')
param appSubscriptions appSubscription[] = []

param openAiDeployments modelDeployment[]
@description('Azure OpenAI data-plane API version the app calls upstream with.')
param openAiApiVersion string = '2024-10-21'

param cosmos cosmosCapacity = { mode: 'serverless' }
param redisSkuName redisSku = 'Balanced_B0'
param redisHighAvailability bool = true

param apimSkuName apimSku = 'BasicV2'
param apimCapacity int = 1
param publisherEmail string
param publisherName string

@description('Entra ID: the token audience (application ID URI) and the client app. With createAppRegistration, entra.audience is the application ID URI the created app registration gets.')
param entra entraSettings
@description('Create the chargeback API\'s Entra ID app registration (app roles, application ID URI) and its service principal with the Microsoft Graph Bicep extension (modules/entra-app.bicep). The deployer then needs Application.ReadWrite.All in Entra ID (docs/deploy.md). Off: the app registration exists already and entra names it.')
param createAppRegistration bool = false
param limits gatewayLimits

param retention blobRetention = {
  usageSpoolDays: 35
  usageQuarantineDays: 90
}

@description('Private networking: a VNet, private endpoints and private DNS zones for storage, Cosmos DB, Redis, Key Vault, Azure OpenAI and Speech, whose public network access is then disabled; the Function App integrates with the VNet for outbound traffic. The Function App and APIM stay publicly reachable (docs/deploy.md).')
param privateNetworking bool = false
@description('VNet address space with privateNetworking (two /24 subnets are carved from it).')
param vnetAddressSpace string = '10.60.0.0/22'

@description('Durable Functions task hub.')
param taskHubName string = 'ChargebackHub'

@description('Seed chargeback configuration (CHARGEBACK_CONFIG); empty: the shipped example.')
param chargebackConfig object = {}

@description('E-mail addresses for alerts.')
param alertEmails string[] = []

@secure()
@minLength(16)
@description('Gateway credential APIM sends and the functions check (GATEWAY_SHARED_SECRET).')
param gatewaySharedSecret string

@secure()
@minLength(32)
@description('Value of the host-level function key APIM sends in x-functions-key.')
param functionKey string

var suffix = take(uniqueString(subscription().id, resourceGroup().id, prefix, environment), 6)
var baseName = '${prefix}-${environment}'
var compactName = toLower(replace(prefix, '-', ''))
var allTags = union(tags, {
  application: 'ai-chargeback'
  environment: environment
})

// Key Vault secret names. The two APIM reads are named like its named values.
var gatewaySecretName = 'chargeback-gateway-secret'
var functionKeySecretName = 'chargeback-function-key'
var appInsightsSecretName = 'appinsights-connection-string'
var functionKeyName = 'apim'

var dataPublicNetworkAccess = privateNetworking ? 'Disabled' : 'Enabled'

module identity 'modules/identity.bicep' = {
  name: '${deployment().name}-identity'
  params: {
    name: 'id-${baseName}-func'
    location: location
    tags: allTags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: '${deployment().name}-monitoring'
  params: {
    workspaceName: 'log-${baseName}-${suffix}'
    appInsightsName: 'appi-${baseName}-${suffix}'
    location: location
    tags: allTags
  }
}

module storage 'modules/storage.bicep' = {
  name: '${deployment().name}-storage'
  params: {
    name: take('st${compactName}${environment}${suffix}', 24)
    location: location
    tags: allTags
    retention: retention
    publicNetworkAccess: dataPublicNetworkAccess
    workspaceId: monitoring.outputs.workspaceId
  }
}

module keyVault 'modules/keyvault.bicep' = {
  name: '${deployment().name}-keyvault'
  params: {
    name: take('kv-${baseName}-${suffix}', 24)
    location: location
    tags: allTags
    appInsightsName: monitoring.outputs.appInsightsName
    appInsightsSecretName: appInsightsSecretName
    publicNetworkAccess: dataPublicNetworkAccess
    workspaceId: monitoring.outputs.workspaceId
    secrets: {
      '${gatewaySecretName}': gatewaySharedSecret
      '${functionKeySecretName}': functionKey
    }
  }
}

module cosmosDb 'modules/cosmos.bicep' = {
  name: '${deployment().name}-cosmos'
  params: {
    name: 'cosmos-${baseName}-${suffix}'
    location: location
    tags: allTags
    capacity: cosmos
    publicNetworkAccess: dataPublicNetworkAccess
    workspaceId: monitoring.outputs.workspaceId
  }
}

module redis 'modules/redis.bicep' = {
  name: '${deployment().name}-redis'
  params: {
    name: 'redis-${baseName}-${suffix}'
    location: location
    tags: allTags
    sku: redisSkuName
    highAvailability: redisHighAvailability
    publicNetworkAccess: dataPublicNetworkAccess
    workspaceId: monitoring.outputs.workspaceId
  }
}

module ai 'modules/ai.bicep' = {
  name: '${deployment().name}-ai'
  params: {
    openAiName: 'aoai-${baseName}-${suffix}'
    speechName: 'speech-${baseName}-${suffix}'
    location: location
    speechLocation: speechLocation
    tags: allTags
    deployments: openAiDeployments
    publicNetworkAccess: dataPublicNetworkAccess
    workspaceId: monitoring.outputs.workspaceId
  }
}

module rbac 'modules/rbac.bicep' = {
  name: '${deployment().name}-rbac'
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    openAiName: ai.outputs.openAiName
    speechName: ai.outputs.speechName
    cosmosAccountName: cosmosDb.outputs.name
    redisName: redis.outputs.name
    redisDatabaseName: redis.outputs.databaseName
  }
}

// Private endpoints for every data-plane dependency of the Function App (and the VNet it
// integrates with). Group ids and DNS zones: modules/network.bicep.
module network 'modules/network.bicep' = if (privateNetworking) {
  name: '${deployment().name}-network'
  params: {
    name: 'vnet-${baseName}-${suffix}'
    location: location
    tags: allTags
    addressSpace: vnetAddressSpace
    privateEndpoints: [
      { name: 'blob', resourceId: storage.outputs.id, groupId: 'blob', zones: ['blob'] }
      { name: 'queue', resourceId: storage.outputs.id, groupId: 'queue', zones: ['queue'] }
      { name: 'table', resourceId: storage.outputs.id, groupId: 'table', zones: ['table'] }
      { name: 'cosmos', resourceId: cosmosDb.outputs.id, groupId: 'Sql', zones: ['cosmos'] }
      { name: 'redis', resourceId: redis.outputs.id, groupId: 'redisEnterprise', zones: ['redis'] }
      { name: 'vault', resourceId: keyVault.outputs.id, groupId: 'vault', zones: ['vault'] }
      { name: 'openai', resourceId: ai.outputs.openAiId, groupId: 'account', zones: ['openAi', 'cognitiveServices'] }
      { name: 'speech', resourceId: ai.outputs.speechId, groupId: 'account', zones: ['cognitiveServices'] }
    ]
  }
}

module functionApp 'modules/functionapp.bicep' = {
  name: '${deployment().name}-functionapp'
  params: {
    planName: 'asp-${baseName}-${suffix}'
    siteName: 'func-${baseName}-${suffix}'
    location: location
    tags: allTags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    reportsContainerName: storage.outputs.reportsContainerName
    keyVaultName: keyVault.outputs.name
    keyVaultUri: keyVault.outputs.uri
    gatewaySecretName: gatewaySecretName
    appInsightsSecretName: appInsightsSecretName
    redisUrl: redis.outputs.url
    cosmosEndpoint: cosmosDb.outputs.endpoint
    cosmosDatabaseName: cosmosDb.outputs.databaseName
    openAiEndpoint: ai.outputs.openAiEndpoint
    openAiApiVersion: openAiApiVersion
    speechRegion: ai.outputs.speechRegion
    speechResourceId: ai.outputs.speechId
    // Regional Speech endpoints do not go through the private endpoint: the custom domain does.
    speechEndpoint: privateNetworking ? ai.outputs.speechEndpoint : ''
    virtualNetworkSubnetId: privateNetworking ? network.outputs.functionsSubnetId : ''
    workspaceId: monitoring.outputs.workspaceId
    taskHubName: taskHubName
    chargebackConfig: chargebackConfig
  }
  // Grants (and, with private networking, the private endpoints) first: the app resolves its
  // Key Vault references and connects at start.
  dependsOn: [
    rbac
    network
  ]
}

// APIM's function key, apart: nothing waits for it (see the module).
module apimFunctionKey 'modules/function-key.bicep' = {
  name: '${deployment().name}-function-key'
  params: {
    siteName: functionApp.outputs.name
    functionKeyName: functionKeyName
    functionKey: functionKey
  }
}

// The chargeback API's app registration (Microsoft Graph extension), only when asked for.
module entraApp 'modules/entra-app.bicep' = if (createAppRegistration) {
  name: '${deployment().name}-entra-app'
  params: {
    uniqueName: 'ai-${baseName}-api'
    displayName: 'AI chargeback API (${environment})'
    identifierUri: entra.audience
  }
}

// What APIM validates tokens with (its named values): with createAppRegistration, the audience of
// the app registration just created (which also makes APIM wait for it).
var apiEntra = {
  tenantId: entra.?tenantId
  audience: createAppRegistration ? entraApp.outputs.audience : entra.audience
  clientAppId: entra.clientAppId
}

module apim 'modules/apim.bicep' = {
  name: '${deployment().name}-apim'
  params: {
    name: 'apim-${baseName}-${suffix}'
    location: location
    tags: allTags
    sku: apimSkuName
    capacity: apimCapacity
    publisherEmail: publisherEmail
    publisherName: publisherName
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: keyVault.outputs.name
    functionKeySecretName: functionKeySecretName
    gatewaySecretName: gatewaySecretName
    functionAppName: functionApp.outputs.name
    functionsBaseUrl: functionApp.outputs.baseUrl
    workspaceId: monitoring.outputs.workspaceId
    entra: apiEntra
    limits: limits
    departments: departments
    subscriptions: appSubscriptions
  }
}

module alerts 'modules/alerts.bicep' = {
  name: '${deployment().name}-alerts'
  params: {
    location: location
    tags: allTags
    namePrefix: baseName
    appInsightsId: monitoring.outputs.appInsightsId
    emails: alertEmails
  }
}

module workbook 'modules/workbook.bicep' = {
  name: '${deployment().name}-workbook'
  params: {
    location: location
    tags: allTags
    appInsightsId: monitoring.outputs.appInsightsId
  }
}

output functionAppName string = functionApp.outputs.name
output functionAppUrl string = functionApp.outputs.baseUrl
output apimName string = apim.outputs.name
output gatewayUrl string = apim.outputs.gatewayUrl
output keyVaultName string = keyVault.outputs.name
output storageAccountName string = storage.outputs.name
output cosmosAccountName string = cosmosDb.outputs.name
output redisName string = redis.outputs.name
output openAiName string = ai.outputs.openAiName
output speechName string = ai.outputs.speechName
output functionIdentityPrincipalId string = identity.outputs.principalId
output appInsightsId string = monitoring.outputs.appInsightsId
output workspaceId string = monitoring.outputs.workspaceId
output apiAudience string = apiEntra.audience
output apiAppId string = createAppRegistration ? entraApp.outputs.appId : ''
output vnetId string = privateNetworking ? network.outputs.vnetId : ''
