// The Function App: Flex Consumption (FC1), Node 22, the user-assigned identity for everything
// (AzureWebJobsStorage, the deployment container, Key Vault references, DefaultAzureCredential).
// Its app settings are exactly what the config schema (shared/config/settings.ts) needs in
// Azure, named as in shared/contracts/settings.ts (a test compares them), plus the Functions
// runtime's own.

import { tagMap } from '../types.bicep'

param planName string
param siteName string
param location string
param tags tagMap

param identityId string
param identityClientId string
param identityPrincipalId string

param storageAccountName string
param storageBlobEndpoint string
param deploymentContainerUrl string
param reportsContainerName string

param keyVaultName string
param keyVaultUri string
@description('Key Vault secret holding GATEWAY_SHARED_SECRET (also APIM\'s named value).')
param gatewaySecretName string
@description('Key Vault secret holding the Application Insights connection string.')
param appInsightsSecretName string

param redisUrl string
param cosmosEndpoint string
param cosmosDatabaseName string
param openAiEndpoint string
param openAiApiVersion string
param speechRegion string
param speechResourceId string
@description('Speech custom-domain endpoint (SPEECH_ENDPOINT); empty: the regional endpoints of SPEECH_REGION. Set with the private networking option: regional endpoints do not go through a private endpoint.')
param speechEndpoint string = ''

@description('Durable Functions task hub name (overrides host.json\'s hubName).')
param taskHubName string

@description('Seed configuration (CHARGEBACK_CONFIG, see README); empty: the shipped example.')
param chargebackConfig object = {}

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Subnet for outbound VNet integration (private networking option, delegated to Microsoft.App/environments); empty: none.')
param virtualNetworkSubnetId string = ''

@description('Log Analytics workspace the app\'s resource logs go to.')
param workspaceId string

func keyVaultReference(vault string, secret string) string =>
  '@Microsoft.KeyVault(VaultName=${vault};SecretName=${secret})'

// The Functions runtime's settings (not the app's config schema). Identity-based
// AzureWebJobsStorage with the user-assigned identity; the Durable task hub lives there too.
var runtimeSettings = {
  AzureWebJobsStorage__accountName: storageAccountName
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  AZURE_CLIENT_ID: identityClientId
  AzureFunctionsJobHost__extensions__durableTask__hubName: taskHubName
}

// The app's settings (shared/contracts/settings.ts): identity-based connections, secrets as
// Key Vault references; no keys, no connection strings, no local-only settings.
var appSettings = {
  KEY_VAULT_URI: keyVaultUri
  REDIS_URL: redisUrl
  REDIS_ENTRA_OBJECT_ID: identityPrincipalId
  STORAGE_BLOB_URL: storageBlobEndpoint
  REPORTS_CONTAINER: reportsContainerName
  COSMOS_ENDPOINT: cosmosEndpoint
  COSMOS_DATABASE: cosmosDatabaseName
  AZURE_OPENAI_ENDPOINT: openAiEndpoint
  AZURE_OPENAI_API_VERSION: openAiApiVersion
  SPEECH_REGION: speechRegion
  SPEECH_RESOURCE_ID: speechResourceId
  GATEWAY_SHARED_SECRET: keyVaultReference(keyVaultName, gatewaySecretName)
  APPLICATIONINSIGHTS_CONNECTION_STRING: keyVaultReference(keyVaultName, appInsightsSecretName)
}

var optionalAppSettings = union(
  empty(chargebackConfig)
    ? {}
    : {
        CHARGEBACK_CONFIG: string(chargebackConfig)
      },
  empty(speechEndpoint)
    ? {}
    : {
        SPEECH_ENDPOINT: speechEndpoint
      }
)

var allSettings = union(runtimeSettings, appSettings, optionalAppSettings)

resource plan 'Microsoft.Web/serverfarms@2025-03-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2025-03-01' = {
  name: siteName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    // With VNet integration, everything the app calls (storage, Key Vault references, Cosmos DB,
    // Redis, the AI accounts) goes through the VNet and so reaches their private endpoints.
    outboundVnetRouting: empty(virtualNetworkSubnetId)
      ? null
      : {
          allTraffic: true
        }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      runtime: {
        name: 'node'
        version: '22'
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: map(items(allSettings), setting => {
        name: setting.key
        value: setting.value
      })
    }
  }
}

// The Functions host's logs (FunctionAppLogs) to Log Analytics, next to the telemetry the app
// sends to Application Insights.
resource siteDiagnostics 'microsoft.insights/diagnosticSettings@2016-09-01' = {
  name: 'service'
  scope: site
  location: location
  tags: tags
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'FunctionAppLogs', enabled: true }
    ]
  }
}

resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2025-03-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output id string = site.id
output defaultHostName string = site.properties.defaultHostName
output baseUrl string = 'https://${site.properties.defaultHostName}/api'
