// The app's own Key Vault role: read, write and recover secrets, and nothing else. Built-in Key
// Vault Secrets Officer also lets its holder delete and purge every secret; the app never needs
// to (removing connections is the admin's job), so a stolen app identity cannot wipe the vault.
// It can still write any secret (token caches live in the same vault as connections): docs/
// security.md explains the trade-off against a second vault.

@description('Stable name of the role; one definition per resource group.')
param roleName string = 'exchange-processor app secrets (${resourceGroup().name})'

resource appSecretsRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, 'exchange-processor-app-secrets')
  properties: {
    roleName: roleName
    description: 'Get, set, list and recover Key Vault secrets; no delete, no purge.'
    type: 'CustomRole'
    assignableScopes: [
      resourceGroup().id
    ]
    permissions: [
      {
        actions: []
        notActions: []
        dataActions: [
          'Microsoft.KeyVault/vaults/secrets/getSecret/action'
          'Microsoft.KeyVault/vaults/secrets/setSecret/action'
          'Microsoft.KeyVault/vaults/secrets/readMetadata/action'
          'Microsoft.KeyVault/vaults/deletedSecrets/recover/action'
        ]
        notDataActions: []
      }
    ]
  }
}

@description('The role definition GUID (for subscriptionResourceId(...roleDefinitions, id)).')
output roleGuid string = appSecretsRole.name
