// The ONE map from a role's name to its built-in role definition id. Every role assignment
// (rbac.bicep, apim.bicep) takes its id from here.

@export()
@description('Azure RBAC built-in role definition ids (Microsoft.Authorization/roleDefinitions).')
var roleDefinitionIds = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDelegator: 'db58b8e5-c6ad-4a2a-8342-4190687cbf4a'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  cognitiveServicesOpenAIUser: '5e0bd9bd-7b93-4f28-af87-19fc36ad61bd'
  cognitiveServicesSpeechUser: 'f2dc8367-1007-4938-bd23-fe263f013447'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

@export()
@description('Cosmos DB data-plane built-in role definition ids (sqlRoleDefinitions of the account).')
var cosmosRoleDefinitionIds = {
  cosmosDataContributor: '00000000-0000-0000-0000-000000000002'
}

@export()
@description('Azure Managed Redis data access policy (the only one the service supports for Entra ID users).')
var redisAccessPolicyName = 'default'
