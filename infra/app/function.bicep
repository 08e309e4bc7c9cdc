// The Function App on Flex Consumption (Python 3.11) with its user-assigned managed identity. Its
// app settings hold no secrets: only endpoints, the identity's client id and behaviour switches.
// Every setting the code reads is listed in shared/settings.py (SETTING_NAMES); tests/infra
// checks that each one is set here and that none of LOCAL_ONLY_SETTING_NAMES is.

@description('Name of the Function App.')
param name string

@description('Name of the Flex Consumption plan.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object

@description('Resource id of the user-assigned managed identity.')
param identityId string

@description('Client id of the user-assigned managed identity (for DefaultAzureCredential and the host).')
param identityClientId string

@description('Blob endpoint of the app storage account (https://<account>.blob.core.windows.net/).')
param storageBlobEndpoint string

@description('Queue endpoint of the app storage account.')
param storageQueueEndpoint string

@description('Table endpoint of the app storage account.')
param storageTableEndpoint string

@description('Blob container that holds the deployment package.')
param deploymentContainerName string

@description('Key Vault URL (https://<vault>.vault.azure.net/).')
param keyVaultUrl string

@description('Application Insights connection string (an endpoint and resource id; ingestion needs Entra ID).')
param applicationInsightsConnectionString string

@description('Default Microsoft Graph base URL.')
param graphBaseUrl string

@description('Default Entra ID authority host.')
param authorityHost string

@description('Public base URL of the API; empty means https:// + the site\'s defaultHostName (right in national clouds and with unique default host names).')
param publicBaseUrl string = ''

// Scale and concurrency are set explicitly: left out, Flex Consumption gives a Python app an HTTP
// concurrency of 1 per instance, so every simultaneous webhook would start (and pay for) another
// instance with its own cold start, although our requests spend nearly all their time waiting on
// Graph.
// Flex Consumption takes 40-1000 instances and 2048 or 4096 MB per instance, the ranges of
// Microsoft's own Flex samples (Azure-Samples/azure-functions-flex-consumption-samples,
// IaC/bicep/main.bicep); anything else is refused at deployment, so refuse it here first.
@description('Upper bound on instances of each scale group (HTTP functions together, each queue function on its own). Graph allows 4 concurrent requests per app and mailbox, so more instances mostly buy 429s.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory per instance in MB (CPU grows with it). 2048 holds 16 concurrent requests that each keep about one 3.75 MiB attachment chunk in memory.')
@allowed([
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Concurrent HTTP invocations per instance. The Python default on Flex Consumption is 1; requests here are I/O-bound (Graph, Key Vault), so one instance serves many. The Python worker gets at least as many threads (PYTHON_THREADPOOL_THREAD_COUNT).')
@minValue(1)
@maxValue(1000)
param httpPerInstanceConcurrency int = 16

@description('Subnet for VNet integration (delegated to Microsoft.App/environments); empty for none.')
param virtualNetworkSubnetId string = ''

@description('NCRONTAB schedule of the signin_health timer (read by the host as %SIGNIN_HEALTH_SCHEDULE%).')
param signinHealthSchedule string = '0 0 4 * * *'

// Queue messages one instance runs at once: host.json's batchSize (8) + newBatchThreshold (4).
var queueConcurrency = 12

// Everything the host and our code read, and nothing else. Flex Consumption sets the worker runtime
// and extension version from functionAppConfig: FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION,
// WEBSITE_RUN_FROM_PACKAGE and the content-share settings must not be app settings here
// (tests/infra checks that none is). Set on the site itself so the host never starts without
// them; the appsettings resource below repeats them and adds PUBLIC_BASE_URL, which needs the
// site's defaultHostName.
var appSettings = {
  // Functions host storage, identity-based: no connection string, no account key.
  AzureWebJobsStorage__blobServiceUri: storageBlobEndpoint
  AzureWebJobsStorage__queueServiceUri: storageQueueEndpoint
  AzureWebJobsStorage__tableServiceUri: storageTableEndpoint
  AzureWebJobsStorage__credential: 'managedidentity'
  AzureWebJobsStorage__clientId: identityClientId
  APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
  // The queue and timer functions are synchronous and run on the worker's thread pool, whose
  // default size (cpu count + 4) would cap the concurrency above on a one-vCPU instance. (The
  // HTTP functions are async, on HTTP streams; their blocking work runs on AnyIO's worker
  // threads, 40 by default.)
  PYTHON_THREADPOOL_THREAD_COUNT: string(max(httpPerInstanceConcurrency, queueConcurrency))
  // HTTP streams (every HTTP function gets FastAPI's Request; the export streams its .eml): the
  // Python 3.11 worker starts the web server the host forwards HTTP requests to only with this.
  PYTHON_ENABLE_INIT_INDEXING: '1'
  // Our code (shared/settings.py).
  KEY_VAULT_URL: keyVaultUrl
  KEY_VAULT_CREDENTIAL: 'managed_identity'
  AZURE_CLIENT_ID: identityClientId
  GRAPH_BASE_URL: graphBaseUrl
  AUTHORITY_HOST: authorityHost
  MASK_ADDRESSES_IN_LOGS: 'true'
  SIGNIN_HEALTH_SCHEDULE: signinHealthSchedule
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy on Flex Consumption is region-dependent and needs always-ready instances; queued work waits in the queue through a zone outage and callers retry HTTP.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: Client certificates are not used: DocuFlow authenticates with function keys (x-functions-key) and the sign-in routes are anonymous by design.
  // checkov:skip=CKV_AZURE_222: Public network access is required: DocuFlow calls the webhooks and users open the sign-in pages from the internet.
  // checkov:skip=CKV_AZURE_213: Not used on Flex Consumption, whose instances scale to zero per function; external monitors call GET /api/health instead.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales per function from zero; a minimum instance count would be an always-ready setting, a cost choice left to the operator.
  // checkov:skip=CKV_AZURE_78: Flex Consumption has no FTP and refuses siteConfig.ftpsState (ARM error 51021); the ftp basicPublishingCredentialsPolicy below turns basic-auth publishing off.
  // checkov:skip=CKV_AZURE_67: http20Enabled is an App Service setting that Microsoft's Flex Consumption samples do not set; left at the platform default rather than sent to a plan that may refuse it.
  // checkov:skip=CKV_AZURE_18: Same setting as CKV_AZURE_67 (http20Enabled), left out for Flex Consumption for the same reason.
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    publicNetworkAccess: 'Enabled'
    virtualNetworkSubnetId: empty(virtualNetworkSubnetId) ? null : virtualNetworkSubnetId
    // Only what Flex Consumption takes: no ftpsState (Flex has no FTP and refuses the property
    // in several regions, error 51021), no http20Enabled or remoteDebuggingEnabled (App Service
    // settings that Microsoft's Flex samples do not set; their defaults, off, are what we want).
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      appSettings: [
        for setting in items(appSettings): {
          name: setting.key
          value: setting.value
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// The app settings with PUBLIC_BASE_URL from the site's real host name: <name>.azurewebsites.net is
// wrong in national clouds and for apps with unique default host names (<name>-<hash>.<region>-01.
// azurewebsites.net). This resource replaces the whole set, so it carries every setting.
resource appSettingsConfig 'Microsoft.Web/sites/config@2024-04-01' = {
  // checkov:skip=CKV_AZURE_13: Holds app settings only (config name appsettings); the web-config property this check reads belongs to the site resource.
  // checkov:skip=CKV_AZURE_63: Holds app settings only (config name appsettings); the web-config property this check reads belongs to the site resource.
  // checkov:skip=CKV_AZURE_65: Holds app settings only (config name appsettings); the web-config property this check reads belongs to the site resource.
  // checkov:skip=CKV_AZURE_66: Holds app settings only (config name appsettings); the web-config property this check reads belongs to the site resource.
  // checkov:skip=CKV_AZURE_80: Holds app settings only (config name appsettings); the web-config property this check reads belongs to the site resource.
  // checkov:skip=CKV_AZURE_88: Holds app settings only (config name appsettings); the web-config property this check reads belongs to the site resource.
  // checkov:skip=CKV_AZURE_222: Holds app settings only (config name appsettings); the web-config property this check reads belongs to the site resource.
  parent: site
  name: 'appsettings'
  properties: union(appSettings, {
    PUBLIC_BASE_URL: empty(publicBaseUrl) ? 'https://${site.properties.defaultHostName}' : publicBaseUrl
  })
}

// Deployments go through azd with Entra ID; basic (user name + password) publishing stays off.
// The policies carry the site's location as Azure Verified Modules do
// (avm/res/web/site/basic-publishing-credentials-policy): without it ARM can answer "The
// parameter location has an invalid value".
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  location: location
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  location: location
  properties: {
    allow: false
  }
}

output name string = site.name
output url string = 'https://${site.properties.defaultHostName}'
