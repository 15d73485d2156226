// One API of APIM_APIS: the API, its operations (template parameters derived from the URL
// template) and its policy.

param serviceName string
@description('An entry of the `apis` variable of apim.bicep.')
param api object
@description('The API\'s policy XML (loadTextContent of its file in apim-policies/).')
param policyXml string
param serviceUrl string

resource service 'Microsoft.ApiManagement/service@2024-05-01' existing = {
  name: serviceName
}

resource apiResource 'Microsoft.ApiManagement/service/apis@2024-05-01' = {
  parent: service
  name: api.id
  properties: {
    displayName: api.displayName
    path: api.path
    protocols: [
      'https'
    ]
    apiType: 'http'
    serviceUrl: serviceUrl
    subscriptionRequired: api.subscriptionKey != null
    subscriptionKeyParameterNames: api.subscriptionKey
  }
}

resource operations 'Microsoft.ApiManagement/service/apis/operations@2024-05-01' = [
  for operation in api.operations: {
    parent: apiResource
    name: operation.id
    properties: {
      displayName: operation.id
      method: operation.method
      urlTemplate: operation.urlTemplate
      // `{name}` and `{*name}` segments of the URL template.
      templateParameters: map(filter(split(operation.urlTemplate, '/'), segment => startsWith(segment, '{')), segment => {
        name: replace(replace(replace(segment, '{', ''), '}', ''), '*', '')
        type: 'string'
        required: true
      })
    }
  }
]

resource policy 'Microsoft.ApiManagement/service/apis/policies@2024-05-01' = {
  parent: apiResource
  name: 'policy'
  properties: {
    format: 'rawxml'
    value: policyXml
  }
  dependsOn: [
    operations
  ]
}

output id string = apiResource.id
