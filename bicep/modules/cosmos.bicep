// Cosmos DB for NoSQL: the database and containers of shared/contracts/storage.ts with their
// partition key paths. Serverless by default, autoscale as an option. Key auth is disabled:
// the Function App's identity gets the built-in Data Contributor role (rbac.bicep), which can
// read and write items but not create containers, so the deployment creates them all here.

import { cosmosCapacity, tagMap } from '../types.bicep'

param name string
param location string
param tags tagMap
param capacity cosmosCapacity = { mode: 'serverless' }
param zoneRedundant bool = false
param publicNetworkAccess 'Enabled' | 'Disabled' = 'Enabled'

@description('Log Analytics workspace the account\'s resource logs go to.')
param workspaceId string

// As shared/contracts/storage.ts names them (a test compares them).
var databaseName = 'chargeback'
var containers = {
  usage: { id: 'usage', partitionKeyPath: '/pk' }
  prices: { id: 'prices', partitionKeyPath: '/model' }
  configuration: { id: 'configuration', partitionKeyPath: '/pk' }
}

var serverless = capacity.mode == 'serverless'

resource account 'Microsoft.DocumentDB/databaseAccounts@2026-03-15' = {
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: zoneRedundant
      }
    ]
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    capabilities: serverless
      ? [
          {
            name: 'EnableServerless'
          }
        ]
      : []
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: publicNetworkAccess
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2026-03-15' = {
  parent: account
  name: databaseName
  tags: tags
  properties: {
    resource: {
      id: databaseName
    }
    options: serverless
      ? {}
      : {
          autoscaleSettings: {
            maxThroughput: capacity.?maxThroughput ?? 1000
          }
        }
  }
}

resource sqlContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2026-03-15' = [
  for container in items(containers): {
    parent: database
    name: container.value.id
    tags: tags
    properties: {
      resource: {
        id: container.value.id
        partitionKey: {
          paths: [
            container.value.partitionKeyPath
          ]
          kind: 'Hash'
          version: 2
        }
      }
    }
  }
]

// Data-plane requests (who read or wrote what, RU charge), control-plane changes, query
// statistics and RU consumption per partition key (hot partitions). The 2016-09-01 API has no
// resource-specific destination, so they land in AzureDiagnostics.
resource accountDiagnostics 'microsoft.insights/diagnosticSettings@2016-09-01' = {
  name: 'service'
  scope: account
  location: location
  tags: tags
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'DataPlaneRequests', enabled: true }
      { category: 'ControlPlaneRequests', enabled: true }
      { category: 'QueryRuntimeStatistics', enabled: true }
      { category: 'PartitionKeyRUConsumption', enabled: true }
    ]
  }
}

output name string = account.name
output id string = account.id
output endpoint string = account.properties.documentEndpoint
output databaseName string = database.name
