// Key Vault for connections, their credentials and the token caches the app writes back. Access is
// RBAC only (no access policies), with soft delete and purge protection so a deleted or overwritten
// secret can be recovered and nobody can destroy it early.

@description('Name of the Key Vault (3-24 characters).')
param name string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object

@allowed([
  'Enabled'
  'Disabled'
])
@description('Public network access; Disabled with privateNetworking (private endpoint created by network.bicep).')
param publicNetworkAccess string

@description('Log Analytics workspace that receives the vault audit log.')
param logAnalyticsWorkspaceId string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Network default action Allow unless privateNetworking is set: Flex Consumption without VNet integration and the admins' command line have no fixed addresses; RBAC still guards every secret.
  // checkov:skip=CKV_AZURE_189: Public network access stays on unless privateNetworking is set (same reason as CKV_AZURE_109).
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: publicNetworkAccess
    networkAcls: {
      defaultAction: publicNetworkAccess == 'Disabled' ? 'Deny' : 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Who read or wrote which secret, kept with the app's own logs.
resource vaultDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output name string = vault.name
output id string = vault.id
output url string = vault.properties.vaultUri
