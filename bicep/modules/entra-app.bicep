// The chargeback API's Entra ID app registration (main.bicep: only with createAppRegistration),
// deployed with the Microsoft Graph Bicep extension (bicep/bicepconfig.json: microsoftGraphV1).
// The deployer needs Application.ReadWrite.All (or Application.ReadWrite.OwnedBy plus ownership)
// in Entra ID: see docs/deploy.md.
//
// - The application: its application ID URI (identifierUris) is the token audience APIM checks,
//   and its app roles are the roles the code checks (shared/contracts/roles.ts APP_ROLES).
//   uniqueName is its alternate key: redeploying updates the same registration.
// - Its service principal (the enterprise application) that finance and admin users or groups
//   are assigned the roles on; appRoleAssignmentRequired: only assigned users get tokens.
//
// Access tokens are v1 (api.requestedAccessTokenVersion left unset): their `aud` is the
// application ID URI, which is what the APIM named value holds.

extension microsoftGraphV1

@description('Alternate key of the app registration (letters, digits, "-", "_", "."); stable across deployments.')
param uniqueName string
param displayName string
@description('Application ID URI: the audience of the tokens the chargeback API accepts.')
param identifierUri string

// APP_ROLES of shared/contracts/roles.ts (a test compares the values).
var appRoleDefinitions = [
  {
    value: 'Chargeback.Finance'
    displayName: 'Chargeback finance'
    description: 'List and download chargeback reports.'
  }
  {
    value: 'Chargeback.Admin'
    displayName: 'Chargeback admin'
    description: 'Start chargeback runs, imports and configuration changes; read the runs\' status.'
  }
]

resource app 'Microsoft.Graph/applications@v1.0' = {
  uniqueName: uniqueName
  displayName: displayName
  signInAudience: 'AzureADMyOrg'
  identifierUris: [
    identifierUri
  ]
  // Role ids are deterministic: a redeployment keeps every assignment made on them.
  appRoles: [
    for role in appRoleDefinitions: {
      id: guid(uniqueName, 'appRole', role.value)
      value: role.value
      displayName: role.displayName
      description: role.description
      allowedMemberTypes: [
        'User'
        'Application'
      ]
      isEnabled: true
    }
  ]
}

resource servicePrincipal 'Microsoft.Graph/servicePrincipals@v1.0' = {
  appId: app.appId
  appRoleAssignmentRequired: true
}

@description('The token audience: the application ID URI.')
output audience string = app.identifierUris[0]
@description('Application (client) id of the chargeback API.')
output appId string = app.appId
output servicePrincipalId string = servicePrincipal.id
