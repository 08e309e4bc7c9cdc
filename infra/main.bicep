// exchange-processor: the whole service in one resource group (azd up). Every module below is
// least-privilege by construction: the app has no secrets in its settings, only a user-assigned
// managed identity with data-plane roles on its own storage account and Key Vault.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; seeds the resource token that makes every name unique.')
param environmentName string

// Regions that offer Flex Consumption, as in Microsoft's quickstart
// (Azure-Samples/functions-quickstart-python-http-azd, infra/main.bicep). A region outside this list
// would fail late, at the plan; add one here once `az functionapp list-flexconsumption-locations`
// lists it.
@minLength(1)
@description('Azure region for every resource; it must offer the Flex Consumption plan.')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the admin who runs the admin command line (azd fills in the signed-in user). Gets Key Vault Secrets Officer; leave empty for none.')
param adminPrincipalId string = ''

@allowed([
  'User'
  'Group'
  'ServicePrincipal'
])
@description('Kind of principal adminPrincipalId is.')
param adminPrincipalType string = 'User'

@description('Optional object id of an Entra group of admins that also get Key Vault Secrets Officer (staff change, roles stay).')
param adminGroupObjectId string = ''

@description('Put storage and Key Vault behind private endpoints and integrate the Function App with a virtual network.')
param privateNetworking bool = false

@description('Give the function app one fixed outbound IP address (a NAT gateway on its VNet-integration subnet) for a Conditional Access named location; needs privateNetworking. Costs a NAT gateway and a static public IP per hour plus processed data (docs/permissions.md).')
param natGateway bool = false

@description('When the signin_health timer runs (NCRONTAB, UTC): redeems idle sign-ins, audits permissions weekly (parked work has its own hourly timer).')
param signinHealthSchedule string = '0 0 4 * * *'

@description('Address space of the virtual network (used only with privateNetworking).')
param vnetAddressPrefix string = '10.40.0.0/16'

@description('Subnet for the Function App VNet integration (used only with privateNetworking).')
param appSubnetPrefix string = '10.40.0.0/24'

@description('Subnet for the private endpoints (used only with privateNetworking).')
param privateEndpointSubnetPrefix string = '10.40.1.0/24'

@description('E-mail address that receives the alerts (poison messages, failed operations); empty creates no action group.')
param alertEmail string = ''

@description('Public base URL of the API when it sits behind a custom domain or gateway; empty means the function app\'s default host name as Azure reports it.')
param publicBaseUrl string = ''

@description('Default Microsoft Graph base URL for connections that do not name their own (national clouds).')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('Default Entra ID authority host for connections that do not name their own (national clouds).')
param authorityHost string = 'https://login.microsoftonline.com'

@description('Upper bound on Flex Consumption instances (40-1000); each instance talks to Graph, so this also caps Graph concurrency.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([
  2048
  4096
])
@description('Memory per Flex Consumption instance in MB.')
param instanceMemoryMB int = 2048

@description('Concurrent HTTP requests per Flex Consumption instance. The Python default there is 1, which starts an instance per simultaneous webhook; ours wait on Graph, so one instance serves many.')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16

@description('Days a failed operation stays visible in Log Analytics.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Failed operations per 15 minutes above which the failed-operations alert fires (0: any failure).')
@minValue(0)
param failedOperationsThreshold int = 0

// Key Vault keeps a deleted vault's name for its 90-day retention (purge protection forbids purging
// it), so `azd down` + `azd up` of the same environment would collide with the old vault. Setting
// KEY_VAULT_NAME picks another name; docs/deploy.md ("Tear down") says when and how.
@description('Name of the Key Vault (3-24 letters, digits and hyphens, globally unique); empty: kv-<resource token>. Set it (azd env set KEY_VAULT_NAME ...) after azd down, while the old vault is still soft-deleted.')
@maxLength(24)
param keyVaultName string = ''

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = '${abbrs.webSitesFunctions}mail-${resourceToken}'
// Names the code relies on (shared/settings.py: QUEUES, OPERATIONS_TABLE); tests/infra checks them.
var queueNames = [
  'mail-send'
  'mail-move'
  'mail-draft'
  'mail-reply'
  'mail-forward'
  'mail-export'
]
// Every table the app uses (shared/settings.py TABLES): operation status and idempotency,
// single-use request nonces, the per-mailbox limits every instance shares, and sign-in health.
var tableNames = [
  'operations'
  'requestnonces'
  'mailboxlimits'
  'signinhealth'
]
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}mail-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionDays
  }
}

module storage 'app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    queueNames: queueNames
    tableNames: tableNames
    deploymentContainerName: deploymentContainerName
    privateNetworking: privateNetworking
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: empty(keyVaultName) ? '${abbrs.keyVaultVaults}${resourceToken}' : keyVaultName
    location: location
    tags: tags
    // A plain string into the module: checkov cannot evaluate a condition on this property.
    publicNetworkAccess: privateNetworking ? 'Disabled' : 'Enabled'
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

// The fixed outbound address exists only on the VNet integration privateNetworking brings.
var fixedOutboundAddress = privateNetworking && natGateway

module outboundNat 'app/nat-gateway.bicep' = if (fixedOutboundAddress) {
  name: 'nat-gateway'
  scope: rg
  params: {
    publicIpName: '${abbrs.networkPublicIPAddresses}${resourceToken}'
    natGatewayName: '${abbrs.networkNatGateways}${resourceToken}'
    location: location
    tags: tags
  }
}

module network 'app/network.bicep' = if (privateNetworking) {
  name: 'network'
  scope: rg
  params: {
    vnetName: '${abbrs.networkVirtualNetworks}${resourceToken}'
    nsgName: '${abbrs.networkNetworkSecurityGroups}${resourceToken}'
    privateEndpointPrefix: '${abbrs.networkPrivateEndpoints}${resourceToken}'
    location: location
    tags: tags
    addressPrefix: vnetAddressPrefix
    appSubnetPrefix: appSubnetPrefix
    privateEndpointSubnetPrefix: privateEndpointSubnetPrefix
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    natGatewayId: fixedOutboundAddress ? outboundNat.outputs.natGatewayId : ''
  }
}

module appSecretsRole 'app/keyvault-app-role.bicep' = {
  name: 'app-secrets-role'
  scope: rg
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    appSecretsRoleGuid: appSecretsRole.outputs.roleGuid
    appPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    adminPrincipalId: adminPrincipalId
    adminPrincipalType: adminPrincipalType
    adminGroupObjectId: adminGroupObjectId
  }
}

module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    keyVaultUrl: keyVault.outputs.url
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    graphBaseUrl: graphBaseUrl
    authorityHost: authorityHost
    publicBaseUrl: publicBaseUrl
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    virtualNetworkSubnetId: privateNetworking ? network.outputs.appSubnetId : ''
    signinHealthSchedule: signinHealthSchedule
  }
  // The host starts as soon as the app exists; without its roles it would crash-loop on storage.
  dependsOn: [
    rbac
  ]
}

module workbook 'app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    location: location
    tags: tags
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
  }
}

module alerts 'app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    namePrefix: '${abbrs.insightsScheduledQueryRules}${resourceToken}'
    actionGroupName: '${abbrs.insightsActionGroups}${resourceToken}'
    location: location
    tags: tags
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    alertEmail: alertEmail
    failedOperationsThreshold: failedOperationsThreshold
  }
  // The poison-queue rule reads StorageQueueLogs, which exists only once the storage module's
  // diagnostic setting does; the rules also skip query validation (AppTraces appears with the
  // first telemetry), see app/alerts.bicep.
  dependsOn: [
    storage
  ]
}

// Outputs land in the azd environment (.azure/<env>/.env); the admin command line reads
// KEY_VAULT_URL from there, the workflow reads AZURE_FUNCTION_NAME.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_URL string = functionApp.outputs.url
output AZURE_FUNCTION_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output KEY_VAULT_URL string = keyVault.outputs.url
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output AZURE_LOG_ANALYTICS_WORKSPACE_NAME string = monitoring.outputs.logAnalyticsName
// The function app's one outbound address with natGateway=true (empty otherwise): the address
// of the Conditional Access named location (docs/permissions.md).
output AZURE_OUTBOUND_IP string = fixedOutboundAddress ? outboundNat.outputs.outboundIpAddress : ''
output SIGNIN_WORKBOOK_NAME string = workbook.outputs.displayName
