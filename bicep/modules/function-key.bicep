// The host-level function key (never the master key) APIM sends in x-functions-key, from the
// Key Vault–backed named value. In a module of its own that nothing depends on: on a new Flex
// Consumption app with no code published yet the Functions host may refuse the PUT; the rest of
// the deployment (APIM included) still goes through, and the key is set again after publishing
// (`az functionapp keys set`, docs/deploy.md) or by re-running the deployment.

param siteName string

@description('Name of the host-level function key.')
param functionKeyName string

@secure()
@description('Its value (the same as the Key Vault secret APIM reads).')
param functionKey string

resource apimFunctionKey 'Microsoft.Web/sites/host/functionKeys@2025-03-01' = {
  name: '${siteName}/default/${functionKeyName}'
  properties: {
    name: functionKeyName
    value: functionKey
  }
}
