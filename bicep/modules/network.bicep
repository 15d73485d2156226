// The private networking option (main.bicep `privateNetworking`): a VNet with two subnets, one
// private endpoint per data-plane dependency of the Function App, and the private DNS zones that
// make the services' usual host names resolve to those endpoints inside the VNet.
//
// - subnet `functions`: the Function App's outbound VNet integration (Flex Consumption:
//   delegated to Microsoft.App/environments); all its outbound traffic goes through the VNet.
// - subnet `private-endpoints`: the endpoints of storage (blob, queue, table), Cosmos DB (Sql),
//   Azure Managed Redis, Key Vault, Azure OpenAI and Speech.
// - one private DNS zone per endpoint kind, linked to the VNet; each endpoint registers its
//   addresses through a privateDnsZoneGroup.
//
// Inbound stays public: APIM calls the Function App over its public host name, protected by the
// function key and the gateway secret (docs/deploy.md, "Private networking").

import { tagMap } from '../types.bicep'

param name string
param location string
param tags tagMap

@description('VNet address space; the two /24 subnets are its first two /24 blocks.')
param addressSpace string = '10.60.0.0/22'

@description('One private endpoint per entry: name (unique), resourceId of the target, groupId (sub-resource) and the keys of `dnsZones` its zone group registers in.')
param privateEndpoints privateEndpointTarget[]

type privateEndpointTarget = {
  name: string
  resourceId: string
  @description('The target\'s private link sub-resource: blob, queue, table, Sql, redisEnterprise, vault, account.')
  groupId: string
  @description('Keys of `dnsZones`.')
  zones: string[]
}

// Private DNS zones for Azure public cloud (storage suffix from environment()).
var dnsZones = {
  blob: 'privatelink.blob.${environment().suffixes.storage}'
  queue: 'privatelink.queue.${environment().suffixes.storage}'
  table: 'privatelink.table.${environment().suffixes.storage}'
  cosmos: 'privatelink.documents.azure.com'
  redis: 'privatelink.redis.azure.net'
  vault: 'privatelink.vaultcore.azure.net'
  cognitiveServices: 'privatelink.cognitiveservices.azure.com'
  openAi: 'privatelink.openai.azure.com'
}

var functionsSubnetName = 'functions'
var privateEndpointsSubnetName = 'private-endpoints'

resource vnet 'Microsoft.Network/virtualNetworks@2025-09-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressSpace
      ]
    }
    subnets: [
      {
        name: functionsSubnetName
        properties: {
          addressPrefix: cidrSubnet(addressSpace, 24, 0)
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
          // Internet egress stays (Entra ID token endpoint, Application Insights ingestion):
          // explicit, because new VNets default to private subnets. A NAT gateway would give a
          // fixed egress address instead (not included).
          defaultOutboundAccess: true
        }
      }
      {
        name: privateEndpointsSubnetName
        properties: {
          addressPrefix: cidrSubnet(addressSpace, 24, 1)
          privateEndpointNetworkPolicies: 'Disabled'
          defaultOutboundAccess: false
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2024-06-01' = [
  for zone in items(dnsZones): {
    name: zone.value
    location: 'global'
    tags: tags
  }
]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2024-06-01' = [
  for (zone, i) in items(dnsZones): {
    parent: zones[i]
    name: '${name}-link'
    location: 'global'
    tags: tags
    properties: {
      registrationEnabled: false
      virtualNetwork: {
        id: vnet.id
      }
    }
  }
]

resource endpoints 'Microsoft.Network/privateEndpoints@2025-09-01' = [
  for endpoint in privateEndpoints: {
    name: '${name}-pe-${endpoint.name}'
    location: location
    tags: tags
    properties: {
      subnet: {
        id: resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, privateEndpointsSubnetName)
      }
      privateLinkServiceConnections: [
        {
          name: endpoint.name
          properties: {
            privateLinkServiceId: endpoint.resourceId
            groupIds: [
              endpoint.groupId
            ]
          }
        }
      ]
    }
  }
]

resource endpointZoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2025-09-01' = [
  for (endpoint, i) in privateEndpoints: {
    parent: endpoints[i]
    name: 'default'
    properties: {
      privateDnsZoneConfigs: map(endpoint.zones, zone => {
        name: zone
        properties: {
          privateDnsZoneId: resourceId('Microsoft.Network/privateDnsZones', dnsZones[zone])
        }
      })
    }
    dependsOn: [
      zones
      zoneLinks
    ]
  }
]

output vnetId string = vnet.id
output functionsSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, functionsSubnetName)
output privateEndpointsSubnetId string = resourceId('Microsoft.Network/virtualNetworks/subnets', vnet.name, privateEndpointsSubnetName)
