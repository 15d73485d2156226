// Azure Managed Redis (Microsoft.Cache/redisEnterprise): the usage buffer and the budget ledger.
//
// Clustering policy: EnterpriseCluster. The app connects with one ioredis client to one
// endpoint (not a cluster client), and REDIS_WAIT_REPLICAS needs a single-endpoint client; with
// EnterpriseCluster the service's proxy routes every key, so a non-cluster client works. Every
// multi-key command and Lua script of the app stays in one hash slot (hash tags {w:…}, {d:…}),
// as clustering requires. The clustering policy cannot be changed without recreating the
// database.
//
// Eviction: NoEviction. The buffer holds unaggregated usage: a full cache must refuse writes
// (the app then spools to Blob Storage), never drop usage silently. Persistence: AOF every second.
//
// Authentication: Entra ID only (access keys disabled). The Function App's identity gets the
// "default" access policy (rbac.bicep) and authenticates with REDIS_ENTRA_OBJECT_ID.

import { redisSku, tagMap } from '../types.bicep'

param name string
param location string
param tags tagMap
param sku redisSku = 'Balanced_B0'
param highAvailability bool = true
param publicNetworkAccess 'Enabled' | 'Disabled' = 'Enabled'

@description('Log Analytics workspace the database\'s resource logs go to.')
param workspaceId string

resource cluster 'Microsoft.Cache/redisEnterprise@2025-07-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: sku
  }
  properties: {
    minimumTlsVersion: '1.2'
    highAvailability: highAvailability ? 'Enabled' : 'Disabled'
    publicNetworkAccess: publicNetworkAccess
  }
}

resource database 'Microsoft.Cache/redisEnterprise/databases@2025-07-01' = {
  parent: cluster
  name: 'default'
  properties: {
    clientProtocol: 'Encrypted'
    port: 10000
    clusteringPolicy: 'EnterpriseCluster'
    evictionPolicy: 'NoEviction'
    accessKeysAuthentication: 'Disabled'
    persistence: {
      aofEnabled: true
      aofFrequency: '1s'
    }
  }
}

// Azure Managed Redis logs per database: connections, Entra ID authentications, disconnections.
resource databaseDiagnostics 'microsoft.insights/diagnosticSettings@2016-09-01' = {
  name: 'service'
  scope: database
  location: location
  tags: tags
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'ConnectionEvents', enabled: true }
    ]
  }
}

output name string = cluster.name
output id string = cluster.id
output databaseName string = database.name
output hostName string = cluster.properties.hostName
output url string = 'rediss://${cluster.properties.hostName}:${database.properties.port}'
