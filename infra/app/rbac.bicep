// Every role assignment of the service, each the narrowest built-in role that covers what the code
// and the Functions host do, scoped to the one resource it is about. Names are
// guid(scope, principal, role) so a redeploy updates in place instead of failing on a duplicate.

@description('GUID of the app\'s own Key Vault role (app/keyvault-app-role.bicep).')
param appSecretsRoleGuid string

@description('Principal (object) id of the Function App managed identity.')
param appPrincipalId string

@description('Name of the app storage account.')
param storageAccountName string

@description('Name of the Key Vault.')
param keyVaultName string

@description('Name of the Application Insights component.')
param applicationInsightsName string

@description('Object id of the admin who runs the admin command line; empty for none.')
param adminPrincipalId string = ''

@description('Kind of principal adminPrincipalId is.')
param adminPrincipalType string = 'User'

@description('Object id of an Entra group of admins; empty for none.')
param adminGroupObjectId string = ''

// Built-in role definition ids (the same in every tenant and cloud).
var roles = {
  // Host storage with an identity needs Blob Data Owner (Microsoft's documented role for
  // AzureWebJobsStorage): the host creates its own containers (azure-webjobs-hosts/-secrets),
  // takes blob leases for singleton and timers, and Flex Consumption reads the deployment
  // package from the deployment container with this identity.
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  // One role for the whole queue life cycle: the triggers peek, receive and delete (Message
  // Processor + Reader), the app enqueues async work and re-schedules throttled work (Message
  // Sender), and the host creates and writes the <queue>-poison queues when a message fails
  // maxDequeueCount times (queue create/write, which only Contributor has among built-in roles).
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  // Operation status and idempotency records: read, insert, update and delete entities.
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  // Admins: add, authenticate and remove connections (delete included). No key or
  // certificate-management rights.
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  // The app: read connections and credentials, write token caches back (refresh tokens rotate),
  // recover soft-deleted names; no delete or purge (custom role, app/keyvault-app-role.bicep).
  appSecrets: appSecretsRoleGuid
  // Application Insights with local auth off accepts telemetry only from this role.
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource appBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    description: 'Functions host storage and Flex Consumption deployment package.'
  }
}

resource appQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    description: 'Queue triggers, enqueueing work and the host poison queues.'
  }
}

resource appTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, appPrincipalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    description: 'Operation status and idempotency records.'
  }
}

resource appSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, roles.appSecrets)
  scope: vault
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.appSecrets)
    description: 'Read connections and credentials, write token caches back; no delete or purge.'
  }
}

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, appPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    description: 'Send telemetry with Entra ID (local auth is off).'
  }
}

resource adminSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminPrincipalId)) {
  name: guid(vault.id, adminPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: adminPrincipalId
    principalType: adminPrincipalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    description: 'Admin command line: add, authenticate and remove connections.'
  }
}

resource adminGroupSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(adminGroupObjectId)) {
  name: guid(vault.id, adminGroupObjectId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: adminGroupObjectId
    principalType: 'Group'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    description: 'Admin command line for a group of admins.'
  }
}
