// Optional fixed outbound address (natGateway=true, with privateNetworking): a Standard static
// public IP and a NAT gateway that main.bicep attaches to the Function App's VNet-integration
// subnet (app/network.bicep), so every call the app makes to Entra ID and Graph leaves from that
// one address. docs/permissions.md ("A fixed outbound address") says how to use it in a
// Conditional Access named location and what it costs.

@description('Name of the public IP address.')
param publicIpName string

@description('Name of the NAT gateway.')
param natGatewayName string

@description('Azure region.')
param location string

@description('Tags for the resources.')
param tags object

@description('Minutes an idle outbound TCP connection is kept (4-120).')
@minValue(4)
@maxValue(120)
param idleTimeoutInMinutes int = 4

// A NAT gateway takes Standard SKU public IPs only, statically allocated.
resource publicIp 'Microsoft.Network/publicIPAddresses@2024-01-01' = {
  name: publicIpName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Regional'
  }
  properties: {
    publicIPAllocationMethod: 'Static'
    publicIPAddressVersion: 'IPv4'
  }
}

resource natGateway 'Microsoft.Network/natGateways@2024-01-01' = {
  name: natGatewayName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
  }
  properties: {
    idleTimeoutInMinutes: idleTimeoutInMinutes
    publicIpAddresses: [
      {
        id: publicIp.id
      }
    ]
  }
}

output natGatewayId string = natGateway.id
// The address to put in a Conditional Access named location (known once deployed: Static).
output outboundIpAddress string = publicIp.properties.ipAddress
