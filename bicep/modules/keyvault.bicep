// Key Vault in RBAC mode, and the secrets the deployment owns: the gateway credential and the
// function key APIM sends (both also APIM Key Vault–backed named values, under the same names),
// and the Application Insights connection string. The Function App reads them through App
// Service Key Vault references with its user-assigned identity; APIM with its own identity.

import { tagMap } from '../types.bicep'

param name string
param location string
param tags tagMap

@description('Secrets to create: secret name -> value.')
@secure()
param secrets object

@description('Application Insights component whose connection string is stored as a secret.')
param appInsightsName string

@description('Name of the secret holding the Application Insights connection string.')
param appInsightsSecretName string

@description('"Disabled" with the private networking option: the Function App reaches the vault through its private endpoint; APIM (not in the VNet) reads its Key Vault–backed named values as a trusted Microsoft service with its system-assigned identity (bypass: AzureServices).')
param publicNetworkAccess 'Enabled' | 'Disabled' = 'Enabled'

@description('Log Analytics workspace the vault\'s resource logs go to.')
param workspaceId string

param enablePurgeProtection bool = true

resource vault 'Microsoft.KeyVault/vaults@2026-02-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: enablePurgeProtection ? true : null
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
      bypass: 'AzureServices'
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource givenSecrets 'Microsoft.KeyVault/vaults/secrets@2026-02-01' = [
  for secret in items(secrets): {
    parent: vault
    name: secret.key
    tags: tags
    properties: {
      value: secret.value
    }
  }
]

resource appInsightsSecret 'Microsoft.KeyVault/vaults/secrets@2026-02-01' = {
  parent: vault
  name: appInsightsSecretName
  tags: tags
  properties: {
    value: appInsights.properties.ConnectionString
  }
}

// Every data-plane access (secret reads by the app and APIM, writes by the deployment).
resource vaultDiagnostics 'microsoft.insights/diagnosticSettings@2016-09-01' = {
  name: 'service'
  scope: vault
  location: location
  tags: tags
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'AuditEvent', enabled: true }
    ]
  }
}

output name string = vault.name
output id string = vault.id
output uri string = vault.properties.vaultUri
