// Optional private networking (privateNetworking=true): a virtual network whose "app" subnet hosts
// (with natGateway=true, behind app/nat-gateway.bicep's NAT gateway)
// the Function App's VNet integration and whose "private-endpoints" subnet holds private endpoints
// for blob, queue, table and Key Vault, each with its private DNS zone linked to the network.
// The subscription must have the Microsoft.App resource provider registered (the app subnet is
// delegated to Microsoft.App/environments); scripts/azd-preprovision.sh checks that first.

@description('Name of the virtual network.')
param vnetName string

@description('Name of the network security group of both subnets.')
param nsgName string

@description('Prefix of the private endpoint names.')
param privateEndpointPrefix string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object

@description('Address space of the virtual network.')
param addressPrefix string

@description('Address range of the app (VNet integration) subnet, inside addressPrefix.')
param appSubnetPrefix string

@description('Address range of the private endpoint subnet, inside addressPrefix.')
param privateEndpointSubnetPrefix string

@description('Name of the app storage account.')
param storageAccountName string

@description('Name of the Key Vault.')
param keyVaultName string

@description('NAT gateway for the app subnet (app/nat-gateway.bicep, natGateway=true); empty: the platform\'s outbound addresses.')
param natGatewayId string = ''

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// Default rules only (VNet-internal traffic in, internet out): the app needs Graph and Entra ID.
resource nsg 'Microsoft.Network/networkSecurityGroups@2024-01-01' = {
  name: nsgName
  location: location
  tags: tags
  properties: {
    securityRules: []
  }
}

resource vnet 'Microsoft.Network/virtualNetworks@2024-01-01' = {
  name: vnetName
  location: location
  tags: tags
  properties: {
    addressSpace: {
      addressPrefixes: [
        addressPrefix
      ]
    }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          // With natGateway=true every outbound connection of the app leaves from its one address.
          natGateway: empty(natGatewayId) ? null : {
            id: natGatewayId
          }
          // Flex Consumption integrates through a subnet delegated to Container Apps environments.
          delegations: [
            {
              name: 'flex-consumption'
              properties: {
                serviceName: 'Microsoft.App/environments'
              }
            }
          ]
        }
      }
      {
        name: 'private-endpoints'
        properties: {
          addressPrefix: privateEndpointSubnetPrefix
          networkSecurityGroup: {
            id: nsg.id
          }
          privateEndpointNetworkPolicies: 'Disabled'
        }
      }
    ]
  }
}

var endpoints = [
  {
    name: 'blob'
    groupId: 'blob'
    zone: 'privatelink.blob.${environment().suffixes.storage}'
    target: storage.id
  }
  {
    name: 'queue'
    groupId: 'queue'
    zone: 'privatelink.queue.${environment().suffixes.storage}'
    target: storage.id
  }
  {
    name: 'table'
    groupId: 'table'
    zone: 'privatelink.table.${environment().suffixes.storage}'
    target: storage.id
  }
  {
    name: 'vault'
    groupId: 'vault'
    // Key Vault's private zone is privatelink.vaultcore.<cloud suffix> (vault.azure.net ->
    // vaultcore.azure.net, vault.usgovcloudapi.net -> vaultcore.usgovcloudapi.net, ...), derived
    // from the cloud like the storage zones above, never hard-coded to the public cloud.
    zone: 'privatelink${replace(environment().suffixes.keyvaultDns, 'vault', 'vaultcore')}'
    target: vault.id
  }
]

resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [
  for endpoint in endpoints: {
    name: endpoint.zone
    location: 'global'
    tags: tags
  }
]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [
  for (endpoint, i) in endpoints: {
    parent: zones[i]
    name: '${vnetName}-link'
    location: 'global'
    tags: tags
    properties: {
      registrationEnabled: false
      virtualNetwork: {
        id: vnet.id
      }
    }
  }
]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2024-01-01' = [
  for endpoint in endpoints: {
    name: '${privateEndpointPrefix}-${endpoint.name}'
    location: location
    tags: tags
    properties: {
      subnet: {
        id: vnet.properties.subnets[1].id
      }
      privateLinkServiceConnections: [
        {
          name: '${privateEndpointPrefix}-${endpoint.name}'
          properties: {
            privateLinkServiceId: endpoint.target
            groupIds: [
              endpoint.groupId
            ]
          }
        }
      ]
    }
  }
]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2024-01-01' = [
  for (endpoint, i) in endpoints: {
    parent: privateEndpoints[i]
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [
        {
          name: endpoint.name
          properties: {
            privateDnsZoneId: zones[i].id
          }
        }
      ]
    }
  }
]

output appSubnetId string = vnet.properties.subnets[0].id
output privateEndpointSubnetId string = vnet.properties.subnets[1].id
