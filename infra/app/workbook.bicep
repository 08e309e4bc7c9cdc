// The admin's page (Azure Monitor workbook): operations by status over time, parked work per
// connection and user, sign-ins by days left, Graph 429s per mailbox and failures by code, all
// read from the app's own JSON log lines in AppTraces. The queries are in workbook.json;
// tests/infra runs each of them on real log lines of the app. docs/operations.md describes it.

@description('Azure region of the workbook.')
param location string

@description('Tags for the workbook.')
param tags object

@description('Log Analytics workspace the workbook queries (AppTraces).')
param logAnalyticsWorkspaceId string

@description('Name the workbook has in the portal.')
param displayName string = 'Mail processor: operations and sign-ins'

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name is a GUID; this one is stable per resource group, so a redeploy updates it.
  name: guid(resourceGroup().id, 'exchange-processor-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: logAnalyticsWorkspaceId
    serializedData: loadTextContent('workbook.json')
  }
}

output displayName string = displayName
output workbookId string = workbook.id
