// The Function App's user-assigned identity. User-assigned so that every data-plane grant
// (rbac.bicep) exists before the app starts, and the same identity authenticates Key Vault
// references, AzureWebJobsStorage, the deployment container and DefaultAzureCredential.

import { tagMap } from '../types.bicep'

param name string
param location string
param tags tagMap

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2024-11-30' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
