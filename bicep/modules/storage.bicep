// One storage account: the Functions runtime's AzureWebJobsStorage (identity-based: blobs,
// queues and tables of the Durable task hub and timer leases), the Flex Consumption deployment
// container, and the app's Blob containers (shared/contracts/storage.ts BLOB_CONTAINERS).
// Shared key access is disabled: everything authenticates with Entra ID; report links are
// user delegation SAS.

import { blobRetention, tagMap } from '../types.bicep'

param name string
param location string
param tags tagMap
param retention blobRetention

@description('Container the Flex Consumption plan deploys the app package to.')
param deploymentContainerName string = 'app-package'

@description('Public network access; "Disabled" needs the private networking option.')
param publicNetworkAccess 'Enabled' | 'Disabled' = 'Enabled'

@description('Log Analytics workspace the blob service\'s resource logs go to.')
param workspaceId string

// The app's containers, as shared/contracts/storage.ts names them (a test compares them).
var blobContainers = {
  reports: 'reports'
  usageSpool: 'usage-spool'
  usageQuarantine: 'usage-quarantine'
}

resource account 'Microsoft.Storage/storageAccounts@2026-04-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: publicNetworkAccess == 'Enabled' ? 'Allow' : 'Deny'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2026-04-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

// Resource logs of the blob service (reports, spool, quarantine, the runtime's blobs). The queue
// and table services are not logged: the Functions runtime and the Durable task hub poll them
// continuously, which would be mostly noise at a cost. Metrics stay in Azure Monitor Metrics.
resource blobDiagnostics 'microsoft.insights/diagnosticSettings@2016-09-01' = {
  name: 'service'
  scope: blobService
  location: location
  tags: tags
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'StorageRead', enabled: true }
      { category: 'StorageWrite', enabled: true }
      { category: 'StorageDelete', enabled: true }
    ]
  }
}

resource appContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2026-04-01' = [
  for container in items(blobContainers): {
    parent: blobService
    name: container.value
    properties: {
      publicAccess: 'None'
    }
  }
]

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2026-04-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// Reports are kept (no rule). Spooled events and quarantined events expire.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2026-04-01' = {
  parent: account
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          enabled: true
          name: 'expire-usage-spool'
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${blobContainers.usageSpool}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: retention.usageSpoolDays
                }
              }
            }
          }
        }
        {
          enabled: true
          name: 'expire-usage-quarantine'
          type: 'Lifecycle'
          definition: {
            filters: {
              blobTypes: [
                'blockBlob'
              ]
              prefixMatch: [
                '${blobContainers.usageQuarantine}/'
              ]
            }
            actions: {
              baseBlob: {
                delete: {
                  daysAfterModificationGreaterThan: retention.usageQuarantineDays
                }
              }
            }
          }
        }
      ]
    }
  }
  dependsOn: [
    appContainers
  ]
}

output name string = account.name
output id string = account.id
output blobEndpoint string = account.properties.primaryEndpoints.blob
output reportsContainerName string = blobContainers.reports
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainer.name}'
