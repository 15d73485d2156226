// Every data-plane grant of the Function App's identity, each named
// guid(scope, principalId, roleId), every role id from role-ids.bicep:
// - Storage: Blob Data Contributor (reports, spool, quarantine, runtime blobs, deployment
//   package), Blob Delegator (user delegation key for the finance API's SAS links), Queue and
//   Table Data Contributor (Functions runtime and the Durable task hub on AzureWebJobsStorage);
// - Key Vault: Secrets User (Key Vault references, keyvault: settings);
// - Azure OpenAI: Cognitive Services OpenAI User; Speech: Cognitive Services Speech User;
// - Cosmos DB: the built-in Data Contributor (sqlRoleAssignments);
// - Redis: the "default" access policy on the database (Entra ID user = the identity's object id).

import { cosmosRoleDefinitionIds, redisAccessPolicyName, roleDefinitionIds } from 'role-ids.bicep'

param principalId string
param storageAccountName string
param keyVaultName string
param openAiName string
param speechName string
param cosmosAccountName string
param redisName string
param redisDatabaseName string

var storageRoles = [
  'storageBlobDataContributor'
  'storageBlobDelegator'
  'storageQueueDataContributor'
  'storageTableDataContributor'
]
var keyVaultRoles = [
  'keyVaultSecretsUser'
]
var openAiRoles = [
  'cognitiveServicesOpenAIUser'
]
var speechRoles = [
  'cognitiveServicesSpeechUser'
]

resource storage 'Microsoft.Storage/storageAccounts@2026-04-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2026-02-01' existing = {
  name: keyVaultName
}

resource openAi 'Microsoft.CognitiveServices/accounts@2026-07-01' existing = {
  name: openAiName
}

resource speech 'Microsoft.CognitiveServices/accounts@2026-07-01' existing = {
  name: speechName
}

resource cosmos 'Microsoft.DocumentDB/databaseAccounts@2026-03-15' existing = {
  name: cosmosAccountName
}

resource redis 'Microsoft.Cache/redisEnterprise@2025-07-01' existing = {
  name: redisName

  resource database 'databases' existing = {
    name: redisDatabaseName
  }
}

resource storageAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in storageRoles: {
    name: guid(storage.id, principalId, roleDefinitionIds[role])
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds[role])
      principalId: principalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource keyVaultAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in keyVaultRoles: {
    name: guid(vault.id, principalId, roleDefinitionIds[role])
    scope: vault
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds[role])
      principalId: principalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource openAiAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in openAiRoles: {
    name: guid(openAi.id, principalId, roleDefinitionIds[role])
    scope: openAi
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds[role])
      principalId: principalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource speechAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in speechRoles: {
    name: guid(speech.id, principalId, roleDefinitionIds[role])
    scope: speech
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionIds[role])
      principalId: principalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource cosmosDataContributor 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2026-03-15' = {
  parent: cosmos
  name: guid(cosmos.id, principalId, cosmosRoleDefinitionIds.cosmosDataContributor)
  properties: {
    roleDefinitionId: '${cosmos.id}/sqlRoleDefinitions/${cosmosRoleDefinitionIds.cosmosDataContributor}'
    principalId: principalId
    scope: cosmos.id
  }
}

resource redisDataAccess 'Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments@2025-07-01' = {
  parent: redis::database
  // Letters and digits only.
  name: replace(guid(redis::database.id, principalId, redisAccessPolicyName), '-', '')
  properties: {
    accessPolicyName: redisAccessPolicyName
    user: {
      objectId: principalId
    }
  }
}
