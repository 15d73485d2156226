// Azure OpenAI account with its model deployments, and an Azure Speech account. Both with a
// custom subdomain (required for Entra ID tokens) and local (key) auth disabled: the app calls
// them with its identity (Cognitive Services OpenAI User / Speech User, rbac.bicep).

import { modelDeployment, tagMap } from '../types.bicep'

param openAiName string
param speechName string
param location string
@description('Region of the Speech account (Speech is not offered in every region).')
param speechLocation string = location
param tags tagMap
param deployments modelDeployment[]
param publicNetworkAccess 'Enabled' | 'Disabled' = 'Enabled'

@description('Log Analytics workspace the accounts\' resource logs go to.')
param workspaceId string

resource openAi 'Microsoft.CognitiveServices/accounts@2026-07-01' = {
  name: openAiName
  location: location
  tags: tags
  kind: 'OpenAI'
  sku: {
    name: 'S0'
  }
  properties: {
    customSubDomainName: openAiName
    disableLocalAuth: true
    publicNetworkAccess: publicNetworkAccess
  }
}

// One at a time: the service refuses concurrent deployment changes on one account.
@batchSize(1)
resource modelDeployments 'Microsoft.CognitiveServices/accounts/deployments@2026-07-01' = [
  for deployment in deployments: {
    parent: openAi
    name: deployment.name
    tags: tags
    sku: {
      name: deployment.sku
      capacity: deployment.capacity
    }
    properties: {
      model: {
        format: 'OpenAI'
        name: deployment.model
        version: deployment.version
      }
      versionUpgradeOption: 'OnceNewDefaultVersionAvailable'
    }
  }
]

resource speech 'Microsoft.CognitiveServices/accounts@2026-07-01' = {
  name: speechName
  location: speechLocation
  tags: tags
  kind: 'SpeechServices'
  sku: {
    name: 'S0'
  }
  properties: {
    customSubDomainName: speechName
    disableLocalAuth: true
    publicNetworkAccess: publicNetworkAccess
  }
}

// Resource logs: audit, request/response metadata (no prompts or completions), traces, and for
// Azure OpenAI the per-request token usage.
resource openAiDiagnostics 'microsoft.insights/diagnosticSettings@2016-09-01' = {
  name: 'service'
  scope: openAi
  location: location
  tags: tags
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'Audit', enabled: true }
      { category: 'RequestResponse', enabled: true }
      { category: 'Trace', enabled: true }
      { category: 'AzureOpenAIRequestUsage', enabled: true }
    ]
  }
}

resource speechDiagnostics 'microsoft.insights/diagnosticSettings@2016-09-01' = {
  name: 'service'
  scope: speech
  location: speechLocation
  tags: tags
  properties: {
    workspaceId: workspaceId
    logs: [
      { category: 'Audit', enabled: true }
      { category: 'RequestResponse', enabled: true }
      { category: 'Trace', enabled: true }
    ]
  }
}

output openAiName string = openAi.name
output openAiId string = openAi.id
output openAiEndpoint string = openAi.properties.endpoint
output speechName string = speech.name
output speechId string = speech.id
output speechRegion string = speech.location
output speechEndpoint string = speech.properties.endpoint
