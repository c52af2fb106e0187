// Cosmos DB NoSQL: account, database and every container of SPEC §6.
// The container list is checked against `Container::ALL` (src/store/containers.rs)
// by tests/functions/infra.rs: change both together.

@description('Cosmos account name (globally unique).')
param accountName string

@description('Region.')
param location string

@description('Database name (COSMOS_DATABASE).')
param databaseName string = 'castiel'

@description('Serverless (pay per request) or Provisioned (autoscale throughput shared by the database).')
@allowed([
  'Serverless'
  'Provisioned'
])
param capacityMode string = 'Serverless'

@description('Autoscale maximum RU/s of the database when capacityMode is Provisioned.')
@minValue(1000)
param autoscaleMaxThroughput int = 1000

// name, partition key path, defaultTtl in seconds (-1: TTL on, no default expiry,
// so a document's own `ttl` still applies; reference §6.26).
var containers = [
  { name: 'integration_providers', partitionKey: '/category', defaultTtl: -1 }
  { name: 'integration_integrations', partitionKey: '/tenantId', defaultTtl: -1 }
  { name: 'integration_connections', partitionKey: '/integrationId', defaultTtl: -1 }
  { name: 'integration_webhooks', partitionKey: '/tenantId', defaultTtl: -1 }
  { name: 'integration_webhook_deliveries', partitionKey: '/tenantId', defaultTtl: 604800 }
  { name: 'integration_sync_tasks', partitionKey: '/tenantId', defaultTtl: -1 }
  { name: 'integration_sync_executions', partitionKey: '/tenantId', defaultTtl: 2592000 }
  { name: 'integration_sync_conflicts', partitionKey: '/tenantId', defaultTtl: -1 }
  { name: 'integration_sync_links', partitionKey: '/tenantId', defaultTtl: -1 }
  { name: 'integration_oauth_states', partitionKey: '/tenantId', defaultTtl: 600 }
  { name: 'integration_outbox', partitionKey: '/tenantId', defaultTtl: -1 }
  { name: 'integration_shards', partitionKey: '/tenantId', defaultTtl: -1 }
  { name: 'integration_secrets', partitionKey: '/tenantId', defaultTtl: -1 }
]

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-05-15' = {
  name: accountName
  location: location
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    // Data-plane access by Microsoft Entra ID only (the app's identity); keys are off.
    disableLocalAuth: true
    minimalTlsVersion: 'Tls12'
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    capabilities: capacityMode == 'Serverless' ? [
      {
        name: 'EnableServerless'
      }
    ] : []
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-05-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
    options: capacityMode == 'Provisioned' ? {
      autoscaleSettings: {
        maxThroughput: autoscaleMaxThroughput
      }
    } : {}
  }
}

resource sqlContainers 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-05-15' = [for c in containers: {
  parent: database
  name: c.name
  properties: {
    resource: {
      id: c.name
      partitionKey: {
        paths: [
          c.partitionKey
        ]
        kind: 'Hash'
        version: 2
      }
      defaultTtl: c.defaultTtl
    }
  }
}]

@description('Account name.')
output accountName string = account.name

@description('Document endpoint (COSMOS_ENDPOINT).')
output endpoint string = account.properties.documentEndpoint

@description('Database name.')
output databaseName string = database.name
